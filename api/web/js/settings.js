/* The person's own pages: profile (name, e-mail, password), credits, privacy (consents,
 * data export, account deletion). */

import { api, refusal, saveSession, session } from "./api.js";
import { $, formError, h, listOf, toast } from "./dom.js";
import { formatDate, known, t } from "./i18n.js";

const SECTIONS = ["profile", "credits", "privacy"];
const PURPOSES = ["analytics", "marketing", "ai_training"];
let exportTimer = null;
let onProfileChanged = () => {};

export function showSection(section) {
  const wanted = SECTIONS.includes(section) ? section : "profile";
  for (const name of SECTIONS) {
    $(`settings-${name}`).hidden = name !== wanted;
    const tab = document.querySelector(`#settings-nav a[data-section="${name}"]`);
    if (tab) tab.setAttribute("aria-current", name === wanted ? "page" : "false");
  }
  clearTimeout(exportTimer);
  if (wanted === "profile") fillProfile();
  if (wanted === "credits") loadCredits();
  if (wanted === "privacy") loadPrivacy();
  $(`settings-${wanted}`).querySelector("h2").focus();
}

// ---------------------------------------------------------------- profile

async function fillProfile() {
  try {
    const me = await api("/api/me");
    saveSession(undefined, me);
    onProfileChanged();
  } catch {
    /* shown from the stored copy */
  }
  const user = session.user || {};
  const form = $("profile-form");
  form.elements.name.value = user.name || "";
  form.elements.email.value = user.email || "";
  $("pending-email").hidden = !user.pending_email;
  $("pending-email").textContent = user.pending_email ? t("profile.pending_email", { email: user.pending_email }) : "";
}

async function saveProfile(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("profile-error");
  formError(error, "");
  const body = { name: form.elements.name.value.trim() };
  const email = form.elements.email.value.trim();
  if (email && email.toLowerCase() !== String(session.user?.email || "").toLowerCase()) body.email = email;
  try {
    const me = await api("/api/me", { method: "PUT", body });
    saveSession(undefined, me);
    onProfileChanged();
    toast(body.email ? t("profile.check_mail", { email: body.email }) : t("profile.saved"), "info");
    await fillProfile();
  } catch (err) {
    formError(error, refusal(err));
  }
}

async function changePassword(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("password-error");
  formError(error, "");
  const body = { current_password: form.elements.current.value, new_password: form.elements.next.value };
  try {
    const data = await api("/api/me/password", { method: "POST", body });
    saveSession(data.access_token, data.user);
    form.reset();
    toast(t("profile.password_changed"), "info");
  } catch (err) {
    formError(error, err.status === 401 || err.code === "wrong_password" ? t("profile.wrong_password") : refusal(err));
  }
}

/** The page the mailed link opens: /confirm-email#token=… */
export async function confirmEmail() {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  window.history.replaceState(null, "", window.location.pathname); // the token leaves the bar
  try {
    const me = await api("/api/me/email/confirm", { method: "POST", body: { token } });
    if (session.token && session.user && String(session.user.id) === String(me.id)) saveSession(undefined, me);
    return { ok: true, email: me.email };
  } catch (err) {
    return { ok: false, message: refusal(err) };
  }
}

// ---------------------------------------------------------------- credits

function entryLabel(entry) {
  const meta = entry.meta || {};
  if (entry.source === "reply-settle") return t("credits.reply", { agent: meta.agent_id || "", cost: meta.charged ?? 0 });
  const key = `credits.kind.${entry.kind}`;
  return known(key) ? t(key) : t("credits.kind.other", { kind: entry.kind });
}

async function loadCredits() {
  try {
    const credits = await api("/api/credits?limit=100");
    $("credit-balance").textContent = String(credits.balance);
    $("ledger").replaceChildren(...listOf(credits).map((entry) => h("tr", { dataset: { kind: entry.kind, source: entry.source } },
      h("td", {}, formatDate(entry.created_at)),
      h("td", {}, entryLabel(entry)),
      h("td", { className: `amount ${entry.amount < 0 ? "negative" : "positive"}` }, entry.amount > 0 ? `+${entry.amount}` : String(entry.amount)))));
    const referrals = listOf(await api("/api/referrals"));
    $("referral-list").replaceChildren(...referrals.map((r) => h("li", {},
      `${r.referred_name || t("message.someone")} · ${t(`referral.${r.status}`)} · ${r.reward_credits}`)));
    $("referrals-empty").hidden = referrals.length > 0;
  } catch (err) {
    toast(refusal(err));
  }
}

// ---------------------------------------------------------------- privacy

async function loadPrivacy() {
  try {
    const consents = await api("/api/user/consents");
    const form = $("consents-form");
    for (const item of consents.items) if (form.elements[item.purpose]) form.elements[item.purpose].checked = item.granted;
    $("consent-history").replaceChildren(...consents.history.map((change) => h("li", {},
      `${formatDate(change.changed_at)} · ${t(`consent.${change.purpose}`)} · ${t(change.granted ? "consent.granted" : "consent.withdrawn")}`)));
  } catch (err) {
    toast(refusal(err));
  }
  await Promise.all([showExport(false), showDeletion()]);
}

async function saveConsents(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const consents = Object.fromEntries(PURPOSES.map((p) => [p, form.elements[p].checked]));
  try {
    await api("/api/user/consents", { method: "PUT", body: { consents } });
    toast(t("privacy.consents_saved"), "info");
    await loadPrivacy();
  } catch (err) {
    toast(refusal(err));
  }
}

function renderExport(request) {
  const el = $("export-status");
  if (!request) {
    el.textContent = t("privacy.no_export");
    return;
  }
  const parts = [t(`request.${request.status}`)];
  el.replaceChildren(parts.join(" "));
  if (request.download_url) {
    const path = new URL(request.download_url, window.location.href).pathname;
    el.append(" ", h("a", { href: path, download: "", className: "link", id: "export-download" }, t("privacy.download")));
  }
}

async function showExport(start) {
  clearTimeout(exportTimer);
  let request = null;
  try {
    request = start ? await api("/api/user/data-export") : await api("/api/user/data-export/status");
  } catch (err) {
    if (err.status !== 404) toast(refusal(err));
  }
  renderExport(request);
  if (request && ["pending", "in_progress"].includes(request.status) && !$("settings-privacy").hidden) {
    exportTimer = setTimeout(() => showExport(false), 1000);
  }
}

function renderDeletion(request) {
  const open = request && ["pending", "in_grace", "in_progress"].includes(request.status);
  $("delete-form").hidden = Boolean(open);
  $("deletion-status").hidden = !open;
  $("cancel-deletion").hidden = !(request && request.status === "in_grace");
  if (open) {
    const until = request.grace_until ? formatDate(request.grace_until) : "";
    $("deletion-text").textContent = t("privacy.deletion_scheduled", { date: until });
  }
}

async function showDeletion() {
  try {
    renderDeletion(await api("/api/user/delete-account"));
  } catch {
    renderDeletion(null);
  }
}

async function requestDeletion(event) {
  event.preventDefault();
  const form = event.currentTarget;
  formError($("delete-error"), "");
  try {
    renderDeletion(await api("/api/user/delete-account", { method: "POST", body: { password: form.elements.password.value } }));
    form.reset();
  } catch (err) {
    formError($("delete-error"), err.status === 401 || err.status === 403 ? t("profile.wrong_password") : refusal(err));
  }
}

async function cancelDeletion() {
  try {
    renderDeletion(await api("/api/user/delete-account/cancel", { method: "POST" }));
    toast(t("privacy.deletion_cancelled"), "info");
  } catch (err) {
    toast(refusal(err));
  }
}

export function leaveSettings() {
  clearTimeout(exportTimer);
}

export function wireSettings({ profileChanged }) {
  onProfileChanged = profileChanged;
  $("profile-form").addEventListener("submit", saveProfile);
  $("password-form").addEventListener("submit", changePassword);
  $("consents-form").addEventListener("submit", saveConsents);
  $("request-export").addEventListener("click", () => showExport(true));
  $("delete-form").addEventListener("submit", requestDeletion);
  $("cancel-deletion").addEventListener("click", cancelDeletion);
}
