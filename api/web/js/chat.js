/* The open room: its live stream (GET /api/chat/rooms/{id}/events), header and members. */

import { api, enc, refusal } from "./api.js";
import { $, listOf, sleep, toast } from "./dom.js";
import { t } from "./i18n.js";
import { clearTyping, closeMentions, onTyping, setReplyTo } from "./composer.js";
import { appendNotice, clearMessages, loadMessages, markDeleted, markRead, upsertMessage } from "./messages.js";
import { clearReplies, replyHandlers } from "./replies.js";
import { loadRooms, renderRooms } from "./rooms.js";
import { LiveStream } from "./sse.js";
import { currentRoom, state } from "./state.js";

let onMembersChanged = () => {};
let onInvitationsChanged = () => {};
let onRoomGone = () => {};

export function wireChat({ membersChanged, invitationsChanged, roomGone }) {
  onMembersChanged = membersChanged;
  onInvitationsChanged = invitationsChanged;
  onRoomGone = roomGone;
  $("mute-toggle").addEventListener("click", toggleMute);
}

function setStatus(status) {
  const el = $("conn-status");
  el.dataset.state = status;
  el.textContent = t(`status.${status}`);
}

export function closeRoom() {
  state.room?.stop();
  state.room = null;
  state.roomId = null;
  setStatus("offline");
  clearMessages();
  clearReplies();
  clearTyping();
  $("chat-view").hidden = true;
  delete $("chat-view").dataset.loadedRoom;
}

/** The header shows the room as the list knows it (name, topic, archived). */
export function renderRoomHeader() {
  const room = currentRoom();
  if (!room) return;
  $("room-title").textContent = room.name;
  $("room-topic").textContent = room.topic || "";
  $("room-archived").hidden = !room.archived;
  $("composer").hidden = Boolean(room.archived);
  $("room-kind").textContent = room.kind === "direct" ? "@" : "#";
  const mute = $("mute-toggle");
  mute.setAttribute("aria-pressed", String(Boolean(room.is_muted)));
  mute.textContent = t(room.is_muted ? "room.unmute" : "room.mute");
  mute.title = t("room.mute_hint");
}

/** Muting is the caller's own setting: no mention badge, no e-mail for this room. */
async function toggleMute() {
  const room = currentRoom();
  if (!room) return;
  try {
    const membership = await api(`/api/chat/rooms/${enc(room.id)}/membership`, { method: "PATCH", body: { is_muted: !room.is_muted } });
    room.is_muted = membership.is_muted;
    if (room.is_muted) room.unread_mentions = 0;
    renderRoomHeader();
    renderRooms();
  } catch (err) {
    toast(t("room.mute_failed", { reason: refusal(err) }));
  }
}

export async function openRoom(roomId) {
  if (String(roomId) === String(state.roomId) && state.room) {
    $("composer-input").focus();
    return;
  }
  closeRoom();
  // Where the focus was when the room was asked for: if the person moves it (to the search
  // box, say) while the room loads, the composer must not take it back.
  const focusedBefore = document.activeElement;
  state.roomId = roomId;
  sessionStorage.setItem("iaf.room", String(roomId));
  state.members = [];
  state.myRole = currentRoom()?.my_role || null;
  setReplyTo(null);
  closeMentions();
  const room = currentRoom();
  if (room) {
    room.unread_count = 0;
    room.unread_mentions = 0;
  }
  renderRooms();
  renderRoomHeader();
  $("chat-view").hidden = false;
  $("empty-room").hidden = true;
  document.title = `${room ? room.name : t("room.room")} · IAFactory Agents`;

  // Subscribe first, then read the history: whatever happens in between arrives on the
  // stream and is merged by message id, so nothing falls in the gap.
  state.room = new LiveStream(`/api/chat/rooms/${enc(roomId)}/events`, {
    onEvent: handleEvent,
    onStatus: setStatus,
    onRefused: (status) => {
      if (status !== 401) onRoomGone(roomId);
    },
  });
  await Promise.race([state.room.connected, sleep(3000)]);
  if (String(state.roomId) !== String(roomId)) return;
  await loadMessages(roomId, null);
  await loadMembers(roomId);
  const focused = document.activeElement;
  if (focused === focusedBefore || focused === document.body || focused === null) {
    $("composer-input").focus();
  }
  $("chat-view").dataset.loadedRoom = String(roomId); // the room is read: history, members
}

export async function loadMembers(roomId = state.roomId) {
  try {
    const members = listOf(await api(`/api/chat/rooms/${enc(roomId)}/members`));
    if (String(state.roomId) !== String(roomId)) return;
    state.members = members;
    onMembersChanged();
  } catch {
    /* autocomplete then offers agents only */
  }
}

function handleEvent(type, data) {
  if (replyHandlers[type]) {
    replyHandlers[type](data);
    return;
  }
  switch (type) {
    case "message.new":
    case "message.edit":
      upsertMessage(data.message || data);
      break;
    case "message.delete":
      markDeleted(data);
      break;
    case "typing":
      onTyping(data);
      break;
    case "presence":
      onPresence(data);
      break;
    case "member.add":
    case "member.remove":
    case "member.update":
      loadMembers();
      break;
    case "invitation.accepted":
      loadMembers().then(() => {
        const member = state.members.find((m) => String(m.user_id) === String(data.user_id));
        appendNotice(t("room.joined", { name: member ? member.name : t("message.someone") }));
      });
      onInvitationsChanged();
      break;
    case "invitation.expired":
      onInvitationsChanged();
      break;
    case "room.update":
      loadRooms();
      break;
    case "message.read":
      markRead(data);
      break;
    case "room.delete":
      onRoomGone(state.roomId);
      break;
    default:
      break; // read markers: nothing to show in this client
  }
}

const online = new Set();

function onPresence(data) {
  const who = String(data.user_id || "");
  if (data.status === "online") online.add(who);
  else online.delete(who);
  for (const item of document.querySelectorAll("[data-presence]")) {
    item.dataset.online = String(online.has(item.dataset.presence));
  }
}

export function isOnline(userId) {
  return online.has(String(userId));
}

