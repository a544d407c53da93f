// Shared by the room app (/room) and the hall display (/display): the i18n table, login,
// and a WHIP/WHEP client (RFC 9725) for the server's SFU.
"use strict";

const I18N = {
  vi: {
    other: "English", code: "Mã tài khoản", password: "Mật khẩu", login: "Đăng nhập",
    loginFailed: "Sai mã tài khoản hoặc mật khẩu", start: "Bắt đầu phát", stop: "Dừng phát",
    roomTitle: "Điểm cầu — phát hình và âm thanh", displayTitle: "Màn hình hội trường",
    idle: "Chưa kết nối", connecting: "Đang kết nối…", live: "Đang phát", receiving: "Đang nhận hình",
    lost: "Mất kết nối — đang thử lại…", stopped: "Đã dừng", noDevice: "Không mở được camera hoặc micro",
    refused: "Máy chủ từ chối", signedInAs: "Đăng nhập với", frames: "khung hình đã giải mã",
    roomHelp: "Micro của điểm cầu chỉ được phát tới hội trường khi chủ tọa cho đại biểu của đoàn phát biểu.",
  },
  en: {
    other: "Tiếng Việt", code: "Account code", password: "Password", login: "Log in",
    loginFailed: "Wrong code or password", start: "Start broadcasting", stop: "Stop",
    roomTitle: "Delegation site — camera and microphone", displayTitle: "Hall display",
    idle: "Not connected", connecting: "Connecting…", live: "Live", receiving: "Receiving",
    lost: "Connection lost — retrying…", stopped: "Stopped", noDevice: "Could not open the camera or microphone",
    refused: "Refused by the server", signedInAs: "Signed in as", frames: "frames decoded",
    roomHelp: "The room's microphone reaches the hall only while the chair gives the floor to a deputy of this delegation.",
  },
};

const Dh = {
  lang: localStorage.getItem("lang") || "vi",
  t(key) { return I18N[this.lang][key] || key; },
  applyStatic() {
    document.documentElement.lang = this.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = this.t(el.dataset.i18n); });
    const btn = document.getElementById("lang");
    if (btn) btn.textContent = this.t("other");
  },
  toggleLang() {
    this.lang = this.lang === "vi" ? "en" : "vi";
    localStorage.setItem("lang", this.lang);
    this.applyStatic();
  },

  /// A token from the page's fragment (#token=…, for kiosk devices started once a day) or
  /// from this tab's earlier login.
  savedToken() {
    const frag = new URLSearchParams(location.hash.slice(1));
    const token = frag.get("token");
    if (token) {
      sessionStorage.setItem("token", token);
      history.replaceState(null, "", location.pathname + location.search);
      return token;
    }
    return sessionStorage.getItem("token");
  },

  async login(code, password) {
    const r = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code, password }),
    });
    if (!r.ok) throw new Error(this.t("loginFailed"));
    const body = await r.json();
    sessionStorage.setItem("token", body.token);
    return body.token;
  },

  /// Negotiates `pc` over WHIP (`/whip`) or WHEP (`/whep`); returns the session URL.
  async negotiate(pc, path, token) {
    await pc.setLocalDescription(await pc.createOffer());
    // Send the offer with its candidates: wait for gathering, at most two seconds.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 2000);
    });
    const r = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/sdp", authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    if (r.status === 401) {
      // The token expired or was revoked (a kiosk's daily token): log in again.
      sessionStorage.removeItem("token");
      location.reload();
      return new Promise(() => {});
    }
    if (r.status !== 201) {
      let message = this.t("refused");
      try { message += `: ${(await r.json()).message}`; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    const session = r.headers.get("location");
    await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
    return session;
  },

  /// Wires the page's login form; calls `enter(token)` once a token is known (from the
  /// fragment, this tab's earlier login, or the form).
  boot(enter) {
    this.applyStatic();
    const form = document.getElementById("login");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      try {
        const token = await this.login(f.get("code"), f.get("password"));
        form.hidden = true;
        enter(token);
      } catch (e) {
        document.getElementById("login-error").textContent = e.message;
      }
    });
    const token = this.savedToken();
    if (token) enter(token); else form.hidden = false;
  },

  async end(location, token) {
    if (!location) return;
    try {
      await fetch(location, { method: "DELETE", headers: { authorization: `Bearer ${token}` }, keepalive: true });
    } catch (_) { /* the server will release it when ICE consent is lost */ }
  },
};
