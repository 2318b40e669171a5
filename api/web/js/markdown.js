/* Markdown for messages and agent replies: marked renders, DOMPurify keeps only the tags
 * below, raw HTML in the text is shown as text, links open in a new tab without an opener,
 * and code blocks get a copy button. Nothing reaches the page without DOMPurify. */

import { Marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const ALLOWED_TAGS = [
  "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
  "h1", "h2", "h3", "h4", "h5", "h6", "a", "hr", "table", "thead", "tbody", "tr", "th", "td",
];
const SAFE_LINK = /^(https?:|mailto:)/i;
const MENTION = /(^|[^\w@])(@[A-Za-z0-9](?:[\w-]|\.(?=[\w-]))*)/g;

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const parser = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // Raw HTML typed in a message is text, not markup.
    html(token) {
      return escapeHtml(token.text || token.raw || "");
    },
  },
});

const purifier = DOMPurify;
purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  const href = node.getAttribute("href") || "";
  if (!SAFE_LINK.test(href)) {
    node.removeAttribute("href");
    return;
  }
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer nofollow");
});

/** Wraps @handles in text nodes (outside code and links) in a span. */
function markMentions(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement && node.parentElement.closest("code, a")) continue;
    if (MENTION.test(node.data)) found.push(node);
    MENTION.lastIndex = 0;
  }
  for (const node of found) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of node.data.matchAll(MENTION)) {
      const start = match.index + match[1].length;
      fragment.append(node.data.slice(last, start), h("span", { className: "mention" }, match[2]));
      last = start + match[2].length;
    }
    fragment.append(node.data.slice(last));
    node.replaceWith(fragment);
  }
}

function addCopyButtons(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.textContent;
    const button = h("button", { type: "button", className: "copy-code ghost small" }, t("message.copy"));
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(code);
        button.textContent = t("message.copied");
      } catch {
        button.textContent = t("message.copy_failed");
      }
      setTimeout(() => {
        button.textContent = t("message.copy");
      }, 2000);
    });
    pre.replaceWith(h("div", { className: "code-block" }, button, pre.cloneNode(true)));
  }
}

/** Markdown text to a sanitised DocumentFragment. */
export function renderMarkdown(text) {
  const html = parser.parse(String(text || ""), { async: false });
  const fragment = purifier.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ["href", "title", "start"],
    RETURN_DOM_FRAGMENT: true,
  });
  markMentions(fragment);
  addCopyButtons(fragment);
  return fragment;
}
