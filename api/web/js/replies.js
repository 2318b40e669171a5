/* Agent replies as they stream in (agent.start/delta/reset/done/error), with a Stop button.
 * A team answer (team.start … team.done) streams each agent's draft, then the synthesis: the
 * drafts stay on screen, marked as drafts, until the one stored answer takes their place. */

import { api, enc, refusal } from "./api.js";
import { $, avatar, h, toast } from "./dom.js";
import { t } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";
import { agentName, catchUp, isNearBottom, scrollToBottom, updateEmpty } from "./messages.js";
import { state } from "./state.js";

function ensureReply(data) {
  const replyId = String(data.reply_id);
  let reply = state.replies.get(replyId);
  if (reply) return reply;
  const agentId = data.agent_id || "";
  const name = data.agent_name || agentName(agentId);
  const text = h("div", { className: "content streaming-text", dir: "auto" });
  const status = h("span", { className: "reply-status muted", role: "status" }, t("reply.thinking"));
  const stop = h("button", { type: "button", className: "link danger stop-reply" }, t("reply.stop"));
  const element = h("article", { className: "msg agent streaming", dataset: { reply: replyId } },
    avatar(name, agentId, "bot"),
    h("div", { className: "body" },
      h("header", { className: "meta" },
        h("span", { className: "sender" }, name),
        h("span", { className: "tag" }, t("message.agent_tag")),
        status),
      text,
      h("div", { className: "actions visible" }, stop)));
  reply = { id: replyId, agentId, element, text, status, stop, seq: -Infinity, attempt: 0, content: "", messageId: null, timer: null, frame: 0, teamId: null, draft: false };
  stop.addEventListener("click", () => cancelReply(reply));
  state.replies.set(replyId, reply);
  $("reply-items").append(element);
  updateEmpty();
  return reply;
}

async function cancelReply(reply) {
  reply.stop.disabled = true;
  try {
    await api(`/api/chat/rooms/${enc(state.roomId)}/replies/${enc(reply.id)}/cancel`, { method: "POST" });
    reply.status.textContent = t("reply.stopping");
  } catch (err) {
    reply.stop.disabled = false;
    toast(t("reply.stop_failed", { reason: refusal(err) }));
  }
}

export function removeReply(replyId) {
  const reply = state.replies.get(String(replyId));
  if (!reply) return;
  clearTimeout(reply.timer);
  cancelAnimationFrame(reply.frame);
  reply.element.remove();
  state.replies.delete(String(replyId));
  updateEmpty();
}

/** A stored message replaces the streamed bubble that was waiting for it (and, for a team
 * answer, the drafts it was written from). */
export function storedReply(messageId) {
  for (const [replyId, reply] of [...state.replies]) {
    if (reply.messageId !== null && Number(reply.messageId) === messageId) removeAnswered(replyId);
  }
}

function removeAnswered(replyId) {
  const teamId = state.replies.get(replyId)?.teamId;
  removeReply(replyId);
  if (teamId) removeDrafts(teamId);
}

function removeDrafts(teamId) {
  for (const [replyId, reply] of [...state.replies]) {
    if (reply.draft && reply.teamId === teamId) removeReply(replyId);
  }
}

/** A part of a team answer is a draft: labelled so, and kept until the team finishes. */
function markTeam(reply, data) {
  if (!data.team_id || reply.teamId) return;
  reply.teamId = String(data.team_id);
  reply.draft = Boolean(data.part);
  if (!reply.draft) return;
  reply.element.classList.add("draft");
  reply.status.before(h("span", { className: "tag draft-tag" }, t("reply.draft")));
}

export function clearReplies() {
  for (const replyId of [...state.replies.keys()]) removeReply(replyId);
  $("reply-items").replaceChildren();
}

function paint(reply) {
  // Markdown is rendered at most once a frame, however fast the deltas come.
  if (reply.frame) return;
  reply.frame = requestAnimationFrame(() => {
    reply.frame = 0;
    const nearBottom = isNearBottom();
    reply.text.replaceChildren(renderMarkdown(reply.content));
    if (nearBottom) scrollToBottom(true);
  });
}

function onStart(data) {
  const reply = ensureReply(data);
  markTeam(reply, data);
  reply.status.textContent = t("reply.thinking");
  scrollToBottom(false);
}

function onDelta(data) {
  const reply = ensureReply(data);
  const attempt = Number(data.attempt) || 1;
  if (attempt < reply.attempt) return; // an attempt the server has moved on from
  if (attempt > reply.attempt) {
    reply.attempt = attempt;
    reply.content = "";
    reply.seq = -Infinity;
  }
  const seq = Number(data.seq);
  if (Number.isFinite(seq)) {
    if (seq <= reply.seq) return; // already shown (replayed after a reconnect)
    reply.seq = seq;
  }
  reply.content += String(data.text || "");
  reply.status.textContent = t("reply.writing");
  paint(reply);
}

function onReset(data) {
  const reply = ensureReply(data);
  reply.attempt = Math.max(reply.attempt, Number(data.attempt) || 0);
  reply.content = "";
  reply.seq = -Infinity;
  reply.text.replaceChildren();
  reply.status.textContent = t("reply.retrying");
}

function finish(reply) {
  reply.element.classList.remove("streaming");
  reply.status.textContent = "";
  reply.stop.remove();
}

function onDone(data) {
  const replyId = String(data.reply_id);
  const messageId = data.message_id;
  if (messageId !== undefined && messageId !== null && state.messages.has(Number(messageId))) {
    removeAnswered(replyId);
    return;
  }
  const reply = state.replies.get(replyId);
  if (!reply) return;
  finish(reply);
  if (reply.draft) {
    reply.status.textContent = t("reply.draft_ready"); // team.done removes it
    return;
  }
  if (messageId === undefined || messageId === null) {
    reply.timer = setTimeout(() => removeReply(replyId), 15000); // nothing stored
    return;
  }
  reply.messageId = messageId;
  // message.new normally follows; if it does not, fetch it.
  reply.timer = setTimeout(() => catchUp().then(() => storedReply(Number(messageId))), 3000);
}

function onError(data) {
  const reply = ensureReply(data);
  markTeam(reply, data);
  finish(reply);
  reply.element.classList.add("failed");
  const error = data.error || {};
  const cancelled = error.code === "cancelled";
  const message = cancelled ? t("reply.cancelled") : error.code === "insufficient_credits" ? t("reply.no_credits") : error.message || t("reply.failed");
  reply.text.replaceChildren(
    h("span", { className: cancelled ? "muted" : "danger", role: cancelled ? null : "alert" }, message),
    " ",
    error.code === "insufficient_credits" ? h("a", { href: "/settings/credits", className: "link", dataset: { route: "" } }, t("reply.see_credits")) : null,
    " ",
    h("button", { type: "button", className: "link", onclick: () => removeReply(reply.id) }, t("common.dismiss")),
  );
}

/** The team finished (answered, failed or stopped): its drafts, failed ones too, go. */
function onTeamDone(data) {
  removeDrafts(String(data.team_id));
}

export const replyHandlers = {
  "agent.start": onStart,
  "agent.delta": onDelta,
  "agent.reset": onReset,
  "agent.done": onDone,
  "agent.error": onError,
  "team.done": onTeamDone,
};
