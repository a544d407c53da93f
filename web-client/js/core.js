// The client core every page uses: log-in and the token kept for the tab, the WebSocket with
// `subscribe`, `resume_from` and `epoch`, commands with ids that are retried with the same id
// after a reconnect, `resync`, the clock offset to the server, and media signalling requests.
// The page's state is the server's: the snapshot, with each event folded in by state.js.

import { apply, emptyState } from "./state.js";

const AUTH_KEY = "dh.auth";
const PROTOCOL = 2;
/// Silence after which the connection is taken for dead (the server pings every 15 s; we
/// ask for a `pong` every 10 s).
const PONG_TIMEOUT_MS = 8000;
const PING_EVERY_MS = 10000;

/// An error the server answered, with its code (docs/protocol.md §7).
export class ServerError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/// The tab's log-in, if it is still valid: `{token, actor, roles, expires_at}`.
export function savedAuth() {
  // A kiosk device is started with its token in the fragment (#token=…), once a day.
  const frag = new URLSearchParams(location.hash.slice(1));
  const fromFragment = frag.get("token");
  if (fromFragment) {
    history.replaceState(null, "", location.pathname + location.search);
    const auth = { token: fromFragment, actor: null, roles: [], expires_at: null };
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
    return auth;
  }
  try {
    const auth = JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null");
    if (auth && auth.expires_at && auth.expires_at <= Date.now()) {
      sessionStorage.removeItem(AUTH_KEY);
      return null;
    }
    return auth;
  } catch (_) {
    return null;
  }
}

/// Logs in; throws a ServerError (`bad_credentials`, `too_many_attempts`, `unavailable`).
export async function login(code, password) {
  let r;
  try {
    r = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: code.trim().toUpperCase(), password }),
    });
  } catch (_) {
    throw new ServerError("unavailable");
  }
  if (!r.ok) {
    let code = r.status === 401 ? "bad_credentials" : "unavailable";
    try { code = (await r.json()).code || code; } catch (_) { /* not JSON */ }
    throw new ServerError(code);
  }
  const auth = await r.json();
  sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
  return auth;
}

/// Asks the server who the token belongs to; null when the token is no longer valid
/// (expired, revoked or not ours), and throws when the server cannot be reached.
export async function whoami(auth) {
  const r = await fetch("/api/me", { headers: { authorization: `Bearer ${auth.token}` } });
  if (r.status === 401) return null;
  if (!r.ok) throw new ServerError("unavailable");
  const me = await r.json();
  return { ...auth, ...me };
}

/// A single-use ticket to open the WebSocket (a token never goes in a URL); null when the
/// server refuses the token.
export async function wsTicket(auth) {
  const r = await fetch("/api/ws-ticket", {
    method: "POST",
    headers: { authorization: `Bearer ${auth.token}` },
  });
  if (r.status === 401) return null;
  if (!r.ok) throw new ServerError("unavailable");
  return (await r.json()).ticket;
}

/// Forgets the tab's log-in (a token the server refused).
export function forgetAuth() {
  sessionStorage.removeItem(AUTH_KEY);
}

/// Forgets the log-in and goes to the log-in page, which brings the user back here (with
/// the same query, so a kiosk's `?autostart=1` survives).
export function toLogin(reason) {
  forgetAuth();
  const q = new URLSearchParams();
  if (reason) q.set("reason", reason);
  if (location.pathname !== "/login") q.set("next", location.pathname + location.search);
  location.assign(`/login?${q}`);
}

export async function logout(auth) {
  try {
    await fetch("/api/logout", { method: "POST", headers: { authorization: `Bearer ${auth.token}` } });
  } catch (_) { /* the token expires by itself */ }
  sessionStorage.removeItem(AUTH_KEY);
  location.assign("/login");
}

/// The page for an account's roles.
export function landingFor(roles) {
  const has = (r) => roles.includes(r);
  if (has("chair") || has("vice_chair")) return "/chair";
  if (has("clerk")) return "/clerk";
  if (has("deputy")) return "/deputy";
  if (has("site_operator")) return "/room";
  return "/display";
}

/// Makes sure this page has a valid log-in: returns it, or sends the user to log in.
export async function requireAuth() {
  const auth = savedAuth();
  if (!auth) { toLogin(); return new Promise(() => {}); }
  let me;
  try {
    me = await whoami(auth);
  } catch (_) {
    return auth; // The server is unreachable: go on; the connection will retry.
  }
  if (!me) { toLogin("expired"); return new Promise(() => {}); }
  sessionStorage.setItem(AUTH_KEY, JSON.stringify(me));
  return me;
}

/// The sitting to follow: the one named in `?sitting=`, else the one in session, else the
/// first scheduled, else the last.
export async function chooseSitting() {
  const wanted = new URLSearchParams(location.search).get("sitting");
  if (wanted) return wanted;
  // A server that is not up yet (a kiosk started before it) is waited for.
  for (let wait = 500; ; wait = Math.min(wait * 2, 8000)) {
    try {
      const r = await fetch("/api/sittings", { cache: "no-store" });
      if (r.ok) {
        const list = await r.json();
        const live = list.find((s) => s.phase === "open" || s.phase === "suspended")
          || list.find((s) => s.phase !== "closed") || list[list.length - 1];
        if (live) return live.sitting;
      }
    } catch (_) { /* not reachable yet */ }
    await new Promise((res) => setTimeout(res, wait));
  }
}

let tabNonce = null;
function nonce() {
  if (!tabNonce) {
    const a = new Uint8Array(4);
    crypto.getRandomValues(a);
    tabNonce = [...a].map((b) => b.toString(36).padStart(2, "0")).join("").slice(0, 6);
  }
  return tabNonce;
}

/// One connection to one sitting. Listen with `on(type, f)`:
/// - `state` (state, client): the state changed (at most once per frame);
/// - `event` (message): an event was folded in;
/// - `connection` (status): `connecting`, `online`, `reconnecting` or `offline`;
/// - `welcome` (message); `media` (message): unsolicited media messages (`media_sdp`
///   without a request, `media_levels`, `media_closed`).
export class Client {
  constructor(auth, sitting) {
    this.auth = auth;
    this.sitting = sitting;
    this.state = emptyState();
    this.seq = 0;
    this.epoch = null;
    this.synced = false;
    this.roster = { delegations: {}, actors: {} };
    this.status = "connecting";
    this.offset = 0;
    this.listeners = new Map();
    this.pending = new Map(); // command_id → {msg, resolve, reject}
    this.requests = new Map(); // media request_id → {resolve, reject}
    this.counter = 0;
    this.ws = null;
    this.backoff = 500;
    this.lastHeard = 0;
    this.renderQueued = false;
    this.stopped = false;
    window.addEventListener("online", () => { if (this.status !== "online") this.connectSoon(0); });
    window.addEventListener("offline", () => this.setStatus("offline"));
  }

  on(type, f) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(f);
    return this;
  }

  emit(type, ...args) {
    for (const f of this.listeners.get(type) || []) {
      try { f(...args); } catch (e) { console.error(e); }
    }
  }

  /// The server's clock, as well as we know it.
  now() { return Date.now() + this.offset; }

  /// The roster's actor, or a stand-in with the code as its name.
  actor(id) { return this.roster.actors[id] || { id, name: id, delegation: null, roles: [] }; }

  delegationName(code) { return (this.roster.delegations[code] || {}).name || code || ""; }

  me() { return this.actor(this.auth.actor); }

  async start() {
    // The roster is needed for names; a server that is not up yet is waited for.
    for (let wait = 500; ; wait = Math.min(wait * 2, 8000)) {
      try {
        const r = await fetch(`/api/sittings/${encodeURIComponent(this.sitting)}/roster`);
        if (r.ok) { this.roster = await r.json(); break; }
      } catch (_) { /* not reachable yet */ }
      this.setStatus("reconnecting");
      await new Promise((res) => setTimeout(res, wait));
    }
    this.connect();
    setInterval(() => this.heartbeat(), PING_EVERY_MS / 2);
    return this;
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit("connection", status);
  }

  async connect() {
    if (this.stopped || this.connecting) return;
    this.connecting = true;
    let ticket;
    try {
      ticket = await wsTicket(this.auth);
    } catch (_) {
      // The server is unreachable: try again later, as for a dropped connection.
      this.connecting = false;
      this.setStatus(navigator.onLine === false ? "offline" : "reconnecting");
      this.connectSoon(this.backoff);
      this.backoff = Math.min(this.backoff * 2, 8000);
      return;
    }
    this.connecting = false;
    if (ticket === null) { this.expire(); return; }
    if (this.stopped || this.ws) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastHeard = Date.now();
      const sub = { type: "subscribe", v: PROTOCOL, sitting: this.sitting };
      if (this.epoch && this.synced) { sub.resume_from = this.seq; sub.epoch = this.epoch; }
      ws.send(JSON.stringify(sub));
      // Commands never acknowledged go again with the same id: the server answers a retry
      // with the original outcome and never applies a command twice.
      for (const p of this.pending.values()) ws.send(JSON.stringify(p.msg));
      this.ping();
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      this.receive(msg);
    };
    ws.onclose = async (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const r of this.requests.values()) r.reject(new ServerError("media_unavailable"));
      this.requests.clear();
      if (ev.code === 1008) { this.expire(); return; }
      if (!opened) {
        // Refused before the upgrade: a token that is no longer valid looks the same as a
        // server that is down, so ask.
        try {
          if ((await whoami(this.auth)) === null) { this.expire(); return; }
        } catch (_) { /* unreachable: retry */ }
      }
      this.setStatus(navigator.onLine === false ? "offline" : "reconnecting");
      this.connectSoon(this.backoff);
      this.backoff = Math.min(this.backoff * 2, 8000);
    };
  }

  connectSoon(ms) {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => { if (!this.ws) this.connect(); }, ms);
  }

  /// The token expired or was revoked: nothing half-done is kept.
  expire() {
    this.stopped = true;
    this.pending.clear();
    toLogin("expired");
  }

  heartbeat() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > PING_EVERY_MS + PONG_TIMEOUT_MS) {
      // Nothing heard for too long: the connection is dead even if the socket has not
      // noticed. Drop it and reconnect.
      const ws = this.ws;
      ws.onclose({ code: 1006 });
      ws.onclose = null;
      ws.close();
      return;
    }
    if (Date.now() - this.lastPing >= PING_EVERY_MS) this.ping();
  }

  ping() {
    this.lastPing = Date.now();
    this.pingSent = Date.now();
    this.send({ type: "ping", v: PROTOCOL });
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  receive(msg) {
    switch (msg.type) {
      case "welcome":
        this.offset = msg.now - Date.now();
        this.emit("welcome", msg);
        break;
      case "pong":
        // Half the round trip is the best guess of the one-way delay.
        if (this.pingSent) this.offset = msg.now + (Date.now() - this.pingSent) / 2 - Date.now();
        // A resume with nothing missed brings no message: the answer to our ping says the
        // connection works and the state is current.
        if (this.synced && this.status !== "online") { this.backoff = 500; this.setStatus("online"); }
        break;
      case "snapshot":
        this.state = msg.state;
        this.seq = msg.seq;
        this.epoch = msg.epoch;
        this.synced = true;
        this.backoff = 500;
        this.setStatus("online");
        this.queueRender();
        break;
      case "event":
        this.applyEvent(msg);
        break;
      case "events":
        // A commit's events in one message (version 2), each as an `event` would carry it.
        for (const e of msg.events || []) {
          if (!this.applyEvent({ type: "event", v: msg.v, ...e })) break;
        }
        break;
      case "resync":
        this.synced = false;
        break;
      case "ack":
        this.settle(msg.command_id, (p) => p.resolve(msg));
        break;
      case "error":
        if (msg.command_id && this.pending.has(msg.command_id)) {
          if (msg.code === "storage_unavailable" || msg.code === "unavailable") {
            // Nothing was recorded: the same id goes again shortly.
            const p = this.pending.get(msg.command_id);
            setTimeout(() => this.send(p.msg), 1000);
            break;
          }
          this.settle(msg.command_id, (p) => p.reject(new ServerError(msg.code, msg.message)));
        } else if (msg.command_id && this.requests.has(msg.command_id)) {
          const r = this.requests.get(msg.command_id);
          this.requests.delete(msg.command_id);
          r.reject(new ServerError(msg.code, msg.message));
        } else {
          this.emit("error", new ServerError(msg.code, msg.message));
        }
        break;
      case "media_sdp":
      case "media_ok":
        if (msg.request_id && this.requests.has(msg.request_id)) {
          const r = this.requests.get(msg.request_id);
          this.requests.delete(msg.request_id);
          r.resolve(msg);
        } else {
          this.emit("media", msg);
        }
        break;
      default:
        this.emit("media", msg);
    }
  }

  /// A fresh snapshot instead of the events we have (a gap, or an event we cannot fold).
  // Applies one event in order; false once the state had to be asked for again.
  applyEvent(msg) {
    if (!this.synced || msg.seq <= this.seq) return true;
    if (msg.seq !== this.seq + 1 || !apply(this.state, msg.event)) {
      this.resubscribe();
      return false;
    }
    this.seq = msg.seq;
    if (this.status !== "online") { this.backoff = 500; this.setStatus("online"); }
    this.emit("event", msg);
    this.queueRender();
    return true;
  }

  resubscribe() {
    this.synced = false;
    this.send({ type: "subscribe", v: PROTOCOL, sitting: this.sitting });
  }

  settle(id, f) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    f(p);
  }

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    const run = () => { this.renderQueued = false; this.emit("state", this.state, this); };
    if (document.hidden) setTimeout(run, 100); else requestAnimationFrame(run);
  }

  /// Sends a command; resolves with the `ack` once it is durable, rejects with a
  /// ServerError. Survives reconnects: the command goes again with the same id (and the
  /// same passkey confirmation, `stepUp`, which the server takes again for that id only).
  command(command, stepUp) {
    this.counter += 1;
    const id = `${this.auth.actor}-${nonce()}-${this.counter}`.slice(0, 64);
    const msg = { type: "command", v: PROTOCOL, command_id: id, command };
    if (stepUp) msg.step_up = stepUp;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { msg, resolve, reject });
      this.send(msg);
    });
  }

  /// How many commands wait for an answer.
  pendingCount() { return this.pending.size; }

  /// Sends a media signalling message with a fresh `request_id`; resolves with the answer.
  mediaRequest(msg) {
    this.counter += 1;
    const id = `m-${nonce()}-${this.counter}`;
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      if (!this.send({ ...msg, v: PROTOCOL, request_id: id })) {
        this.requests.delete(id);
        reject(new ServerError("media_unavailable"));
      }
    });
  }

  /// Sends a media message that has no answer (a trickled candidate).
  mediaSend(msg) { this.send({ ...msg, v: PROTOCOL }); }
}
