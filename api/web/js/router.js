/* Client routes in the address bar, so links, reloads and the back button work:
 *   /rooms/{id}            a room          /rooms/{id}/settings   its settings panel
 *   /settings/{section}    profile, credits or privacy
 *   /confirm-email#token=… the link mailed to confirm a new address
 * The server answers each of these paths with index.html (api/web_client.py). */

let onChange = () => {};

export function parse(path = window.location.pathname) {
  const room = /^\/rooms\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(path);
  if (room) return { view: "room", roomId: decodeURIComponent(room[1]), panel: room[2] || null };
  const settings = /^\/settings(?:\/([a-z]+))?\/?$/.exec(path);
  if (settings) return { view: "settings", section: settings[1] || "profile" };
  if (path === "/confirm-email") return { view: "confirm-email" };
  return { view: "home" };
}

/** Goes to `path`; `replace` rewrites the current entry instead of adding one. */
export function navigate(path, { replace = false, quiet = false } = {}) {
  if (window.location.pathname !== path) {
    window.history[replace ? "replaceState" : "pushState"](null, "", path);
  }
  if (!quiet) onChange(parse(path));
}

export function startRouting(handler) {
  onChange = handler;
  window.addEventListener("popstate", () => onChange(parse()));
}

export function roomPath(roomId, panel) {
  return `/rooms/${encodeURIComponent(roomId)}${panel ? `/${panel}` : ""}`;
}
