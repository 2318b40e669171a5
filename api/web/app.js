/* IAFactory Agents: a small chat client with no build step.
 *
 * Security rule for this file: every piece of text that comes from the server or the user is
 * put into the page with textContent / createTextNode, never parsed as HTML.
 *
 * Live updates come from GET /api/chat/rooms/{id}/events read with fetch() (EventSource
 * cannot send the Authorization header) and parsed as Server-Sent Events here; on reconnect
 * the last seen event id is sent back as Last-Event-ID so that nothing is missed.
 */
"use strict";

(() => {
  const TOKEN_KEY = "iaf.token";
  const USER_KEY = "iaf.user";
  const ROOM_KEY = "iaf.room";
  const PAGE_SIZE = 50;
  const MESSAGE_MAX_BYTES = 16 * 1024;
  const TYPING_SEND_EVERY_MS = 3000;
  const TYPING_SHOW_MS = 6000;
  const STREAM_IDLE_TIMEOUT_MS = 45000; // the server sends a heartbeat every ~15 s
  const RECONNECT_MIN_MS = 1000;
  const RECONNECT_MAX_MS = 15000;

  // ---------------------------------------------------------------- state

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    user: readJson(sessionStorage.getItem(USER_KEY)),
    rooms: [],
    roomId: null,
    messages: new Map(), // id -> message
    nodes: new Map(), // id -> element
    pending: new Map(), // client_msg_id -> element (optimistic, not yet acknowledged)
    replies: new Map(), // reply_id -> streaming agent reply
    nextBefore: null,
    lastEventId: null, // of the current room's stream
    stream: null, // AbortController of the current room's stream
    typing: new Map(), // who -> {name, timer}
    lastTypingSent: 0,
    members: [],
    agents: new Map(), // id -> {id, name, description}
    replyTo: null,
    readTimer: null,
    lastReadSent: 0,
  };

  // ---------------------------------------------------------------- helpers

  function readJson(text) {
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  const $ = (id) => document.getElementById(id);

  /** createElement with properties and children; strings become text nodes. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function listOf(data) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data.items)) return data.items;
    return [];
  }

  function initials(name) {
    const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
    const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
    return letters.toUpperCase();
  }

  function hueOf(text) {
    let hash = 0;
    for (const ch of String(text || "")) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return hash % 360;
  }

  function avatar(name, key, extraClass) {
    const el = h("span", { className: `avatar ${extraClass || ""}`.trim(), "aria-hidden": "true" }, initials(name));
    el.style.setProperty("--hue", String(hueOf(key || name)));
    return el;
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const now = new Date();
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (date.toDateString() === now.toDateString()) return time;
    return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
  }

  /** Message text with @mentions wrapped in spans: text nodes only, never HTML. */
  function richText(text) {
    const fragment = document.createDocumentFragment();
    const pattern = /(^|[^\w@])(@[A-Za-z0-9](?:[\w-]|\.(?=[\w-]))*)/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      const start = match.index + match[1].length;
      if (start > last) fragment.append(document.createTextNode(text.slice(last, start)));
      fragment.append(h("span", { className: "mention" }, match[2]));
      last = start + match[2].length;
    }
    if (last < text.length) fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  let toastTimer = null;
  function toast(message, kind) {
    const el = $("toast");
    el.textContent = message;
    el.dataset.kind = kind || "error";
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      el.hidden = true;
    }, 5000);
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function authHeaders() {
    return state.token ? { Authorization: `Bearer ${state.token}` } : {};
  }

  async function api(path, options = {}) {
    const { method = "GET", body, signal } = options;
    const headers = { Accept: "application/json", ...authHeaders() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "The server cannot be reached.");
    }
    const text = await response.text();
    const data = text ? readJson(text) : null;
    if (!response.ok) {
      const error = (data && data.error) || {};
      let message = error.message;
      if (!message && data && typeof data.detail === "string") message = data.detail;
      if (!message) message = `${response.status} ${response.statusText}`.trim();
      if (response.status === 401 && state.token && !path.startsWith("/api/auth/")) {
        logout("Your session has ended. Please sign in again.");
      }
      throw new ApiError(response.status, error.code || `http_${response.status}`, message);
    }
    return data;
  }

  // ---------------------------------------------------------------- SSE parsing

  /**
   * Incremental text/event-stream parser (WHATWG HTML, "Server-sent events").
   * push() takes decoded text in arbitrary chunks; onEvent gets {type, data, id}.
   */
  class SseParser {
    constructor(onEvent, onRetry) {
      this.onEvent = onEvent;
      this.onRetry = onRetry || (() => {});
      this.buffer = "";
      this.type = "";
      this.data = [];
      this.lastId = null;
    }

    push(text) {
      this.buffer += text;
      const eol = /\r\n|\r|\n/g;
      let start = 0;
      let match;
      while ((match = eol.exec(this.buffer)) !== null) {
        // A lone CR at the very end may be the first half of a CRLF split across chunks.
        if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
        this.line(this.buffer.slice(start, match.index));
        start = match.index + match[0].length;
      }
      this.buffer = this.buffer.slice(start);
    }

    line(line) {
      if (line === "") {
        this.dispatch();
        return;
      }
      if (line.startsWith(":")) return; // comment, e.g. a heartbeat
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id") {
        if (!value.includes("\0")) this.lastId = value;
      } else if (field === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
    }

    dispatch() {
      const hasData = this.data.length > 0;
      const event = { type: this.type || "message", data: this.data.join("\n"), id: this.lastId };
      this.type = "";
      this.data = [];
      if (hasData) this.onEvent(event);
    }
  }

  // ---------------------------------------------------------------- auth

  let authMode = "login";

  function setAuthMode(mode) {
    authMode = mode;
    for (const tab of document.querySelectorAll(".tab")) {
      tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
    }
    $("name-field").hidden = mode !== "signup";
    $("auth-form").elements.password.autocomplete = mode === "signup" ? "new-password" : "current-password";
    $("auth-submit").textContent = mode === "signup" ? "Create account" : "Sign in";
    $("auth-error").hidden = true;
  }

  async function submitAuth(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const email = form.elements.email.value.trim();
    const password = form.elements.password.value;
    const name = form.elements.name.value.trim();
    const error = $("auth-error");
    error.hidden = true;
    if (!email || !password || (authMode === "signup" && !name)) {
      error.textContent = authMode === "signup" ? "Name, e-mail and password are required." : "E-mail and password are required.";
      error.hidden = false;
      return;
    }
    const body = authMode === "signup" ? { email, password, name } : { email, password };
    $("auth-submit").disabled = true;
    try {
      const path = authMode === "signup" ? "/api/auth/signup" : "/api/auth/login";
      const data = await api(path, { method: "POST", body });
      state.token = data.access_token;
      state.user = data.user || null;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      sessionStorage.setItem(USER_KEY, JSON.stringify(state.user));
      form.reset();
      await enterApp();
    } catch (err) {
      error.textContent = err.message || "Something went wrong.";
      error.hidden = false;
    } finally {
      $("auth-submit").disabled = false;
    }
  }

  function logout(reason) {
    stopStream();
    state.token = null;
    state.user = null;
    state.roomId = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(ROOM_KEY);
    if (window.location.pathname !== "/") window.history.replaceState(null, "", "/");
    $("app-view").hidden = true;
    $("auth-view").hidden = false;
    setAuthMode("login");
    if (reason) toast(reason, "info");
  }

  async function enterApp() {
    try {
      const me = await api("/api/me");
      if (me) {
        state.user = me.user || me;
        sessionStorage.setItem(USER_KEY, JSON.stringify(state.user));
      }
    } catch (err) {
      if (err.status === 401) return; // logout() already ran
      if (!state.user) throw err;
    }
    $("auth-view").hidden = true;
    $("app-view").hidden = false;
    renderMe();
    await loadRooms();
    const wanted = roomInPath() || sessionStorage.getItem(ROOM_KEY);
    const first = state.rooms.find((room) => String(room.id) === wanted) || state.rooms[0];
    if (first) openRoom(first.id, { history: "replace" });
  }

  function renderMe() {
    const user = state.user || {};
    $("me-name").textContent = user.name || user.email || "";
    $("me-email").textContent = user.email || "";
    const slot = $("me-avatar");
    slot.textContent = initials(user.name || user.email);
    slot.style.setProperty("--hue", String(hueOf(user.id || user.email)));
  }

  // ---------------------------------------------------------------- rooms

  async function loadRooms() {
    try {
      state.rooms = listOf(await api("/api/chat/rooms"));
    } catch (err) {
      toast(`Rooms could not be loaded: ${err.message}`);
    }
    renderRooms();
  }

  function renderRooms() {
    const list = $("room-list");
    list.replaceChildren(
      ...state.rooms.map((room) => {
        const active = String(room.id) === String(state.roomId);
        const unread = active ? 0 : Number(room.unread_count || 0);
        const mentioned = active ? 0 : Number(room.unread_mentions || 0);
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              className: `room${active ? " active" : ""}`,
              "aria-current": active ? "true" : undefined,
              onclick: () => openRoom(room.id),
            },
            h("span", { className: "room-hash", "aria-hidden": "true" }, room.kind === "direct" ? "@" : "#"),
            h("span", { className: "room-name" }, room.name || "untitled"),
            mentioned > 0
              ? h("span", { className: "badge mention", title: "mentions of you" }, `@${mentioned > 99 ? "99+" : mentioned}`)
              : null,
            unread > 0 ? h("span", { className: "badge" }, unread > 99 ? "99+" : String(unread)) : null,
          ),
        );
      }),
    );
    $("rooms-empty").hidden = state.rooms.length > 0;
  }

  async function createRoom(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const name = form.elements.name.value.trim();
    if (!name) return;
    try {
      const room = await api("/api/chat/rooms", { method: "POST", body: { name, kind: "group" } });
      form.reset();
      state.rooms = [room, ...state.rooms.filter((r) => r.id !== room.id)];
      renderRooms();
      openRoom(room.id);
    } catch (err) {
      toast(`The room could not be created: ${err.message}`);
    }
  }

  function currentRoom() {
    return state.rooms.find((room) => String(room.id) === String(state.roomId)) || null;
  }

  /** The room named by the address bar (/rooms/{id}), or null. */
  function roomInPath() {
    const match = /^\/rooms\/([^/]+)/.exec(window.location.pathname);
    return match ? decodeURIComponent(match[1]) : null;
  }

  async function openRoom(roomId, options = {}) {
    const path = `/rooms/${encodeURIComponent(roomId)}`;
    if (options.history !== false && window.location.pathname !== path) {
      const replace = options.history === "replace";
      window.history[replace ? "replaceState" : "pushState"]({ roomId: String(roomId) }, "", path);
    }
    if (String(roomId) === String(state.roomId) && state.stream) return;
    stopStream();
    state.roomId = roomId;
    sessionStorage.setItem(ROOM_KEY, String(roomId));
    state.messages.clear();
    state.nodes.clear();
    state.pending.clear();
    for (const reply of state.replies.values()) clearTimeout(reply.timer);
    state.replies.clear();
    for (const who of state.typing.values()) clearTimeout(who.timer);
    state.typing.clear();
    state.nextBefore = null;
    state.lastEventId = null;
    state.lastReadSent = 0;
    state.members = [];
    setReplyTo(null);
    closeMentions();
    $("message-items").replaceChildren();
    $("reply-items").replaceChildren();
    renderTyping();

    const room = currentRoom();
    if (room) {
      room.unread_count = 0;
      room.unread_mentions = 0;
    }
    renderRooms();
    $("room-title").textContent = room ? room.name : "Room";
    $("room-topic").textContent = (room && room.topic) || "";
    $("composer").hidden = false;
    $("invite-toggle").hidden = false;
    $("no-room").hidden = true;
    $("empty-room").hidden = true;

    // Subscribe first, then read the history: whatever happens in between arrives on the
    // stream and is merged by message id, so nothing falls in the gap.
    const connected = startStream(roomId);
    await Promise.race([connected, sleep(3000)]);
    if (String(state.roomId) !== String(roomId)) return;
    await loadMessages(roomId, null);
    loadMembers(roomId);
    $("composer-input").focus();
  }

  async function loadMembers(roomId) {
    try {
      const members = listOf(await api(`/api/chat/rooms/${encodeURIComponent(roomId)}/members`));
      if (String(state.roomId) === String(roomId)) state.members = members;
    } catch {
      /* autocomplete then offers agents only */
    }
  }

  async function invite(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const email = form.elements.email.value.trim();
    if (!email || !state.roomId) return;
    try {
      await api(`/api/chat/rooms/${encodeURIComponent(state.roomId)}/invite`, { method: "POST", body: { email } });
      form.reset();
      form.hidden = true;
      toast(`Invitation sent to ${email}.`, "info");
    } catch (err) {
      toast(`The invitation could not be sent: ${err.message}`);
    }
  }

  // ---------------------------------------------------------------- messages

  async function loadMessages(roomId, before) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (before !== null && before !== undefined) params.set("before", String(before));
    const list = $("messages");
    const fromBottom = list.scrollHeight - list.scrollTop;
    try {
      const page = await api(`/api/chat/rooms/${encodeURIComponent(roomId)}/messages?${params}`);
      if (String(state.roomId) !== String(roomId)) return;
      for (const message of listOf(page)) upsertMessage(message, { quiet: true });
      state.nextBefore = page && page.next_before !== undefined ? page.next_before : null;
    } catch (err) {
      toast(`Messages could not be loaded: ${err.message}`);
    }
    $("load-more").hidden = state.nextBefore === null || state.nextBefore === undefined;
    updateEmpty();
    if (before === null || before === undefined) scrollToBottom(true);
    else list.scrollTop = list.scrollHeight - fromBottom; // keep the reader's place
    scheduleRead();
  }

  /** Messages after the newest one we have: used when a reply's message did not arrive. */
  async function catchUp() {
    const roomId = state.roomId;
    const ids = [...state.messages.keys()];
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (ids.length) params.set("after", String(Math.max(...ids)));
    try {
      const page = await api(`/api/chat/rooms/${encodeURIComponent(roomId)}/messages?${params}`);
      if (String(state.roomId) === String(roomId)) {
        for (const message of listOf(page)) upsertMessage(message);
      }
    } catch {
      /* the stream will bring it */
    }
  }

  function isNearBottom() {
    const list = $("messages");
    return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  }

  function scrollToBottom(force) {
    const list = $("messages");
    if (force || isNearBottom()) list.scrollTop = list.scrollHeight;
  }

  function updateEmpty() {
    const empty = state.messages.size === 0 && state.pending.size === 0 && state.replies.size === 0;
    $("empty-room").hidden = !state.roomId || !empty;
  }

  function isMine(message) {
    return Boolean(state.user && message.sender_user_id && String(message.sender_user_id) === String(state.user.id));
  }

  function senderName(message) {
    if (message.sender_name) return message.sender_name;
    if (message.sender_agent_id) return agentName(message.sender_agent_id);
    if (isMine(message)) return (state.user && state.user.name) || "You";
    return "Someone";
  }

  function agentName(agentId) {
    const agent = state.agents.get(agentId);
    return (agent && agent.name) || agentId || "Agent";
  }

  function upsertMessage(message, options = {}) {
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

    // A streamed reply that was waiting for its stored message can go now.
    for (const [replyId, reply] of state.replies) {
      if (reply.messageId !== null && Number(reply.messageId) === id) removeReply(replyId);
    }
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
    if (after) {
      container.insertBefore(element, after.node);
    } else {
      // Before any optimistic messages still in flight, which belong at the very end.
      const firstPending = container.querySelector(".msg.pending");
      container.insertBefore(element, firstPending);
    }
  }

  function renderMessage(message) {
    const mine = isMine(message);
    const deleted = Boolean(message.deleted_at);
    const fromAgent = Boolean(message.sender_agent_id);
    const system = message.type && !["text", "user", "agent", "message"].includes(message.type) && !fromAgent && !message.sender_user_id;
    const name = senderName(message);
    const classes = ["msg"];
    if (mine) classes.push("mine");
    if (fromAgent) classes.push("agent");
    if (deleted) classes.push("deleted");
    if (system) classes.push("system");

    if (system) {
      return h("article", { className: classes.join(" "), dataset: { id: String(message.id) } },
        h("div", { className: "system-text" }, message.content || ""),
        h("time", { datetime: message.created_at || undefined }, formatTime(message.created_at)));
    }

    const body = h("div", { className: "body" });
    body.append(
      h("header", { className: "meta" },
        h("span", { className: "sender" }, name),
        fromAgent ? h("span", { className: "tag" }, "agent") : null,
        h("time", { datetime: message.created_at || undefined, title: message.created_at || undefined }, formatTime(message.created_at)),
        message.edited_at && !deleted ? h("span", { className: "edited muted" }, "(edited)") : null),
    );
    if (message.reply_to_id) {
      const quoted = state.messages.get(Number(message.reply_to_id));
      body.append(
        h("div", { className: "quote" },
          quoted ? `${senderName(quoted)}: ${snippet(quoted.deleted_at ? "message deleted" : quoted.content)}` : `In reply to #${message.reply_to_id}`),
      );
    }
    const content = h("div", { className: "content" });
    if (deleted) content.append(h("em", { className: "muted" }, "This message was deleted."));
    else content.append(richText(String(message.content || "")));
    body.append(content);

    if (!deleted) {
      const actions = h("div", { className: "actions" },
        h("button", { type: "button", className: "link", onclick: () => setReplyTo(message) }, "Reply"));
      if (mine) {
        actions.append(
          h("button", { type: "button", className: "link", onclick: () => startEdit(message.id) }, "Edit"),
          h("button", { type: "button", className: "link danger", onclick: () => deleteMessage(message.id) }, "Delete"),
        );
      }
      body.append(actions);
    }

    return h("article", { className: classes.join(" "), dataset: { id: String(message.id) } },
      avatar(name, message.sender_agent_id || message.sender_user_id || name, fromAgent ? "bot" : ""),
      body);
  }

  function snippet(text) {
    const flat = String(text || "").replace(/\s+/g, " ").trim();
    return flat.length > 90 ? `${flat.slice(0, 89)}…` : flat;
  }

  function markDeleted(data) {
    const id = Number(data.id ?? data.message_id ?? (data.message && data.message.id));
    if (!Number.isFinite(id)) return;
    const message = state.messages.get(id);
    if (!message) return;
    upsertMessage({ ...message, content: "", deleted_at: data.deleted_at || new Date().toISOString() }, { quiet: true });
  }

  function startEdit(id) {
    const message = state.messages.get(Number(id));
    const node = state.nodes.get(Number(id));
    if (!message || !node) return;
    const content = node.querySelector(".content");
    const actions = node.querySelector(".actions");
    const editor = h("textarea", { className: "edit-box", rows: "3", "aria-label": "Edit message" });
    editor.value = message.content || "";
    const save = async () => {
      const text = editor.value.trim();
      if (!text || text === message.content) {
        upsertMessage(message, { quiet: true });
        return;
      }
      try {
        const updated = await api(`/api/chat/messages/${encodeURIComponent(id)}`, { method: "PUT", body: { content: text } });
        upsertMessage(updated || { ...message, content: text, edited_at: new Date().toISOString() }, { quiet: true });
      } catch (err) {
        toast(`The message could not be edited: ${err.message}`);
      }
    };
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        save();
      } else if (event.key === "Escape") {
        upsertMessage(message, { quiet: true });
      }
    });
    content.replaceChildren(editor);
    actions.replaceChildren(
      h("button", { type: "button", className: "link", onclick: save }, "Save"),
      h("button", { type: "button", className: "link", onclick: () => upsertMessage(message, { quiet: true }) }, "Cancel"),
    );
    editor.focus();
  }

  async function deleteMessage(id) {
    if (!window.confirm("Delete this message?")) return;
    try {
      await api(`/api/chat/messages/${encodeURIComponent(id)}`, { method: "DELETE" });
      markDeleted({ id });
    } catch (err) {
      toast(`The message could not be deleted: ${err.message}`);
    }
  }

  function setReplyTo(message) {
    state.replyTo = message ? Number(message.id) : null;
    $("reply-bar").hidden = !message;
    $("reply-text").textContent = message ? `Replying to ${senderName(message)}: ${snippet(message.content)}` : "";
    if (message) $("composer-input").focus();
  }

  // ---------------------------------------------------------------- sending

  async function send(event) {
    if (event) event.preventDefault();
    const input = $("composer-input");
    const content = input.value.trim();
    if (!content || !state.roomId) return;
    if (new TextEncoder().encode(content).length > MESSAGE_MAX_BYTES) {
      toast(`Messages are limited to ${MESSAGE_MAX_BYTES / 1024} KiB.`);
      return;
    }
    const roomId = state.roomId;
    const clientMsgId = uuid();
    const body = { content, client_msg_id: clientMsgId };
    if (state.replyTo) body.reply_to_id = state.replyTo;

    const optimistic = renderMessage({
      id: clientMsgId,
      room_id: roomId,
      sender_user_id: state.user && state.user.id,
      sender_name: state.user && state.user.name,
      content,
      type: "text",
      reply_to_id: body.reply_to_id || null,
      created_at: new Date().toISOString(),
    });
    optimistic.classList.add("pending");
    optimistic.querySelector(".actions")?.remove();
    $("message-items").append(optimistic);
    state.pending.set(clientMsgId, optimistic);
    input.value = "";
    autosize();
    setReplyTo(null);
    closeMentions();
    updateEmpty();
    scrollToBottom(true);

    try {
      const message = await api(`/api/chat/rooms/${encodeURIComponent(roomId)}/messages`, { method: "POST", body });
      if (String(state.roomId) !== String(roomId)) return;
      if (message && message.id !== undefined) {
        upsertMessage({ ...message, client_msg_id: message.client_msg_id || clientMsgId });
      }
    } catch (err) {
      if (!state.pending.has(clientMsgId)) return;
      optimistic.classList.remove("pending");
      optimistic.classList.add("failed");
      const retry = h("div", { className: "actions visible" },
        h("span", { className: "danger" }, `Not sent: ${err.message}`),
        h("button", { type: "button", className: "link", onclick: () => {
          optimistic.remove();
          state.pending.delete(clientMsgId);
          input.value = content;
          autosize();
          input.focus();
        } }, "Edit and retry"));
      optimistic.querySelector(".body").append(retry);
    }
  }

  function notifyTyping() {
    const now = Date.now();
    if (!state.roomId || now - state.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    state.lastTypingSent = now;
    api(`/api/chat/rooms/${encodeURIComponent(state.roomId)}/typing`, { method: "POST", body: {} }).catch(() => {});
  }

  function scheduleRead() {
    clearTimeout(state.readTimer);
    state.readTimer = setTimeout(() => {
      if (document.hidden || !state.roomId || state.messages.size === 0) return;
      const newest = Math.max(...state.messages.keys());
      if (newest <= state.lastReadSent) return;
      state.lastReadSent = newest;
      api(`/api/chat/rooms/${encodeURIComponent(state.roomId)}/read`, { method: "POST", body: { message_id: newest } }).catch(() => {});
    }, 1000);
  }

  function autosize() {
    const input = $("composer-input");
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  // ---------------------------------------------------------------- streamed agent replies

  function ensureReply(data) {
    const replyId = String(data.reply_id);
    let reply = state.replies.get(replyId);
    if (reply) return reply;
    const agentId = data.agent_id || "";
    const name = data.agent_name || agentName(agentId);
    const text = h("div", { className: "content streaming-text" });
    const status = h("span", { className: "reply-status muted" }, "thinking…");
    const element = h("article", { className: "msg agent streaming", dataset: { reply: replyId } },
      avatar(name, agentId, "bot"),
      h("div", { className: "body" },
        h("header", { className: "meta" },
          h("span", { className: "sender" }, name),
          h("span", { className: "tag" }, "agent"),
          status),
        text));
    reply = { id: replyId, agentId, element, text, status, seq: -Infinity, attempt: 0, content: "", messageId: null, timer: null };
    state.replies.set(replyId, reply);
    $("reply-items").append(element);
    updateEmpty();
    return reply;
  }

  function removeReply(replyId) {
    const reply = state.replies.get(String(replyId));
    if (!reply) return;
    clearTimeout(reply.timer);
    reply.element.remove();
    state.replies.delete(String(replyId));
    updateEmpty();
  }

  function onAgentStart(data) {
    const reply = ensureReply(data);
    reply.status.textContent = "thinking…";
    scrollToBottom(false);
  }

  function onAgentDelta(data) {
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
    const nearBottom = isNearBottom();
    reply.content += String(data.text || "");
    reply.text.replaceChildren(richText(reply.content));
    reply.status.textContent = "writing…";
    if (nearBottom) scrollToBottom(true);
  }

  function onAgentReset(data) {
    const reply = ensureReply(data);
    reply.attempt = Math.max(reply.attempt, Number(data.attempt) || 0);
    reply.content = "";
    reply.seq = -Infinity;
    reply.text.replaceChildren();
    reply.status.textContent = "retrying…";
  }

  function onAgentDone(data) {
    const replyId = String(data.reply_id);
    const messageId = data.message_id;
    if (messageId !== undefined && messageId !== null && state.messages.has(Number(messageId))) {
      removeReply(replyId);
      return;
    }
    const reply = state.replies.get(replyId);
    if (!reply) return;
    reply.element.classList.remove("streaming");
    reply.status.textContent = "";
    if (messageId === undefined || messageId === null) {
      // Nothing stored (e.g. the agent had nothing to say): keep the text, drop the bubble soon.
      reply.timer = setTimeout(() => removeReply(replyId), 15000);
      return;
    }
    reply.messageId = messageId;
    // message.new normally follows; if it does not, fetch it.
    reply.timer = setTimeout(() => {
      catchUp().then(() => {
        if (state.messages.has(Number(messageId))) removeReply(replyId);
      });
    }, 3000);
  }

  function onAgentError(data) {
    const reply = ensureReply(data);
    reply.element.classList.remove("streaming");
    reply.element.classList.add("failed");
    const error = data.error;
    const message = data.message || (error && error.message) || (typeof error === "string" ? error : "") || "The agent could not answer.";
    reply.status.textContent = "";
    reply.text.replaceChildren(
      h("span", { className: "danger" }, message),
      " ",
      h("button", { type: "button", className: "link", onclick: () => removeReply(reply.id) }, "Dismiss"),
    );
  }

  // ---------------------------------------------------------------- typing indicator

  function onTyping(data) {
    const who = String(data.user_id || data.agent_id || data.name || "");
    if (!who || (state.user && who === String(state.user.id))) return;
    if (data.typing === false || data.state === "stop") {
      const entry = state.typing.get(who);
      if (entry) clearTimeout(entry.timer);
      state.typing.delete(who);
      renderTyping();
      return;
    }
    const member = state.members.find((m) => String(m.user_id) === who);
    const name = data.name || data.user_name || (member && member.name) || "Someone";
    const entry = state.typing.get(who);
    if (entry) clearTimeout(entry.timer);
    state.typing.set(who, {
      name,
      timer: setTimeout(() => {
        state.typing.delete(who);
        renderTyping();
      }, TYPING_SHOW_MS),
    });
    renderTyping();
  }

  function renderTyping() {
    const names = [...state.typing.values()].map((entry) => entry.name);
    const el = $("typing");
    if (names.length === 0) {
      el.replaceChildren();
      return;
    }
    const text = names.length === 1 ? `${names[0]} is typing` : names.length === 2 ? `${names[0]} and ${names[1]} are typing` : "Several people are typing";
    el.replaceChildren(h("span", { className: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), text);
  }

  // ---------------------------------------------------------------- live stream

  function setStatus(status) {
    const el = $("conn-status");
    el.dataset.state = status;
    el.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", offline: "offline", idle: "offline" }[status] || status;
  }

  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    setStatus("idle");
  }

  /** Opens the room's event stream; resolves once the first connection is established. */
  function startStream(roomId) {
    const room = new AbortController();
    state.stream = room;
    let markConnected;
    const connected = new Promise((resolve) => {
      markConnected = resolve;
    });
    runStream(roomId, room, markConnected).finally(markConnected);
    return connected;
  }

  async function runStream(roomId, room, markConnected) {
    let delay = RECONNECT_MIN_MS;
    let serverRetry = null;
    while (!room.signal.aborted) {
      const connection = new AbortController();
      const abortConnection = () => connection.abort();
      room.signal.addEventListener("abort", abortConnection, { once: true });
      let idleTimer = null;
      const touch = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => connection.abort(), STREAM_IDLE_TIMEOUT_MS);
      };
      try {
        setStatus(state.lastEventId === null ? "connecting" : "reconnecting");
        const headers = { Accept: "text/event-stream", "Cache-Control": "no-cache", ...authHeaders() };
        if (state.lastEventId !== null) headers["Last-Event-ID"] = state.lastEventId;
        const response = await fetch(`/api/chat/rooms/${encodeURIComponent(roomId)}/events`, {
          headers,
          signal: connection.signal,
          cache: "no-store",
        });
        if (response.status === 401) {
          logout("Your session has ended. Please sign in again.");
          return;
        }
        if (response.status === 403 || response.status === 404) {
          setStatus("offline");
          toast("You no longer have access to this room.");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        setStatus("live");
        markConnected();
        delay = RECONNECT_MIN_MS;
        touch();
        const parser = new SseParser(
          (event) => {
            if (event.id !== null) state.lastEventId = event.id;
            handleEvent(event);
          },
          (ms) => {
            serverRetry = ms;
          },
        );
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          touch();
          parser.push(decoder.decode(value, { stream: true }));
        }
        parser.push(decoder.decode());
        if (parser.lastId !== null) state.lastEventId = parser.lastId;
      } catch (err) {
        if (room.signal.aborted) return;
        if (!(err && err.name === "AbortError")) console.warn("event stream:", err);
      } finally {
        clearTimeout(idleTimer);
        room.signal.removeEventListener("abort", abortConnection);
      }
      if (room.signal.aborted) return;
      setStatus("reconnecting");
      const wait = serverRetry !== null ? Math.max(serverRetry, 250) : delay;
      await sleep(wait + Math.random() * 300, room.signal);
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
  }

  function handleEvent(event) {
    const data = event.data ? readJson(event.data) : null;
    if (!data || typeof data !== "object") return;
    switch (event.type) {
      case "message.new":
      case "message.edit":
        upsertMessage(data.message || data);
        break;
      case "message.delete":
        markDeleted(data);
        break;
      case "agent.start":
        onAgentStart(data);
        break;
      case "agent.delta":
        onAgentDelta(data);
        break;
      case "agent.reset":
        onAgentReset(data);
        break;
      case "agent.done":
        onAgentDone(data);
        break;
      case "agent.error":
        onAgentError(data);
        break;
      case "typing":
        onTyping(data);
        break;
      case "member.add":
      case "member.remove":
      case "member.update":
        if (state.roomId) loadMembers(state.roomId);
        break;
      default:
        break; // presence, read: nothing to show in this client
    }
  }

  // ---------------------------------------------------------------- @mention autocomplete

  const mention = { items: [], active: 0, start: -1, query: "", request: 0 };

  function mentionQuery() {
    const input = $("composer-input");
    const caret = input.selectionStart;
    if (caret !== input.selectionEnd) return null;
    const before = input.value.slice(0, caret);
    const match = /(^|\s)@([\w.-]{0,40})$/.exec(before);
    if (!match) return null;
    return { query: match[2], start: caret - match[2].length - 1 };
  }

  const fetchAgents = debounce(async (query, request) => {
    let agents = [];
    try {
      agents = listOf(await api(`/api/agents?q=${encodeURIComponent(query)}`));
    } catch {
      agents = [];
    }
    for (const agent of agents) state.agents.set(agent.id, agent);
    if (request !== mention.request) return; // a newer keystroke won
    const q = query.toLowerCase();
    const people = state.members
      .filter((m) => m.handle && (!state.user || String(m.user_id) !== String(state.user.id)))
      .filter((m) => !q || m.handle.toLowerCase().startsWith(q) || String(m.name || "").toLowerCase().includes(q))
      .slice(0, 5)
      .map((m) => ({ handle: m.handle, label: m.name || m.handle, description: "member", kind: "person" }));
    const everyone = "all".startsWith(q) ? [{ handle: "all", label: "Everyone", description: "notify the whole room", kind: "all" }] : [];
    mention.items = [
      ...agents.slice(0, 8).map((a) => ({ handle: a.id, label: a.name || a.id, description: a.description || "", kind: "agent" })),
      ...people,
      ...everyone,
    ];
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
    mention.query = found.query;
    mention.request += 1;
    fetchAgents(found.query, mention.request);
  }

  function renderMentions() {
    const menu = $("mention-menu");
    if (mention.items.length === 0) {
      closeMentions();
      return;
    }
    menu.replaceChildren(
      ...mention.items.map((item, index) =>
        h("li", {
          role: "option",
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
        item.description ? h("span", { className: "mention-desc muted" }, item.description) : null),
      ),
    );
    menu.hidden = false;
  }

  function closeMentions() {
    mention.items = [];
    mention.request += 1;
    const menu = $("mention-menu");
    menu.hidden = true;
    menu.replaceChildren();
  }

  function pickMention(index) {
    const item = mention.items[index];
    if (!item) return;
    const input = $("composer-input");
    const caret = input.selectionStart;
    const before = input.value.slice(0, mention.start);
    const after = input.value.slice(caret);
    const insert = `@${item.handle} `;
    input.value = before + insert + after.replace(/^\S*/, "");
    const position = before.length + insert.length;
    input.setSelectionRange(position, position);
    closeMentions();
    autosize();
    input.focus();
  }

  function onComposerKeydown(event) {
    const menuOpen = !$("mention-menu").hidden && mention.items.length > 0;
    if (menuOpen) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        mention.active = (mention.active + step + mention.items.length) % mention.items.length;
        renderMentions();
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        pickMention(mention.active);
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        closeMentions();
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape" && state.replyTo) {
      setReplyTo(null);
    }
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => setAuthMode(tab.dataset.mode));
    }
    $("auth-form").addEventListener("submit", submitAuth);
    $("logout").addEventListener("click", () => logout());
    $("new-room-form").addEventListener("submit", createRoom);
    $("composer").addEventListener("submit", send);
    $("load-more").addEventListener("click", () => {
      if (state.roomId && state.nextBefore !== null) loadMessages(state.roomId, state.nextBefore);
    });
    $("invite-toggle").addEventListener("click", () => {
      const form = $("invite-form");
      form.hidden = !form.hidden;
      if (!form.hidden) form.elements.email.focus();
    });
    $("invite-cancel").addEventListener("click", () => {
      $("invite-form").hidden = true;
    });
    $("invite-form").addEventListener("submit", invite);
    $("reply-cancel").addEventListener("click", () => setReplyTo(null));

    const input = $("composer-input");
    input.addEventListener("keydown", onComposerKeydown);
    input.addEventListener("input", () => {
      autosize();
      updateMentions();
      if (input.value.trim()) notifyTyping();
    });
    input.addEventListener("click", updateMentions);
    input.addEventListener("blur", () => setTimeout(closeMentions, 150));

    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) scheduleRead();
    });
    window.addEventListener("popstate", () => {
      const roomId = roomInPath();
      if (state.token && roomId && state.rooms.some((room) => String(room.id) === roomId)) {
        openRoom(roomId, { history: false });
      }
    });
    window.addEventListener("focus", () => {
      if (state.token && !$("app-view").hidden) loadRooms();
    });
  }

  async function start() {
    wire();
    setAuthMode("login");
    if (!state.token) {
      $("auth-view").hidden = false;
      return;
    }
    try {
      await enterApp();
    } catch (err) {
      logout(err.message);
    }
  }

  // Exposed for tests and debugging only.
  window.IAF = { SseParser };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
