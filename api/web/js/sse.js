/* Server-Sent Events over fetch() (EventSource cannot send the Authorization header): a
 * parser, and a stream that reconnects with Last-Event-ID so nothing is missed. */

import { authHeaders } from "./api.js";
import { sleep } from "./dom.js";

const IDLE_TIMEOUT_MS = 45000; // the server sends a heartbeat every ~15 s
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 15000;

/**
 * Incremental text/event-stream parser (WHATWG HTML, "Server-sent events").
 * push() takes decoded text in arbitrary chunks; onEvent gets {type, data, id}.
 */
export class SseParser {
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

/**
 * Keeps one event stream open until stop(). Handlers: onEvent(type, data, id),
 * onStatus("connecting" | "live" | "reconnecting" | "offline"), onOpen(resumed),
 * onRefused(status) for 401/403/404 (the stream then ends).
 */
export class LiveStream {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.lastEventId = null;
    this.controller = new AbortController();
    let markConnected;
    this.connected = new Promise((resolve) => {
      markConnected = resolve;
    });
    this.run(markConnected).finally(markConnected);
  }

  stop() {
    this.controller.abort();
  }

  get stopped() {
    return this.controller.signal.aborted;
  }

  status(value) {
    this.handlers.onStatus?.(value);
  }

  async run(markConnected) {
    let delay = RECONNECT_MIN_MS;
    let serverRetry = null;
    let opened = 0;
    while (!this.stopped) {
      const connection = new AbortController();
      const abort = () => connection.abort();
      this.controller.signal.addEventListener("abort", abort, { once: true });
      let idleTimer = null;
      const touch = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(abort, IDLE_TIMEOUT_MS);
      };
      try {
        this.status(this.lastEventId === null ? "connecting" : "reconnecting");
        const headers = { Accept: "text/event-stream", "Cache-Control": "no-cache", ...authHeaders() };
        if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
        const response = await fetch(this.url, { headers, signal: connection.signal, cache: "no-store" });
        if ([401, 403, 404].includes(response.status)) {
          this.status("offline");
          this.handlers.onRefused?.(response.status);
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.status("live");
        markConnected();
        this.handlers.onOpen?.(opened++ > 0);
        delay = RECONNECT_MIN_MS;
        touch();
        await this.read(response, touch, (ms) => {
          serverRetry = ms;
        });
      } catch (err) {
        if (this.stopped) return;
        if (!(err && err.name === "AbortError")) console.warn("event stream:", err);
      } finally {
        clearTimeout(idleTimer);
        this.controller.signal.removeEventListener("abort", abort);
      }
      if (this.stopped) return;
      this.status("reconnecting");
      const wait = serverRetry !== null ? Math.max(serverRetry, 250) : delay;
      await sleep(wait + Math.random() * 300, this.controller.signal);
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
  }

  async read(response, touch, onRetry) {
    const parser = new SseParser((event) => {
      if (event.id !== null) this.lastEventId = event.id;
      let data = null;
      try {
        data = event.data ? JSON.parse(event.data) : null;
      } catch {
        data = null;
      }
      if (data && typeof data === "object" && !this.stopped) this.handlers.onEvent(event.type, data, event.id);
    }, onRetry);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      touch();
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
  }
}
