/* Files in messages: picked in the composer and uploaded at once (chips until sent), shown in
 * each message (images inline, other files as downloads), a text or PDF file added to the
 * room's knowledge in one click. Bytes need the bearer token, so they are fetched, not linked. */

import { api, authHeaders, enc, refusal } from "./api.js";
import { $, h, toast } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

const ready = []; // {id, name, roomId}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function blobOf(id) {
  const response = await fetch(`/api/chat/attachments/${enc(id)}`, { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.blob();
}

function renderChips() {
  const list = $("attach-list");
  list.replaceChildren(...ready.filter((f) => String(f.roomId) === String(state.roomId)).map((file) =>
    h("li", { className: "chip", dataset: { id: file.id } }, file.name,
      h("button", { type: "button", className: "link", "aria-label": t("attach.remove", { name: file.name }),
        onclick: () => discard(file) }, "✕"))));
}

async function discard(file) {
  ready.splice(ready.indexOf(file), 1);
  renderChips();
  api(`/api/chat/attachments/${enc(file.id)}`, { method: "DELETE" }).catch(() => {});
}

async function upload(files) {
  const roomId = state.roomId;
  for (const file of files) {
    const data = new FormData();
    data.append("file", file);
    try {
      const stored = await api(`/api/chat/rooms/${enc(roomId)}/attachments`, { method: "POST", body: data });
      ready.push({ id: stored.id, name: stored.name, roomId });
      renderChips();
    } catch (err) {
      toast(t("attach.failed", { name: file.name, reason: refusal(err) }));
    }
  }
}

/** The composer takes the files waiting for this room when it sends. */
export function takeAttachmentIds(roomId) {
  const taken = ready.filter((f) => String(f.roomId) === String(roomId));
  for (const file of taken) ready.splice(ready.indexOf(file), 1);
  renderChips();
  return taken.map((f) => f.id);
}

async function download(file) {
  try {
    const url = URL.createObjectURL(await blobOf(file.id));
    const link = h("a", { href: url, download: file.name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    toast(t("attach.download_failed", { reason: err.message }));
  }
}

async function toKnowledge(file, button) {
  try {
    await api(`/api/chat/attachments/${enc(file.id)}/knowledge`, { method: "POST" });
    button.replaceWith(h("span", { className: "muted small" }, t("attach.in_knowledge")));
  } catch (err) {
    toast(refusal(err));
  }
}

function image(file) {
  const img = h("img", { alt: file.name, className: "attachment-image", width: file.width || undefined, height: file.height || undefined });
  blobOf(file.id).then((blob) => {
    img.src = URL.createObjectURL(blob);
  }).catch(() => img.replaceWith(h("span", { className: "muted" }, file.name)));
  return img;
}

export function renderAttachments(message) {
  const files = message.attachments || [];
  if (!files.length || message.deleted_at) return null;
  return h("ul", { className: "attachments" }, ...files.map((file) => {
    const item = h("li", { className: `attachment ${file.kind}` });
    if (file.kind === "image") item.append(image(file));
    item.append(h("button", { type: "button", className: "link", onclick: () => download(file) },
      `${file.name} · ${size(file.size_bytes)}`));
    if (file.kind === "text" || file.kind === "pdf") {
      const add = h("button", { type: "button", className: "link" }, t("attach.add_knowledge"));
      add.addEventListener("click", () => toKnowledge(file, add));
      item.append(add);
    }
    return item;
  }));
}

export function wireAttachments() {
  $("attach").addEventListener("click", () => state.roomId && $("attach-input").click());
  $("attach-input").addEventListener("change", async (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    await upload(files);
  });
}

/** A room was opened: show only its waiting files. */
export function showRoomAttachments() {
  renderChips();
}
