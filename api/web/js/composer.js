/* Writing: send (optimistic, acknowledged by id), reply-to, typing, and @mention autocomplete. */

import { api, enc, refusal, session } from "./api.js";
import { takeAttachmentIds } from "./attachments.js";
import { $, avatar, debounce, h, listOf, snippet, toast, uuid } from "./dom.js";
import { t } from "./i18n.js";
import { renderMessage, scrollToBottom, senderName, updateEmpty, upsertMessage } from "./messages.js";
import { state } from "./state.js";

const MESSAGE_MAX_BYTES = 16 * 1024;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_MS = 6000;
let lastTypingSent = 0;

export function setReplyTo(message) {
  state.replyTo = message ? Number(message.id) : null;
  $("reply-bar").hidden = !message;
  $("reply-text").textContent = message ? t("composer.replying_to", { name: senderName(message), text: snippet(message.content) }) : "";
  if (message) $("composer-input").focus();
}

function autosize() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

function showOptimistic(roomId, clientMsgId, content, replyTo) {
  const optimistic = renderMessage({
    id: clientMsgId,
    room_id: roomId,
    sender_user_id: session.user && session.user.id,
    sender_name: session.user && session.user.name,
    content,
    type: "text",
    reply_to_id: replyTo,
    created_at: new Date().toISOString(),
  });
  optimistic.classList.add("pending");
  optimistic.querySelector(".actions")?.remove();
  $("message-items").append(optimistic);
  state.pending.set(clientMsgId, optimistic);
  return optimistic;
}

function showNotSent(optimistic, clientMsgId, content, err) {
  optimistic.classList.replace("pending", "failed");
  const input = $("composer-input");
  const retry = () => {
    optimistic.remove();
    state.pending.delete(clientMsgId);
    input.value = content;
    autosize();
    input.focus();
  };
  optimistic.querySelector(".body").append(h("div", { className: "actions visible" },
    h("span", { className: "danger", role: "alert" }, t("composer.not_sent", { reason: refusal(err) })),
    h("button", { type: "button", className: "link", onclick: retry }, t("composer.edit_retry"))));
}

export async function send(event) {
  if (event) event.preventDefault();
  const input = $("composer-input");
  const content = input.value.trim();
  if (!state.roomId) return;
  const attachmentIds = takeAttachmentIds(state.roomId);
  if (!content && attachmentIds.length === 0) return;
  if (new TextEncoder().encode(content).length > MESSAGE_MAX_BYTES) {
    toast(t("composer.too_long", { kib: MESSAGE_MAX_BYTES / 1024 }));
    return;
  }
  const roomId = state.roomId;
  const clientMsgId = uuid();
  const body = { content, client_msg_id: clientMsgId };
  if (attachmentIds.length) body.attachment_ids = attachmentIds;
  if (state.replyTo) body.reply_to_id = state.replyTo;
  const optimistic = showOptimistic(roomId, clientMsgId, content, body.reply_to_id || null);
  input.value = "";
  autosize();
  setReplyTo(null);
  closeMentions();
  updateEmpty();
  scrollToBottom(true);
  try {
    const message = await api(`/api/chat/rooms/${enc(roomId)}/messages`, { method: "POST", body });
    if (String(state.roomId) === String(roomId)) upsertMessage({ ...message, client_msg_id: message.client_msg_id || clientMsgId });
  } catch (err) {
    if (state.pending.has(clientMsgId)) showNotSent(optimistic, clientMsgId, content, err);
  }
}

function notifyTyping() {
  const now = Date.now();
  if (!state.roomId || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
  lastTypingSent = now;
  api(`/api/chat/rooms/${enc(state.roomId)}/typing`, { method: "POST", body: {}, keepalive: true }).catch(() => {});
}

// ---------------------------------------------------------------- who is typing

export function onTyping(data) {
  const who = String(data.user_id || data.agent_id || data.name || "");
  if (!who || (session.user && who === String(session.user.id))) return;
  const entry = state.typing.get(who);
  if (entry) clearTimeout(entry.timer);
  if (data.typing === false || data.state === "stop") {
    state.typing.delete(who);
    renderTyping();
    return;
  }
  const member = state.members.find((m) => String(m.user_id) === who);
  const name = data.name || (member && member.name) || t("message.someone");
  const timer = setTimeout(() => {
    state.typing.delete(who);
    renderTyping();
  }, TYPING_SHOW_MS);
  state.typing.set(who, { name, timer });
  renderTyping();
}

export function renderTyping() {
  const names = [...state.typing.values()].map((entry) => entry.name);
  const el = $("typing");
  if (names.length === 0) {
    el.replaceChildren();
    return;
  }
  const text = names.length === 1 ? t("typing.one", { name: names[0] }) : names.length === 2 ? t("typing.two", { a: names[0], b: names[1] }) : t("typing.many");
  el.replaceChildren(h("span", { className: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), text);
}

export function clearTyping() {
  for (const who of state.typing.values()) clearTimeout(who.timer);
  state.typing.clear();
  renderTyping();
}

// ---------------------------------------------------------------- @mention autocomplete

const mention = { items: [], active: 0, start: -1, request: 0 };

function mentionQuery() {
  const input = $("composer-input");
  const caret = input.selectionStart;
  if (caret !== input.selectionEnd) return null;
  const match = /(^|\s)@([\w.-]{0,40})$/.exec(input.value.slice(0, caret));
  if (!match) return null;
  return { query: match[2], start: caret - match[2].length - 1 };
}

function candidates(agents, query) {
  const q = query.toLowerCase();
  const people = state.members
    .filter((m) => m.handle && (!session.user || String(m.user_id) !== String(session.user.id)))
    .filter((m) => !q || m.handle.toLowerCase().startsWith(q) || String(m.name || "").toLowerCase().includes(q))
    .slice(0, 5)
    .map((m) => ({ handle: m.handle, label: m.name || m.handle, description: t("mention.member"), kind: "person" }));
  const everyone = "all".startsWith(q) ? [{ handle: "all", label: t("mention.everyone"), description: t("mention.everyone_hint"), kind: "all" }] : [];
  const team = "team".startsWith(q) ? [{ handle: "team", label: t("mention.team"), description: t("mention.team_hint"), kind: "agent" }] : [];
  return [
    ...agents.slice(0, 8).map((a) => ({ handle: a.id, label: a.name || a.id, description: a.description || "", kind: "agent" })),
    ...team,
    ...people,
    ...everyone,
  ];
}

const fetchCandidates = debounce(async (query, request) => {
  let agents = [];
  try {
    agents = listOf(await api(`/api/agents?q=${enc(query)}`));
  } catch {
    agents = [];
  }
  for (const agent of agents) state.agents.set(agent.id, agent);
  if (request !== mention.request) return; // a newer keystroke won
  mention.items = candidates(agents, query);
  mention.active = 0;
  renderMentions();
}, 120);

function updateMentions() {
  const found = mentionQuery();
  if (!found) {
    closeMentions();
    return;
  }
  mention.start = found.start;
  mention.request += 1;
  fetchCandidates(found.query, mention.request);
}

function renderMentions() {
  const menu = $("mention-menu");
  const input = $("composer-input");
  if (mention.items.length === 0) {
    closeMentions();
    return;
  }
  menu.replaceChildren(...mention.items.map((item, index) =>
    h("li", {
      role: "option",
      id: `mention-${index}`,
      className: `mention-item${index === mention.active ? " active" : ""}`,
      "aria-selected": String(index === mention.active),
      onmousedown: (event) => {
        event.preventDefault(); // keep the focus in the textarea
        pickMention(index);
      },
    },
    avatar(item.label, item.handle, item.kind === "agent" ? "bot small" : "small"),
    h("span", { className: "mention-main" },
      h("span", { className: "mention-name" }, item.label),
      h("span", { className: "mention-handle muted" }, `@${item.handle}`)),
    item.description ? h("span", { className: "mention-desc muted" }, item.description) : null)));
  menu.hidden = false;
  input.setAttribute("aria-expanded", "true");
  input.setAttribute("aria-activedescendant", `mention-${mention.active}`);
}

export function closeMentions() {
  mention.items = [];
  mention.request += 1;
  const menu = $("mention-menu");
  menu.hidden = true;
  menu.replaceChildren();
  const input = $("composer-input");
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
}

function pickMention(index) {
  const item = mention.items[index];
  if (!item) return;
  const input = $("composer-input");
  const before = input.value.slice(0, mention.start);
  const after = input.value.slice(input.selectionStart);
  const insert = `@${item.handle} `;
  input.value = before + insert + after.replace(/^\S*/, "");
  const position = before.length + insert.length;
  input.setSelectionRange(position, position);
  closeMentions();
  autosize();
  input.focus();
}

function onKeydown(event) {
  const menuOpen = !$("mention-menu").hidden && mention.items.length > 0;
  if (menuOpen && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    mention.active = (mention.active + step + mention.items.length) % mention.items.length;
    renderMentions();
    return;
  }
  if (menuOpen && (event.key === "Enter" || event.key === "Tab")) {
    event.preventDefault();
    pickMention(mention.active);
    return;
  }
  if (menuOpen && event.key === "Escape") {
    event.preventDefault();
    closeMentions();
    return;
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  } else if (event.key === "Escape" && state.replyTo) {
    setReplyTo(null);
  }
}

export function wireComposer() {
  const input = $("composer-input");
  $("composer").addEventListener("submit", send);
  $("reply-cancel").addEventListener("click", () => setReplyTo(null));
  input.addEventListener("keydown", onKeydown);
  input.addEventListener("input", () => {
    autosize();
    updateMentions();
    if (input.value.trim()) notifyTyping();
  });
  input.addEventListener("click", updateMentions);
  // Closed once the focus has really left (a click in the menu, or the focus coming back
  // before the timer, keeps it open).
  input.addEventListener("blur", () => setTimeout(() => document.activeElement !== input && closeMentions(), 150));
}
