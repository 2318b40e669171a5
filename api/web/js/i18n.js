/* The interface in English, French and Arabic (right to left). The language comes from the
 * browser's list, or from the person's choice (kept in localStorage). A key missing from the
 * chosen language is a bug: it is reported on the console (the browser tests fail on it) and
 * the English text is shown meanwhile. */

import { en } from "./locales/en.js";
import { fr } from "./locales/fr.js";
import { ar } from "./locales/ar.js";

const DICTIONARIES = { en, fr, ar };
export const LANGUAGES = { en: "English", fr: "Français", ar: "العربية" };
const RTL = new Set(["ar"]);
const KEY = "iaf.lang";
let language = "en";

export function currentLanguage() {
  return language;
}

function pick() {
  const stored = localStorage.getItem(KEY);
  if (stored && DICTIONARIES[stored]) return stored;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (DICTIONARIES[base]) return base;
  }
  return "en";
}

/** Whether the English dictionary knows `key` (for values from the server, like ledger kinds). */
export function known(key) {
  return en[key] !== undefined;
}

export function t(key, vars = {}) {
  let text = DICTIONARIES[language][key];
  if (text === undefined) {
    console.error(`missing translation: ${language} ${key}`);
    text = en[key] ?? key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined ? `{${name}}` : String(vars[name])));
}

/** Static text in index.html: data-i18n (text), -placeholder, -label (aria-label), -title. */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

export function applyLanguage(code, remember = false) {
  language = DICTIONARIES[code] ? code : "en";
  if (remember) localStorage.setItem(KEY, language);
  document.documentElement.lang = language;
  document.documentElement.dir = RTL.has(language) ? "rtl" : "ltr";
  for (const select of document.querySelectorAll(".language-select")) select.value = language;
  translatePage();
  document.dispatchEvent(new CustomEvent("languagechange-iaf", { detail: language }));
}

export function initLanguage() {
  applyLanguage(pick());
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString(language, { day: "numeric", month: "short" })} ${time}`;
}

export function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(language, { dateStyle: "medium", timeStyle: "short" });
}
