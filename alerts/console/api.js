// The API, as the console uses it: JSON calls with the Bearer token, and the live stream.
// The token lives in sessionStorage (this tab only) and travels in the Authorization header,
// never in a URL.  Paths are relative to the API root, the parent of the page's /console/ folder.

import { SSEParser } from "./sse.js";

const TOKEN_KEY = "lifewatch.console.token";
export const API_ROOT = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status; // 0: no answer (network)
    this.body = body || {};
    this.code = this.body.error || null;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* nothing stored */
  }
}

function detailText(body) {
  const d = body && body.detail;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  return d ? String(d) : "";
}

// GET/POST one API path ("api/alerts?x=1"); the parsed JSON, or an ApiError.
export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token ?? getToken() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(new URL(path, API_ROOT), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, { error: "network", detail: String(e) });
  }
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!r.ok) {
    const err = new ApiError(r.status, data);
    err.message = detailText(data) || err.message;
    throw err;
  }
  return data;
}

export function config() {
  return fetch(new URL("config.json", document.baseURI), { cache: "no-store" }).then((r) => {
    if (!r.ok) throw new ApiError(r.status, {});
    return r.json();
  });
}

// /api/stream read with fetch() so that the Authorization header goes along.
// Reconnects after the server's retry time and resumes with Last-Event-ID.
// onOpen() on every (re)connection: changes during a gap before the first event are not replayed,
// so the caller reloads what it shows.
export class LiveStream {
  constructor({ onEvent, onStatus = () => {}, onOpen = () => {}, onAuthError = () => {} }) {
    Object.assign(this, { onEvent, onStatus, onOpen, onAuthError });
    this.lastId = "";
    this.retry = 3000;
    this.stopped = true;
    this.ctrl = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.ctrl) this.ctrl.abort();
  }

  async loop() {
    while (!this.stopped) {
      this.ctrl = new AbortController();
      this.onStatus("connecting");
      try {
        const headers = { Accept: "text/event-stream", Authorization: `Bearer ${getToken() ?? ""}` };
        if (this.lastId) headers["Last-Event-ID"] = this.lastId;
        const r = await fetch(new URL("api/stream", API_ROOT), {
          headers,
          signal: this.ctrl.signal,
          cache: "no-store",
          credentials: "omit",
        });
        if (r.status === 401) {
          this.stopped = true;
          this.onAuthError();
          return;
        }
        if (!r.ok || !r.body) throw new Error(`stream: HTTP ${r.status}`);
        this.onStatus("live");
        this.onOpen();
        const parser = new SSEParser(
          (ev) => {
            if (ev.id) this.lastId = ev.id;
            let data;
            try {
              data = JSON.parse(ev.data);
            } catch {
              return;
            }
            this.onEvent(ev.type, data);
          },
          (ms) => {
            this.retry = Math.max(500, Math.min(ms, 60000));
          },
        );
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
        }
      } catch {
        /* dropped: try again below */
      }
      if (this.stopped) return;
      this.onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, this.retry));
    }
  }
}
