/* A room's settings: name, topic, archive; members and their roles; invitations by e-mail.
 * The server decides who may do what; its refusals (403, 409) are shown in the panel. */

import { api, enc, refusal, session } from "./api.js";
import { $, formError, h, listOf, toast } from "./dom.js";
import { formatDate, t } from "./i18n.js";
import { loadRooms } from "./rooms.js";
import { currentRoom, state } from "./state.js";

const ROLES = ["owner", "admin", "member"];

function showError(message) {
  formError($("panel-error"), message);
}

export function renderDetails() {
  const room = currentRoom();
  if (!room) return;
  const form = $("room-form");
  form.elements.name.value = room.name || "";
  form.elements.topic.value = room.topic || "";
  $("archive-room").textContent = t(room.archived ? "panel.unarchive" : "panel.archive");
}

async function updateRoom(changes) {
  showError("");
  try {
    await api(`/api/chat/rooms/${enc(state.roomId)}`, { method: "PUT", body: changes });
    await loadRooms();
    toast(t("panel.saved"), "info");
  } catch (err) {
    showError(refusal(err));
  }
}

function saveDetails(event) {
  event.preventDefault();
  const form = event.currentTarget;
  updateRoom({ name: form.elements.name.value.trim(), topic: form.elements.topic.value.trim() });
}

function toggleArchive() {
  const room = currentRoom();
  if (room) updateRoom({ archived: !room.archived });
}

// ---------------------------------------------------------------- members

export function renderMembers() {
  const list = $("member-list");
  const mine = state.members.find((m) => String(m.user_id) === String(session.user?.id));
  state.myRole = mine ? mine.role : state.myRole;
  list.replaceChildren(...state.members.map((member) => {
    const self = String(member.user_id) === String(session.user?.id);
    const select = h("select", { "aria-label": t("panel.role_of", { name: member.name }) },
      ...ROLES.map((role) => h("option", { value: role, selected: role === member.role }, t(`role.${role}`))));
    select.addEventListener("change", () => changeRole(member, select));
    return h("li", { className: "member", dataset: { userId: String(member.user_id) } },
      h("span", { className: "presence-dot", dataset: { presence: String(member.user_id) }, "aria-hidden": "true" }),
      h("span", { className: "member-name" }, member.name, h("span", { className: "muted" }, ` @${member.handle}`)),
      select,
      h("button", {
        type: "button",
        className: "link danger",
        onclick: () => removeMember(member),
      }, self ? t("panel.leave") : t("panel.remove")));
  }));
}

async function changeRole(member, select) {
  showError("");
  try {
    await api(`/api/chat/rooms/${enc(state.roomId)}/members/${enc(member.user_id)}`, { method: "PATCH", body: { role: select.value } });
    toast(t("panel.role_changed", { name: member.name, role: t(`role.${select.value}`) }), "info");
  } catch (err) {
    select.value = member.role;
    showError(refusal(err));
  }
}

async function removeMember(member) {
  showError("");
  try {
    await api(`/api/chat/rooms/${enc(state.roomId)}/members/${enc(member.user_id)}`, { method: "DELETE" });
  } catch (err) {
    showError(refusal(err));
  }
}

export async function fillColleagues() {
  const select = $("add-member-form").elements.user_id;
  try {
    const inRoom = new Set(state.members.map((m) => String(m.user_id)));
    const colleagues = listOf(await api("/api/org/users")).filter((u) => !inRoom.has(String(u.id)));
    select.replaceChildren(...colleagues.map((u) => h("option", { value: u.id }, `${u.name} (@${u.handle})`)));
    $("add-member-form").hidden = colleagues.length === 0;
  } catch {
    $("add-member-form").hidden = true;
  }
}

async function addMember(event) {
  event.preventDefault();
  showError("");
  const form = event.currentTarget;
  try {
    await api(`/api/chat/rooms/${enc(state.roomId)}/members`, {
      method: "POST",
      body: { user_id: form.elements.user_id.value, role: form.elements.role.value },
    });
  } catch (err) {
    showError(refusal(err));
  }
}

// ---------------------------------------------------------------- invitations

async function invite(event) {
  event.preventDefault();
  showError("");
  const form = event.currentTarget;
  const email = form.elements.email.value.trim();
  if (!email) return;
  try {
    await api(`/api/chat/rooms/${enc(state.roomId)}/invite`, { method: "POST", body: { email } });
    form.reset();
    toast(t("panel.invited", { email }), "info");
    await loadInvitations();
  } catch (err) {
    showError(refusal(err));
  }
}

export async function loadInvitations() {
  const list = $("invitation-list");
  let items = [];
  try {
    items = listOf(await api(`/api/chat/rooms/${enc(state.roomId)}/invitations`));
  } catch (err) {
    list.replaceChildren(h("li", { className: "muted" }, refusal(err)));
    return;
  }
  list.replaceChildren(...items.map((item) => h("li", { className: "invitation", dataset: { status: item.status } },
    h("span", { className: "invitation-email" }, item.email),
    h("span", { className: "muted" }, `${t(`invitation.${item.status}`)} · ${formatDate(item.created_at)}`),
    item.status === "pending"
      ? h("span", { className: "row-actions" },
        h("button", { type: "button", className: "link", onclick: () => invitationAction(item, "resend") }, t("panel.resend")),
        h("button", { type: "button", className: "link danger", onclick: () => invitationAction(item, "revoke") }, t("panel.revoke")))
      : null)));
  $("invitations-empty").hidden = items.length > 0;
}

async function invitationAction(item, action) {
  showError("");
  const base = `/api/chat/rooms/${enc(state.roomId)}/invitations/${enc(item.id)}`;
  try {
    if (action === "resend") await api(`${base}/resend`, { method: "POST" });
    else await api(base, { method: "DELETE" });
    toast(t(action === "resend" ? "panel.resent" : "panel.revoked", { email: item.email }), "info");
  } catch (err) {
    showError(refusal(err));
  }
  await loadInvitations();
}

export function wireRoomPanel() {
  $("room-form").addEventListener("submit", saveDetails);
  $("archive-room").addEventListener("click", toggleArchive);
  $("add-member-form").addEventListener("submit", addMember);
  $("invite-form").addEventListener("submit", invite);
}
