/* The HTTP client: JSON in and out, the bearer token, errors as ApiError with the server's
 * {"error": {"code", "message"}}. The session lives in sessionStorage: it survives a reload of
 * the tab and ends with it. */

import { readJson } from "./dom.js";
import { t } from "./i18n.js";

const TOKEN_KEY = "iaf.token";
const USER_KEY = "iaf.user";

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  user: readJson(sessionStorage.getItem(USER_KEY)),
};

let onExpired = () => {};

/** Called once by main.js: what to do when the server says the session is over (401). */
export function whenSessionExpires(handler) {
  onExpired = handler;
}

export function saveSession(token, user) {
  if (token !== undefined) {
    session.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  session.user = user;
  sessionStorage.setItem(USER_KEY, JSON.stringify(user));
}

export function clearSession() {
  session.token = null;
  session.user = null;
  for (const key of [TOKEN_KEY, USER_KEY, "iaf.room"]) sessionStorage.removeItem(key);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function authHeaders() {
  return session.token ? { Authorization: `Bearer ${session.token}` } : {};
}

/** fetch() a JSON endpoint; `body` is JSON unless it is FormData (a file upload). */
export async function api(path, options = {}) {
  const { method = "GET", body, signal, keepalive = false } = options;
  const headers = { Accept: "application/json", ...authHeaders() };
  const isForm = body instanceof FormData;
  if (body !== undefined && !isForm) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
      signal,
      keepalive,
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", t("error.network"));
  }
  const text = await response.text();
  const data = text ? readJson(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    const message = error.message || `${response.status} ${response.statusText}`.trim();
    if (response.status === 401 && session.token && !path.startsWith("/api/auth/login")) {
      onExpired();
    }
    throw new ApiError(response.status, error.code || `http_${response.status}`, message);
  }
  return data;
}

/** The server's refusal in words a person reads: what they tried, and why not. */
export function refusal(err) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  if (err.status === 403) return t("error.forbidden", { reason: err.message });
  if (err.status === 409) return t("error.conflict", { reason: err.message });
  if (err.status === 429) return t("error.rate_limited");
  return err.message;
}

export const enc = encodeURIComponent;
