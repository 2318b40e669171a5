/* Message search: the box in the sidebar, results over the main area with the matched words
 * marked (built from the server's offsets, never from HTML), a result opens its room. */

import { api, refusal } from "./api.js";
import { $, h } from "./dom.js";
import { formatTime, t } from "./i18n.js";
import { navigate, roomPath } from "./router.js";

const PAGE = 20;
let query = "";
let nextOffset = null;

function marked(snippet, ranges) {
  const parts = [];
  let position = 0;
  for (const [start, end] of ranges) {
    parts.push(snippet.slice(position, start), h("mark", {}, snippet.slice(start, end)));
    position = end;
  }
  parts.push(snippet.slice(position));
  return parts;
}

function renderHit(hit) {
  const message = hit.message;
  const sender = message.sender_name || message.sender_agent_id || t("message.someone");
  const open = () => {
    closeSearch();
    navigate(roomPath(message.room_id));
  };
  return h("li", { className: "search-hit" },
    h("button", { type: "button", className: "search-open", onclick: open },
      h("span", { className: "search-where" }, `#${hit.room_name}`),
      h("span", { className: "sender" }, sender),
      h("time", { datetime: message.created_at }, formatTime(message.created_at))),
    h("p", { className: "search-snippet", dir: "auto" }, ...marked(hit.snippet, hit.highlights)));
}

async function run(offset) {
  const params = new URLSearchParams({ q: query, limit: String(PAGE), offset: String(offset) });
  const summary = $("search-summary");
  try {
    const page = await api(`/api/search?${params}`);
    const list = $("search-results");
    if (offset === 0) list.replaceChildren();
    for (const hit of page.items) list.append(renderHit(hit));
    nextOffset = page.next_offset;
    const count = list.children.length;
    summary.textContent = count ? t("search.count", { count }) : t("search.none", { query });
  } catch (err) {
    summary.textContent = refusal(err);
    nextOffset = null;
  }
  $("search-more").hidden = nextOffset === null || nextOffset === undefined;
}

export function closeSearch() {
  $("search-view").hidden = true;
}

async function submit(event) {
  event.preventDefault();
  query = $("search-input").value.trim();
  if (!query) return closeSearch();
  $("search-view").hidden = false;
  $("search-results").replaceChildren();
  $("search-summary").textContent = t("search.searching");
  await run(0);
}

export function wireSearch() {
  $("search-form").addEventListener("submit", submit);
  $("search-close").addEventListener("click", () => {
    closeSearch();
    $("search-input").focus();
  });
  $("search-more").addEventListener("click", () => nextOffset !== null && run(nextOffset));
}
