/* The room list: loading, unread and mention badges, new group and direct rooms, and the
 * caller's own live stream (GET /api/events) that keeps the list current. */

import { api, refusal, session } from "./api.js";
import { $, formError, h, listOf, toast } from "./dom.js";
import { t } from "./i18n.js";
import { navigate, roomPath } from "./router.js";
import { LiveStream } from "./sse.js";
import { roomById, state } from "./state.js";

let userStream = null;
let onRoomsChanged = () => {};
let onRoomLost = () => {};

export function wireRooms({ roomsChanged, roomLost }) {
  onRoomsChanged = roomsChanged;
  onRoomLost = roomLost;
}

export async function loadRooms() {
  try {
    const fresh = listOf(await api("/api/chat/rooms?include_archived=true"));
    for (const room of fresh) {
      if (String(room.id) === String(state.roomId)) {
        room.unread_count = 0;
        room.unread_mentions = 0;
      }
    }
    state.rooms = fresh;
  } catch (err) {
    toast(t("rooms.load_failed", { reason: err.message }));
  }
  renderRooms();
  onRoomsChanged();
}

function badge(count, className, label) {
  if (count <= 0) return null;
  const text = count > 99 ? "99+" : String(count);
  return h("span", { className, title: label, "aria-label": label }, className.includes("mention") ? `@${text}` : text);
}

export function renderRooms() {
  const list = $("room-list");
  list.replaceChildren(...state.rooms.map((room) => {
    const active = String(room.id) === String(state.roomId);
    const unread = active ? 0 : Number(room.unread_count || 0);
    const mentioned = active ? 0 : Number(room.unread_mentions || 0);
    return h("li", { dataset: { roomId: String(room.id) } },
      h("a", {
        href: roomPath(room.id),
        className: `room${active ? " active" : ""}${room.archived ? " archived" : ""}`,
        "aria-current": active ? "page" : undefined,
        dataset: { route: "" },
      },
      h("span", { className: "room-hash", "aria-hidden": "true" }, room.kind === "direct" ? "@" : "#"),
      h("span", { className: "room-name" }, room.name || t("rooms.untitled")),
      room.is_muted ? h("span", { className: "muted-mark" }, t("rooms.muted")) : null,
      badge(mentioned, "badge mention", t("rooms.mentions", { count: mentioned })),
      badge(unread, "badge", t("rooms.unread", { count: unread }))));
  }));
  $("rooms-empty").hidden = state.rooms.length > 0;
}

async function createRoom(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = form.elements.name.value.trim();
  const kind = form.elements.kind.value === "project" ? "project" : "group";
  if (!name) return;
  try {
    const room = await api("/api/chat/rooms", { method: "POST", body: { name, kind } });
    form.reset();
    state.rooms = [room, ...state.rooms.filter((r) => r.id !== room.id)];
    renderRooms();
    navigate(roomPath(room.id));
  } catch (err) {
    toast(t("rooms.create_failed", { reason: refusal(err) }));
  }
}

// ---------------------------------------------------------------- direct rooms

async function openDirectDialog() {
  const dialog = $("direct-dialog");
  const select = dialog.querySelector("select");
  formError($("direct-error"), "");
  select.replaceChildren();
  try {
    const colleagues = listOf(await api("/api/org/users")).filter((u) => String(u.id) !== String(session.user?.id));
    select.append(...colleagues.map((u) => h("option", { value: u.id }, `${u.name} (@${u.handle})`)));
    $("direct-none").hidden = colleagues.length > 0;
    dialog.querySelector("button[type=submit]").disabled = colleagues.length === 0;
  } catch (err) {
    formError($("direct-error"), refusal(err));
  }
  dialog.showModal();
  select.focus();
}

async function createDirect(event) {
  event.preventDefault();
  const dialog = $("direct-dialog");
  if (event.submitter && event.submitter.value === "cancel") {
    dialog.close();
    return;
  }
  const select = dialog.querySelector("select");
  const option = select.selectedOptions[0];
  if (!option) return;
  const name = option.textContent.replace(/\s*\(@[^)]*\)$/, "");
  try {
    const body = { name, kind: "direct", member_ids: [option.value] };
    const room = await api("/api/chat/rooms", { method: "POST", body });
    dialog.close();
    state.rooms = [room, ...state.rooms.filter((r) => r.id !== room.id)];
    renderRooms();
    navigate(roomPath(room.id));
  } catch (err) {
    formError($("direct-error"), refusal(err));
  }
}

// ---------------------------------------------------------------- the caller's own stream

function onUserEvent(type, data) {
  const room = roomById(data.room_id);
  switch (type) {
    case "room.message":
      if (room && String(room.id) !== String(state.roomId) && String(data.sender_user_id) !== String(session.user?.id)) {
        room.unread_count = Number(room.unread_count || 0) + 1;
        renderRooms();
      }
      break;
    case "mention":
      if (room && String(room.id) !== String(state.roomId)) {
        room.unread_mentions = Number(room.unread_mentions || 0) + 1;
        renderRooms();
        toast(t("rooms.mentioned_in", { room: room.name }), "info");
      }
      break;
    case "room.join":
    case "room.update":
    case "room.role":
      loadRooms();
      break;
    case "room.leave":
    case "room.delete":
      state.rooms = state.rooms.filter((r) => String(r.id) !== String(data.room_id));
      renderRooms();
      if (String(data.room_id) === String(state.roomId)) onRoomLost(data.room_id, type);
      break;
    default:
      break;
  }
}

export function startUserStream() {
  stopUserStream();
  userStream = new LiveStream("/api/events", {
    onEvent: onUserEvent,
    // Unread counts are recomputed by the server after a gap (they are not replayed).
    onOpen: (resumed) => {
      if (resumed) loadRooms();
    },
  });
  return userStream.connected;
}

export function stopUserStream() {
  userStream?.stop();
  userStream = null;
}

export function wireRoomList() {
  $("new-room-form").addEventListener("submit", createRoom);
  $("new-direct").addEventListener("click", openDirectDialog);
  $("direct-form").addEventListener("submit", createDirect);
}
