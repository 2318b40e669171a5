/* Sign in, create an account, sign out (the server revokes the token). */

import { api, clearSession, saveSession, session } from "./api.js";
import { $, formError } from "./dom.js";
import { t } from "./i18n.js";

let mode = "login";
let onSignedIn = async () => {};

export function setAuthMode(next) {
  mode = next;
  for (const tab of document.querySelectorAll("#auth-form .tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  }
  $("name-field").hidden = mode !== "signup";
  $("auth-form").elements.password.autocomplete = mode === "signup" ? "new-password" : "current-password";
  $("auth-submit").textContent = t(mode === "signup" ? "auth.create" : "auth.sign_in");
  formError($("auth-error"), "");
}

export function showAuth() {
  $("app-view").hidden = true;
  $("notice-view").hidden = true;
  $("auth-view").hidden = false;
  setAuthMode("login");
  $("auth-form").elements.email.focus();
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  const name = form.elements.name.value.trim();
  const error = $("auth-error");
  formError(error, "");
  if (!email || !password || (mode === "signup" && !name)) {
    formError(error, t(mode === "signup" ? "auth.signup_required" : "auth.login_required"));
    return;
  }
  const body = mode === "signup" ? { email, password, name } : { email, password };
  $("auth-submit").disabled = true;
  try {
    const data = await api(mode === "signup" ? "/api/auth/signup" : "/api/auth/login", { method: "POST", body });
    saveSession(data.access_token, data.user || null);
    form.reset();
    await onSignedIn();
  } catch (err) {
    formError(error, err.status === 401 ? t("auth.wrong_credentials") : err.message);
    form.elements.password.select();
  } finally {
    $("auth-submit").disabled = false;
  }
}

/** Revokes the token on the server, then forgets it here. */
export async function signOut() {
  if (session.token) {
    try {
      await api("/api/auth/logout", { method: "POST" });
    } catch {
      /* an expired token is as good as revoked */
    }
  }
  clearSession();
}

export function wireAuth(signedIn) {
  onSignedIn = signedIn;
  for (const tab of document.querySelectorAll("#auth-form .tab")) {
    tab.addEventListener("click", () => setAuthMode(tab.dataset.mode));
  }
  $("auth-form").addEventListener("submit", submit);
}
