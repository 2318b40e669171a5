/* Start-up and navigation: which view the address shows, and the wiring between modules. */

import { learnAgents, loadAgents, wireAgents } from "./agents.js";
import { api, clearSession, saveSession, session, whenSessionExpires } from "./api.js";
import { showRoomAttachments, wireAttachments } from "./attachments.js";
import { showAuth, signOut, wireAuth } from "./auth.js";
import { closeRoom, openRoom, renderRoomHeader, wireChat } from "./chat.js";
import { wireComposer, setReplyTo } from "./composer.js";
import { $, paintAvatar, toast } from "./dom.js";
import { applyLanguage, currentLanguage, initLanguage, LANGUAGES, t } from "./i18n.js";
import { loadDocuments, stopKnowledge, wireKnowledge } from "./knowledge.js";
import { loadEarlier, rerenderMessages, wireMessages } from "./messages.js";
import { storedReply } from "./replies.js";
import { fillColleagues, loadInvitations, renderDetails, renderMembers, wireRoomPanel } from "./room-panel.js";
import { loadRooms, renderRooms, startUserStream, stopUserStream, wireRoomList, wireRooms } from "./rooms.js";
import { navigate, parse, roomPath, startRouting } from "./router.js";
import { confirmEmail, leaveSettings, showSection, unsubscribe, wireSettings } from "./settings.js";
import { closeSearch, wireSearch } from "./search.js";
import { roomById, state } from "./state.js";

let entered = false;

function renderMe() {
  const user = session.user || {};
  $("me-name").textContent = user.name || user.email || "";
  $("me-email").textContent = user.email || "";
  paintAvatar($("me-avatar"), user.name || user.email, user.id || user.email);
}

function showPanel(panel) {
  const open = panel === "settings" || panel === "knowledge" || panel === "agents";
  $("room-panel").hidden = !open;
  $("settings-panel").hidden = panel !== "settings";
  $("knowledge-panel").hidden = panel !== "knowledge";
  $("agents-panel").hidden = panel !== "agents";
  for (const link of document.querySelectorAll(".chat-head [data-panel]")) {
    link.setAttribute("aria-expanded", String(link.dataset.panel === panel));
    link.href = roomPath(state.roomId, link.dataset.panel === panel ? null : link.dataset.panel);
  }
  stopKnowledge();
  if (panel === "settings") {
    renderDetails();
    renderMembers();
    fillColleagues();
    loadInvitations();
  } else if (panel === "knowledge") loadDocuments();
  else if (panel === "agents") loadAgents();
}

async function showRoute(route) {
  if (route.view === "confirm-email") {
    await showConfirmation();
    return;
  }
  if (route.view === "unsubscribe") {
    await showUnsubscribe();
    return;
  }
  if (!session.token) {
    showAuth();
    return;
  }
  if (!entered) return; // enterApp() shows the route once the rooms are loaded
  if (route.view !== "settings") leaveSettings();
  $("settings-view").hidden = route.view !== "settings";
  if (route.view === "settings") {
    closeRoom();
    showPanel(null);
    $("welcome").hidden = true;
    showSection(route.section);
    return;
  }
  const asked = route.view === "room" ? roomById(route.roomId) : null;
  const wanted = asked || roomById(sessionStorage.getItem("iaf.room")) || state.rooms[0];
  if (!wanted) {
    closeRoom();
    showPanel(null);
    $("welcome").hidden = false;
    if (route.view !== "home") navigate("/", { replace: true, quiet: true });
    return;
  }
  if (!asked) {
    navigate(roomPath(wanted.id), { replace: true, quiet: true });
  }
  $("welcome").hidden = true;
  const opening = openRoom(wanted.id);
  showPanel(asked ? route.panel : null);
  await opening;
  showRoomAttachments();
}

function showNotice(title) {
  $("auth-view").hidden = true;
  $("app-view").hidden = true;
  $("notice-view").hidden = false;
  $("notice-title").dataset.i18n = title;
  $("notice-title").textContent = t(title);
}

async function showUnsubscribe() {
  showNotice("unsubscribe.title");
  $("notice-text").textContent = t("unsubscribe.working");
  const result = await unsubscribe();
  $("notice-text").textContent = result.ok ? t("unsubscribe.done") : t("unsubscribe.failed", { reason: result.message });
  $("notice-link").focus();
}

async function showConfirmation() {
  showNotice("confirm.title");
  $("notice-text").textContent = t("confirm.working");
  const result = await confirmEmail();
  $("notice-text").textContent = result.ok ? t("confirm.done", { email: result.email }) : t("confirm.failed", { reason: result.message });
  $("notice-link").focus();
}

async function enterApp() {
  try {
    saveSession(undefined, await api("/api/me"));
  } catch (err) {
    if (err.status === 401) return;
    if (!session.user) throw err;
  }
  $("auth-view").hidden = true;
  $("notice-view").hidden = true;
  $("app-view").hidden = false;
  renderMe();
  const streaming = startUserStream();
  await Promise.race([streaming, new Promise((resolve) => setTimeout(resolve, 3000))]);
  await Promise.all([loadRooms(), learnAgents()]);
  entered = true;
  const route = parse();
  await showRoute(["confirm-email", "unsubscribe"].includes(route.view) ? { view: "home" } : route);
}

function leaveApp(reason) {
  entered = false;
  closeSearch();
  closeRoom();
  stopUserStream();
  stopKnowledge();
  leaveSettings();
  state.rooms = [];
  renderRooms();
  renderMe();
  if (window.location.pathname !== "/") window.history.replaceState(null, "", "/");
  showAuth();
  if (reason) toast(reason, "info");
}

function onRoomGone(roomId, why) {
  if (String(roomId) !== String(state.roomId)) return;
  toast(t(why === "room.delete" ? "room.deleted" : "room.no_access"));
  closeRoom();
  loadRooms().then(() => navigate("/", { replace: true }));
}

/** Links marked data-route change the view without reloading the page. */
function followRouteLinks(event) {
  const link = event.target.closest("a[data-route]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(new URL(link.href).pathname);
}

function wireLanguage() {
  for (const select of document.querySelectorAll(".language-select")) {
    select.replaceChildren(...Object.entries(LANGUAGES).map(([code, label]) => {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = label;
      return option;
    }));
    select.value = currentLanguage();
    select.addEventListener("change", () => applyLanguage(select.value, true));
  }
  document.addEventListener("languagechange-iaf", () => {
    renderRooms();
    renderRoomHeader();
    rerenderMessages();
    if (!$("room-panel").hidden) showPanel(parse().panel);
  });
}

function wire() {
  wireLanguage();
  wireAuth(enterApp);
  wireRoomList();
  wireComposer();
  wireAttachments();
  wireSearch();
  wireRoomPanel();
  wireKnowledge();
  wireAgents();
  wireSettings({ profileChanged: renderMe });
  wireMessages({ replyTo: setReplyTo, storedReply });
  wireChat({
    membersChanged: () => !$("settings-panel").hidden && renderMembers(),
    invitationsChanged: () => !$("settings-panel").hidden && loadInvitations(),
    roomGone: onRoomGone,
  });
  wireRooms({ roomsChanged: () => renderRoomHeader(), roomLost: onRoomGone });
  whenSessionExpires(() => {
    clearSession();
    leaveApp(t("auth.session_ended"));
  });
  document.addEventListener("click", followRouteLinks);
  $("logout").addEventListener("click", async () => {
    await signOut();
    leaveApp();
  });
  $("load-more").addEventListener("click", loadEarlier);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && entered) loadRooms();
  });
  startRouting(showRoute);
}

async function start() {
  initLanguage();
  wire();
  const route = parse();
  if (route.view === "confirm-email") {
    await showConfirmation();
    return;
  }
  if (route.view === "unsubscribe") {
    await showUnsubscribe();
    return;
  }
  if (!session.token) {
    if (route.view !== "home") window.history.replaceState(null, "", "/");
    showAuth();
    return;
  }
  try {
    await enterApp();
  } catch (err) {
    clearSession();
    leaveApp(err.message);
  }
}

start();
