/* A room's messages: loading pages, rendering (Markdown), edits, deletes, read markers. */

import { api, enc, refusal, session } from "./api.js";
import { renderAttachments } from "./attachments.js";
import { $, avatar, h, listOf, snippet, toast } from "./dom.js";
import { currentLanguage, formatTime, t } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";
import { state } from "./state.js";

const PAGE_SIZE = 50;
let readTimer = null;
let onReplyTo = () => {};
let onStoredReply = () => {};

/** composer.js sets what "Reply" does; replies.js what a stored agent reply replaces. */
export function wireMessages({ replyTo, storedReply }) {
  onReplyTo = replyTo;
  onStoredReply = storedReply;
}

export function isNearBottom() {
  const list = $("messages");
  return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
}

export function scrollToBottom(force) {
  const list = $("messages");
  if (force || isNearBottom()) list.scrollTop = list.scrollHeight;
}

export function updateEmpty() {
  const empty = state.messages.size === 0 && state.pending.size === 0 && state.replies.size === 0;
  $("empty-room").hidden = !state.roomId || !empty;
}

export function isMine(message) {
  return Boolean(session.user && message.sender_user_id && String(message.sender_user_id) === String(session.user.id));
}

export function agentName(agentId) {
  const agent = state.agents.get(agentId);
  return (agent && agent.name) || agentId || t("message.agent");
}

export function senderName(message) {
  if (message.sender_agent_id) return agentName(message.sender_agent_id);
  if (message.sender_name) return message.sender_name;
  if (isMine(message)) return (session.user && session.user.name) || t("message.you");
  return t("message.someone");
}

export async function loadMessages(roomId, before) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (before !== null && before !== undefined) params.set("before", String(before));
  const list = $("messages");
  const fromBottom = list.scrollHeight - list.scrollTop;
  try {
    const page = await api(`/api/chat/rooms/${enc(roomId)}/messages?${params}`);
    if (String(state.roomId) !== String(roomId)) return;
    for (const message of listOf(page)) upsertMessage(message, { quiet: true });
    state.nextBefore = page && page.next_before !== undefined ? page.next_before : null;
  } catch (err) {
    toast(t("message.load_failed", { reason: err.message }));
  }
  $("load-more").hidden = state.nextBefore === null || state.nextBefore === undefined;
  updateEmpty();
  if (before === null || before === undefined) scrollToBottom(true);
  else list.scrollTop = list.scrollHeight - fromBottom; // keep the reader's place
  scheduleRead();
}

export function loadEarlier() {
  if (state.roomId && state.nextBefore !== null) loadMessages(state.roomId, state.nextBefore);
}

/** Messages after the newest one we have: used when a reply's message did not arrive. */
export async function catchUp() {
  const roomId = state.roomId;
  const ids = [...state.messages.keys()];
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (ids.length) params.set("after", String(Math.max(...ids)));
  try {
    const page = await api(`/api/chat/rooms/${enc(roomId)}/messages?${params}`);
    if (String(state.roomId) === String(roomId)) for (const message of listOf(page)) upsertMessage(message);
  } catch {
    /* the stream will bring it */
  }
}

export function upsertMessage(message, options = {}) {
  if (!message || message.id === undefined || message.id === null) return;
  if (message.room_id && state.roomId && String(message.room_id) !== String(state.roomId)) return;
  const id = Number(message.id);
  const wasNearBottom = isNearBottom();
  const previous = state.messages.get(id);
  const merged = previous ? { ...previous, ...message } : message;
  state.messages.set(id, merged);

  // Our own optimistic copy, acknowledged now.
  if (merged.client_msg_id && state.pending.has(merged.client_msg_id)) {
    state.pending.get(merged.client_msg_id).remove();
    state.pending.delete(merged.client_msg_id);
  }
  const element = renderMessage(merged);
  const existing = state.nodes.get(id);
  if (existing) existing.replaceWith(element);
  else insertInOrder(id, element);
  state.nodes.set(id, element);
  onStoredReply(id);
  updateEmpty();
  if (!options.quiet && (wasNearBottom || isMine(merged))) scrollToBottom(true);
  if (!options.quiet) scheduleRead();
}

function insertInOrder(id, element) {
  const container = $("message-items");
  let after = null;
  for (const [otherId, node] of state.nodes) {
    if (otherId > id && (after === null || otherId < after.id)) after = { id: otherId, node };
  }
  // Before any optimistic messages still in flight, which belong at the very end.
  container.insertBefore(element, after ? after.node : container.querySelector(".msg.pending"));
}

function isSystem(message) {
  const kinds = ["text", "user", "agent", "message"];
  return message.type && !kinds.includes(message.type) && !message.sender_agent_id && !message.sender_user_id;
}

function quoteOf(message) {
  const quoted = state.messages.get(Number(message.reply_to_id));
  if (!quoted) return t("message.in_reply_to", { id: message.reply_to_id });
  const text = quoted.deleted_at ? t("message.deleted_short") : quoted.content;
  return `${senderName(quoted)}: ${snippet(text)}`;
}

export function renderMessage(message) {
  const mine = isMine(message);
  const deleted = Boolean(message.deleted_at);
  const fromAgent = Boolean(message.sender_agent_id);
  const dataset = { id: String(message.id) };
  if (isSystem(message)) {
    return h("article", { className: "msg system", dataset },
      h("div", { className: "system-text" }, message.content || ""),
      h("time", { datetime: message.created_at || undefined }, formatTime(message.created_at)));
  }
  const name = senderName(message);
  const classes = ["msg", mine && "mine", fromAgent && "agent", deleted && "deleted"].filter(Boolean);
  const content = h("div", { className: "content", dir: "auto" });
  if (deleted) content.append(h("em", { className: "muted" }, t("message.deleted")));
  else content.append(renderMarkdown(message.content));
  return h("article", { className: classes.join(" "), dataset },
    avatar(name, message.sender_agent_id || message.sender_user_id || name, fromAgent ? "bot" : ""),
    h("div", { className: "body" },
      h("header", { className: "meta" },
        h("span", { className: "sender" }, name),
        fromAgent ? h("span", { className: "tag" }, t("message.agent_tag")) : null,
        h("time", { datetime: message.created_at || undefined, title: message.created_at || undefined }, formatTime(message.created_at)),
        message.edited_at && !deleted ? h("span", { className: "edited muted" }, t("message.edited")) : null),
      message.reply_to_id ? h("div", { className: "quote" }, quoteOf(message)) : null,
      fromAgent && !deleted ? teamCredit(message.team) : null,
      content,
      renderAttachments(message),
      mine ? receipt(message) : null,
      deleted ? null : messageActions(message, mine)));
}

/** A team answer names, above its text, the agents whose answers it brings together. */
function teamCredit(team) {
  const ids = team ? (team.answered && team.answered.length ? team.answered : team.agents) || [] : [];
  if (ids.length === 0) return null;
  const names = new Intl.ListFormat(currentLanguage(), { type: "conjunction" }).format(ids.map(agentName));
  return h("p", { className: "team-credit muted small" }, t("message.team_answer", { names }));
}

/** Direct rooms only: when the other person read one of my messages. */
function receipt(message) {
  const read = (message.read_by || [])[0];
  if (!read) return null;
  return h("p", { className: "receipt muted small", title: read.read_at },
    t("message.read", { time: formatTime(read.read_at) }));
}

/** A `message.read` event: the messages the other person just read get their receipt. */
export function markRead(data) {
  for (const id of data.message_ids || []) {
    const message = state.messages.get(Number(id));
    if (!message) continue;
    const others = (message.read_by || []).filter((r) => String(r.user_id) !== String(data.user_id));
    upsertMessage({ ...message, read_by: [...others, { user_id: data.user_id, read_at: data.read_at }] }, { quiet: true });
  }
}

function messageActions(message, mine) {
  const actions = h("div", { className: "actions" },
    h("button", { type: "button", className: "link", onclick: () => onReplyTo(message) }, t("message.reply")));
  if (mine) {
    actions.append(
      h("button", { type: "button", className: "link", onclick: () => startEdit(message.id) }, t("message.edit")),
      h("button", { type: "button", className: "link danger", onclick: () => confirmDelete(message.id) }, t("message.delete")),
    );
  }
  return actions;
}

/** A line in the room that is not a message (someone joined): shown live, not stored. */
export function appendNotice(text) {
  const container = $("message-items");
  container.insertBefore(h("p", { className: "notice", role: "status" }, text), container.querySelector(".msg.pending"));
  scrollToBottom(false);
}

export function markDeleted(data) {
  const id = Number(data.id ?? data.message_id ?? (data.message && data.message.id));
  const message = state.messages.get(id);
  if (!message) return;
  upsertMessage({ ...message, content: "", deleted_at: data.deleted_at || new Date().toISOString() }, { quiet: true });
}

function startEdit(id) {
  const message = state.messages.get(Number(id));
  const node = state.nodes.get(Number(id));
  if (!message || !node) return;
  const editor = h("textarea", { className: "edit-box", rows: "3", "aria-label": t("message.edit_label"), dir: "auto" });
  editor.value = message.content || "";
  const restore = () => upsertMessage(state.messages.get(Number(id)) || message, { quiet: true });
  const save = async () => {
    const text = editor.value.trim();
    if (!text || text === message.content) return restore();
    try {
      const updated = await api(`/api/chat/messages/${enc(id)}`, { method: "PUT", body: { content: text } });
      upsertMessage(updated, { quiet: true });
    } catch (err) {
      toast(t("message.edit_failed", { reason: refusal(err) }));
    }
  };
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      save();
    } else if (event.key === "Escape") restore();
  });
  node.querySelector(".content").replaceChildren(editor);
  node.querySelector(".actions").replaceChildren(
    h("button", { type: "button", className: "link", onclick: save }, t("common.save")),
    h("button", { type: "button", className: "link", onclick: restore }, t("common.cancel")),
  );
  editor.focus();
}

/** Asks in the message itself (no window.confirm), then deletes. */
function confirmDelete(id) {
  const node = state.nodes.get(Number(id));
  if (!node) return;
  const actions = node.querySelector(".actions");
  const keep = () => upsertMessage(state.messages.get(Number(id)), { quiet: true });
  const yes = h("button", { type: "button", className: "link danger", onclick: () => deleteMessage(id) }, t("message.delete_confirm"));
  actions.replaceChildren(
    h("span", { className: "muted" }, t("message.delete_question")), " ", yes,
    h("button", { type: "button", className: "link", onclick: keep }, t("common.cancel")),
  );
  actions.classList.add("visible");
  yes.focus();
}

async function deleteMessage(id) {
  try {
    await api(`/api/chat/messages/${enc(id)}`, { method: "DELETE" });
    markDeleted({ id });
  } catch (err) {
    toast(t("message.delete_failed", { reason: refusal(err) }));
  }
}

export function scheduleRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (document.hidden || !state.roomId || state.messages.size === 0) return;
    const newest = Math.max(...state.messages.keys());
    if (newest <= state.lastReadSent) return;
    state.lastReadSent = newest;
    api(`/api/chat/rooms/${enc(state.roomId)}/read`, { method: "POST", body: { message_id: newest }, keepalive: true }).catch(() => {});
  }, 1000);
}

export function clearMessages() {
  clearTimeout(readTimer);
  state.messages.clear();
  state.nodes.clear();
  state.pending.clear();
  state.nextBefore = null;
  state.lastReadSent = 0;
  $("message-items").replaceChildren();
}

/** After a language change: times and labels are rendered again. */
export function rerenderMessages() {
  for (const message of state.messages.values()) upsertMessage(message, { quiet: true });
}
