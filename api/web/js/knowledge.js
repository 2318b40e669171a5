/* Knowledge the agents answer from: upload .md/.txt/.pdf files, paste text, or take a web page
 * or a sitemap's pages (crawled by the server), for the room or the whole organisation; follow
 * each document's and source's status; retry a failed one; crawl again; delete. */

import { api, enc, refusal } from "./api.js";
import { $, formError, h, listOf } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

const BUSY = new Set(["pending", "processing", "indexing", "deleting", "crawling"]);
let pollTimer = null;
let pollDelay = 1000;

function showError(message) {
  formError($("knowledge-error"), message);
}

function scope() {
  return $("knowledge-scope").value;
}

function withScope(body) {
  if (scope() === "room") body.room_id = state.roomId;
  return body;
}

async function upload(event) {
  event.preventDefault();
  showError("");
  const form = event.currentTarget;
  const files = [...form.elements.file.files];
  if (files.length === 0) return;
  for (const file of files) {
    const data = new FormData();
    data.append("file", file);
    data.append("scope", scope());
    if (scope() === "room") data.append("room_id", state.roomId);
    try {
      await api("/api/knowledge/documents/upload", { method: "POST", body: data });
    } catch (err) {
      showError(t("knowledge.upload_failed", { name: file.name, reason: refusal(err) }));
    }
  }
  form.reset();
  await loadDocuments();
}

async function paste(event) {
  event.preventDefault();
  showError("");
  const form = event.currentTarget;
  const body = withScope({ title: form.elements.title.value.trim(), content: form.elements.content.value, scope: scope() });
  try {
    await api("/api/knowledge/documents", { method: "POST", body });
    form.reset();
    await loadDocuments();
  } catch (err) {
    showError(refusal(err));
  }
}

async function addSource(event) {
  event.preventDefault();
  showError("");
  const form = event.currentTarget;
  const body = withScope({ url: form.elements.url.value.trim(), mode: form.elements.mode.value, scope: scope() });
  try {
    await api("/api/knowledge/sources", { method: "POST", body });
    form.reset();
  } catch (err) {
    showError(refusal(err));
  }
  await loadDocuments();
}

async function sourceAction(source, action) {
  showError("");
  const path = `/api/knowledge/sources/${enc(source.id)}`;
  try {
    if (action === "crawl") await api(`${path}/crawl`, { method: "POST" });
    else await api(path, { method: "DELETE" });
  } catch (err) {
    showError(refusal(err));
  }
  await loadDocuments();
}

function sourceRow(source) {
  const button = (label, action, danger) =>
    h("button", { type: "button", className: `link${danger ? " danger" : ""}`, onclick: () => sourceAction(source, action) }, label);
  return h("li", { className: "source", dataset: { status: source.status, id: source.id } },
    h("span", { className: "document-title", dir: "ltr" }, source.url),
    h("span", { className: `status-pill status-${source.status}` }, t(`sources.status.${source.status}`)),
    h("span", { className: "muted small" }, t("sources.pages", { count: source.pages_stored })),
    source.error ? h("span", { className: "danger small" }, source.error) : null,
    h("span", { className: "row-actions" }, button(t("sources.crawl_now"), "crawl"), button(t("common.delete"), "delete", true)));
}

async function act(document, action) {
  showError("");
  const path = `/api/knowledge/documents/${enc(document.id)}`;
  try {
    if (action === "retry") await api(`${path}/retry`, { method: "POST" });
    else await api(path, { method: "DELETE" });
  } catch (err) {
    showError(refusal(err));
  }
  await loadDocuments();
}

function row(document) {
  const actions = h("span", { className: "row-actions" });
  if (document.status === "failed") {
    actions.append(h("button", { type: "button", className: "link", onclick: () => act(document, "retry") }, t("knowledge.retry")));
  }
  if (document.status !== "deleting") {
    actions.append(h("button", { type: "button", className: "link danger", onclick: () => act(document, "delete") }, t("common.delete")));
  }
  return h("li", { className: "document", dataset: { status: document.status, id: document.id } },
    h("span", { className: "document-title", dir: "auto" }, document.title),
    h("span", { className: `status-pill status-${document.status}` }, t(`knowledge.status.${document.status}`)),
    h("span", { className: "muted small" }, t(document.scope === "org" ? "knowledge.scope_org" : "knowledge.scope_room")),
    document.error ? h("span", { className: "danger small" }, document.error) : null,
    actions);
}

export async function loadDocuments() {
  clearTimeout(pollTimer);
  if (!state.roomId || $("knowledge-panel").hidden) return;
  let items = [];
  let sources = [];
  try {
    items = listOf(await api(`/api/knowledge/documents?room_id=${enc(state.roomId)}`));
    sources = listOf(await api(`/api/knowledge/sources?room_id=${enc(state.roomId)}`));
  } catch (err) {
    showError(refusal(err));
    return;
  }
  $("document-list").replaceChildren(...items.map(row));
  $("source-list").replaceChildren(...sources.map(sourceRow));
  $("documents-empty").hidden = items.length > 0;
  // Ingestion and crawls run in workflows; while one is on its way, look again (backing off).
  if ([...items, ...sources].some((d) => BUSY.has(d.status))) {
    pollTimer = setTimeout(loadDocuments, pollDelay);
    pollDelay = Math.min(pollDelay * 1.5, 5000);
  } else pollDelay = 1000;
}

export function stopKnowledge() {
  clearTimeout(pollTimer);
}

export function wireKnowledge() {
  $("upload-form").addEventListener("submit", upload);
  $("paste-form").addEventListener("submit", paste);
  $("source-form").addEventListener("submit", addSource);
}
