// Small DOM helpers every page shares: building elements, the header with the language
// switch, the user and log-out, the connection banner, timers and notices.

import { t, toggleLang, translateStatic, onLang, errorText, currentLang } from "./i18n.js";
import { logout } from "./core.js";
import { sendCommand } from "./passkey.js";

/// `h("button", {class: "x", onclick: f}, "text", child)`: an element. Attributes that are
/// functions become listeners; `null`/`false` attributes are left out; children may be
/// strings, nodes, arrays or null.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = dv;
    }
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/// Replaces the children of the element with id `id`.
export function fill(id, ...children) {
  const el = typeof id === "string" ? document.getElementById(id) : id;
  if (el) el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

/// Sets an element's text only when it changed (keeps screen readers quiet).
export function text(id, value) {
  const el = document.getElementById(id);
  if (el && el.textContent !== String(value)) el.textContent = String(value);
}

/// Milliseconds as m:ss (never negative).
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/// Basis points (1/100 of a percent) as a percentage with two decimals.
export function percent(bp) {
  const n = (bp / 100).toFixed(2);
  return `${currentLang() === "vi" ? n.replace(".", ",") : n} %`;
}

/// The page's header: title, who is logged in, connection state, language, log-out.
/// `client` may be null on pages without a connection.
export function mountHeader(titleKey, client, auth) {
  const header = document.getElementById("top");
  const status = h("span", { id: "conn", class: "conn", role: "status", "aria-live": "polite" });
  const who = auth ? h("span", { class: "who", id: "who" }, auth.actor || "") : null;
  const out = auth ? h("button", { type: "button", class: "ghost", id: "logout", onclick: () => logout(auth) }, t("logout")) : null;
  header.replaceChildren(
    h("h1", {}, h("span", { "data-i18n": titleKey }, t(titleKey))),
    h("div", { class: "tools" }, who, status,
      h("button", { type: "button", class: "ghost", id: "lang", lang: "en", onclick: toggleLang }, t("other")),
      out),
  );
  const banner = document.getElementById("banner");
  const showConn = () => {
    const s = client ? client.status : "none";
    status.dataset.state = s;
    status.textContent = !client ? "" : s === "online" ? t("online") : s === "connecting" ? t("loading") : "";
    if (banner) {
      const bad = s === "reconnecting" || s === "offline";
      banner.hidden = !bad;
      const waiting = client ? client.pendingCount() : 0;
      banner.textContent = bad ? `${t(s)}${waiting ? ` (${waiting} ${t("pendingCommands")})` : ""}` : "";
    }
    if (who && client) {
      const me = client.me();
      who.textContent = me.name && me.name !== me.id ? `${me.name} · ${me.id}` : me.id;
    }
  };
  if (client) client.on("connection", showConn).on("state", showConn);
  onLang(() => {
    document.getElementById("lang").textContent = t("other");
    if (out) out.textContent = t("logout");
    showConn();
  });
  translateStatic();
  showConn();
}

/// Shows a short notice in the page's live region (`#notice`): errors by their code.
export function notice(message, kind = "info") {
  const el = document.getElementById("notice");
  if (!el) return;
  el.dataset.kind = kind;
  el.textContent = message;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { el.textContent = ""; }, 6000);
}

/// Runs a command from a button: disables it while waiting, shows the server's refusal as a
/// sentence. A ballot on a vote that asks for a passkey is confirmed with one first.
/// Resolves with the ack, or null when refused.
export async function act(client, command, button) {
  if (button) button.disabled = true;
  try {
    return await sendCommand(client, command);
  } catch (e) {
    notice(errorText(e.code), "error");
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

/// A deputy's name with the delegation, for lists.
export function who(client, id) {
  const a = client.actor(id);
  const d = a.delegation ? client.delegationName(a.delegation) : "";
  return { name: a.name || id, delegation: d };
}

/// Starts a page that follows the sitting: checks the log-in (or sends the user to log
/// in), picks the sitting, connects, and mounts the header. Resolves with the client.
export async function boot(titleKey, { auth: given } = {}) {
  const { requireAuth, chooseSitting, Client } = await import("./core.js");
  const auth = given || await requireAuth();
  const sitting = await chooseSitting();
  const client = new Client(auth, sitting);
  mountHeader(titleKey, client, auth);
  client.on("error", (e) => notice(errorText(e.code), "error"));
  await client.start();
  // For tests and monitoring: what this page knows (read-only use).
  window.dienhong = { client, state: () => client.state, seq: () => client.seq, status: () => client.status };
  return client;
}

/// Calls `f` every `ms` (timers, countdowns).
export function every(ms, f) { f(); return setInterval(f, ms); }
