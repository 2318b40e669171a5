/* What the client knows right now, shared by the modules. Only the room view resets it. */

export const state = {
  rooms: [],
  roomId: null,
  room: null, // the open room's stream (LiveStream)
  messages: new Map(), // id -> message
  nodes: new Map(), // id -> element
  pending: new Map(), // client_msg_id -> element (optimistic, not yet acknowledged)
  replies: new Map(), // reply_id -> streaming agent reply
  nextBefore: null,
  typing: new Map(), // who -> {name, timer}
  members: [],
  myRole: null,
  agents: new Map(), // id -> {id, name, description}
  replyTo: null,
  lastReadSent: 0,
};

export function currentRoom() {
  return state.rooms.find((room) => String(room.id) === String(state.roomId)) || null;
}

export function roomById(id) {
  return state.rooms.find((room) => String(room.id) === String(id)) || null;
}
