// What the two kiosk pages share, the hall display (/display) and the delegation site's room
// app (/room): devices started once a day that nobody sits at. They log in with a token in
// the URL fragment (#token=…) or through their own form `#login`, shown in place (the page
// goes on without a reload); they start again by themselves when the server is away at
// first; and their media starts again when the connection comes back after an outage.
import { savedAuth, whoami, login } from "./core.js";
import { t, onLang, addStrings } from "./i18n.js";
import { mountHeader, boot } from "./ui.js";

addStrings({
  vi: {
    kioskLoginHelp: "Thiết bị này chưa đăng nhập. Nhập mã tài khoản được cấp cho màn hình hoặc điểm cầu.",
    where_hall: "Tại hội trường", where_site: "Tại điểm cầu", where_remote: "Trực tuyến",
    soundOn: "Bật âm thanh", soundOff: "Tắt âm thanh",
  },
  en: {
    kioskLoginHelp: "This device is not logged in. Enter the account code given to this screen or site.",
    where_hall: "In the hall", where_site: "At the delegation's site", where_remote: "Online",
    soundOn: "Turn sound on", soundOff: "Turn sound off",
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// The page's log-in: the saved one (fragment or this tab) if the server still takes it,
/// else whatever the form `#login` gives. `whileChecking(auth)` runs with a saved log-in
/// before the server is asked about it, and may return a promise the page waits for before
/// it shows the form (the room app's first WHIP attempt, which itself sends the page to log
/// in when the server refuses the token). A server that cannot be reached leaves the saved
/// log-in in use: the connection retries.
export async function kioskAuth(titleKey, { whileChecking } = {}) {
  mountHeader(titleKey, null, null);
  const auth = savedAuth();
  if (!auth) return askLogin(null);
  const attempt = whileChecking ? whileChecking(auth) : null;
  let me;
  try {
    me = await whoami(auth);
  } catch (_) {
    return auth;
  }
  if (me) return me;
  if (attempt) await attempt;
  return askLogin("loginExpired");
}

/// Shows the form `#login` and resolves with the log-in once it succeeds.
function askLogin(reasonKey) {
  const form = document.getElementById("login");
  const error = document.getElementById("login-error");
  let key = reasonKey;
  const show = () => {
    error.textContent = key ? t(key) : "";
    // Not connected to anything yet: the header's connection mark says nothing.
    const conn = document.getElementById("conn");
    if (conn && !form.hidden) { conn.textContent = ""; delete conn.dataset.state; }
  };
  form.hidden = false;
  show();
  onLang(show);
  form.querySelector("[name=code]").focus();
  return new Promise((resolve) => {
    const submit = async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const auth = await login(String(f.get("code")), String(f.get("password")));
        form.removeEventListener("submit", submit);
        form.reset();
        form.hidden = true;
        key = null;
        show();
        resolve(auth);
      } catch (e) {
        key = { bad_credentials: "loginFailed", too_many_attempts: "loginThrottled" }[e.code] || "loginUnavailable";
        show();
        form.querySelector("[name=password]").select();
      } finally {
        button.disabled = false;
      }
    };
    form.addEventListener("submit", submit);
  });
}

/// `boot()`, tried again every few seconds while the server cannot be reached (a kiosk
/// switched on before the network or the server is up).
export async function bootRetrying(titleKey, auth) {
  for (let wait = 1000; ; wait = Math.min(wait * 2, 15000)) {
    try {
      return await boot(titleKey, { auth });
    } catch (e) {
      console.warn("boot failed, retrying", e);
      await sleep(wait);
    }
  }
}

/// Keeps the page's media going without anyone touching it. `media()` lists the page's
/// Programme and Publisher (either may be null). When the WebSocket comes back after an
/// outage, a connection that still looks live is renegotiated (the server may have
/// restarted and forgotten it: it would otherwise take ICE consent's 30 s to notice); one
/// that is failing already retries by itself. A negotiation that hangs (a request lost with
/// the network) is started again after `stuckMs`.
export function keepMediaAlive(client, media, { stuckMs = 20000 } = {}) {
  const since = new WeakMap(); // media object → [state, since when]
  const age = (m) => {
    const seen = since.get(m);
    if (!seen || seen[0] !== m.state) { since.set(m, [m.state, Date.now()]); return 0; }
    return Date.now() - seen[1];
  };
  const kick = (m) => { if (m && m.wanted) m.restart(); };
  let down = false;
  client.on("connection", (s) => {
    if (s === "reconnecting" || s === "offline") { down = true; return; }
    if (s !== "online" || !down) return;
    down = false;
    for (const m of media()) {
      if (m && (m.state === "live" || m.state === "receiving")) kick(m);
    }
  });
  setInterval(() => {
    for (const m of media()) {
      // Only a negotiation: a publisher still waiting for its camera (a permission prompt)
      // has no peer connection yet, and starting it again would open a second one.
      if (m && m.state === "connecting" && m.pc && age(m) > stuckMs) kick(m);
      else if (m) age(m);
    }
  }, 2000);
}

/// Makes the connection's status tell the truth after an outage. The client core marks
/// itself `offline` on the browser's `offline` event and `reconnecting` on a close, and
/// marks itself `online` again only when a snapshot or an event arrives; a socket that
/// survived the outage, or a resume with nothing missed, brings neither in a quiet sitting,
/// and the page would say "reconnecting" (and its media wait) until the next event. So a
/// socket that is open while the status says otherwise asks for a fresh snapshot, which
/// also proves the socket is alive (a dead one is dropped by the core's heartbeat).
export function confirmOnline(client) {
  let seen = null;
  let asked = 0;
  const check = () => {
    const ws = client.ws;
    const open = ws && ws.readyState === WebSocket.OPEN;
    const stale = client.status === "reconnecting" || client.status === "offline";
    if (open && stale && seen === ws && Date.now() - asked > 10000) {
      asked = Date.now();
      client.resubscribe();
    }
    seen = open ? ws : null;
  };
  setInterval(check, 1500);
  window.addEventListener("online", () => setTimeout(() => { seen = client.ws; check(); }, 300));
}

/// A number of basis points as a percentage in the page's language (Vietnamese writes a
/// decimal comma: 50,20 %).
export function percentOf(bp, lang) {
  return `${(bp / 100).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} %`;
}
