// Media for every page: WHIP (publish) and WHEP (receive the programme) against the
// server's SFU (RFC 9725), and the chair console's receiving connection negotiated over the
// WebSocket (`media_subscribe`). A token the server no longer accepts (401) sends the user
// back to log in.

import { ServerError, toLogin } from "./core.js";

/// Waits for ICE gathering to finish, at most `ms`: the offer then carries its candidates.
function gathered(pc, ms = 2000) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") { resolve(); return; }
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

/// Negotiates `pc` over WHIP (`/whip`) or WHEP (`/whep`); returns the session's URL.
export async function negotiate(pc, path, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const r = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/sdp", authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (r.status === 401) {
    // The token expired or was revoked (a kiosk's daily token): log in again.
    toLogin("expired");
    throw new ServerError("token_expired");
  }
  if (r.status !== 201) {
    let code = "media_unavailable";
    try { code = (await r.json()).code || code; } catch (_) { /* not JSON */ }
    const e = new ServerError(code);
    // A server at capacity says when to come back (503 with Retry-After, seconds).
    e.retryAfter = Number(r.headers.get("retry-after")) || 0;
    throw e;
  }
  const sessionUrl = r.headers.get("location");
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  return sessionUrl;
}

async function endSession(sessionUrl, token) {
  if (!sessionUrl) return;
  try {
    await fetch(sessionUrl, { method: "DELETE", headers: { authorization: `Bearer ${token}` }, keepalive: true });
  } catch (_) { /* the server releases it when ICE consent lapses */ }
}

/// Frames decoded so far by a peer connection's video receivers.
export async function framesDecoded(pc) {
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") n += r.framesDecoded || 0;
  });
  return n;
}

/// One WHIP or WHEP session that keeps itself up: `connect(pc)` negotiates it, a failed
/// connection is replaced after 2 s (and a refused one after 5 s; one refused because the
/// server is at capacity after its Retry-After and a random share of it more, so that a
/// whole chamber refused together does not come back together) until `stop()`, and a
/// connection replaced while it was still negotiating is ended, never kept beside the new.
class HttpSession {
  constructor(auth, path, liveState, onState) {
    this.auth = auth;
    this.path = path;
    this.liveState = liveState;
    this.onState = onState;
    this.pc = null;
    this.session = null;
    this.state = "idle";
    this.wanted = false;
    this.again = false;
    window.addEventListener("pagehide", () => endSession(this.session, this.auth.token));
  }

  set(state) { this.state = state; this.onState(state); }

  /// Whether the page stopped this session (the other side of `wanted`).
  get stopped() { return !this.wanted; }

  async connect(pc) {
    this.pc = pc;
    pc.addEventListener("connectionstatechange", () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === "connected") this.set(this.liveState);
      if (pc.connectionState === "failed") this.restart();
    });
    try {
      const session = await negotiate(pc, this.path, this.auth.token);
      if (this.pc !== pc) { endSession(session, this.auth.token); return; }
      this.session = session;
    } catch (e) {
      if (e.code === "token_expired" || this.pc !== pc) return;
      const full = e.code === "media_overloaded";
      this.set(full ? "full" : "refused");
      const wait = full ? (e.retryAfter || 5) * (1 + Math.random()) : 5;
      setTimeout(() => this.restart(), wait * 1000);
    }
  }

  /// Replaces the connection (once, however often it is asked meanwhile).
  async restart() {
    if (!this.wanted || this.again) return;
    this.again = true;
    this.set("lost");
    await this.close();
    setTimeout(() => { this.again = false; if (this.wanted && !this.pc) this.start(); }, 2000);
  }

  /// The name the receiving pages use for `restart`.
  retry() { return this.restart(); }

  async close() {
    const { pc, session } = this;
    this.pc = null;
    this.session = null;
    await endSession(session, this.auth.token);
    if (pc) pc.close();
  }

  async stop() {
    this.wanted = false;
    await this.close();
    this.released();
    this.set("stopped");
  }

  /// What a subclass lets go of when stopped.
  released() {}
}

/// The programme (WHEP) in a <video>: the speaker while someone holds the floor, the hall
/// otherwise. Pulls again when the connection fails, or when nothing is decoded for 20 s.
export class Programme extends HttpSession {
  constructor(video, auth, onState = () => {}) {
    super(auth, "/whep", "receiving", onState);
    this.video = video;
    this.idleSince = null;
    setInterval(() => this.watch(), 1000);
  }

  async start() {
    this.wanted = true;
    this.set("connecting");
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    this.video.srcObject = stream;
    pc.addEventListener("track", (ev) => stream.addTrack(ev.track));
    await this.connect(pc);
  }

  frames() { return framesDecoded(this.pc); }

  /// The page knows pictures should be coming now (someone was given the floor): if none
  /// is decoded within 5 s, the connection is replaced then instead of after 20 s.
  expectMedia() {
    this.expectBy = Date.now() + 5000;
    this.framesAtExpect = null;
  }

  async watch() {
    if (!this.wanted || !this.pc) return;
    const n = await this.frames();
    if (this.expectBy) {
      if (this.framesAtExpect === null) this.framesAtExpect = n;
      if (n > this.framesAtExpect) {
        this.expectBy = null;
      } else if (Date.now() > this.expectBy) {
        this.expectBy = null;
        this.restart();
        return;
      }
    }
    if (this.state !== "receiving" || n > 0) { this.idleSince = null; return; }
    if (this.idleSince === null) this.idleSince = Date.now();
    else if (Date.now() - this.idleSince > 20000) { this.idleSince = null; this.restart(); }
  }
}

/// Camera and microphone published over WHIP. `simulcast` sends three layers (the chair's
/// console takes the smallest as a thumbnail).
export class Publisher extends HttpSession {
  constructor(auth, { simulcast = true, preview = null, onState = () => {} } = {}) {
    super(auth, "/whip", "live", onState);
    this.simulcast = simulcast;
    this.preview = preview;
    this.stream = null;
    this.enabled = true;
  }

  /// Sends the camera and microphone (true) or black and silence (false) over the same
  /// connection: a connection made ready beforehand goes live at once.
  setEnabled(on) {
    const was = this.enabled;
    this.enabled = on;
    if (!this.pc || was === on) return;
    // Taking the tracks off the senders stops the encoders; putting them back starts them
    // with a keyframe at once, without waiting for the SFU to ask for one.
    for (const tr of this.pc.getTransceivers()) {
      const track = this.tracks.get(tr);
      if (track) tr.sender.replaceTrack(on ? track : null).catch(() => {});
    }
  }

  async start() {
    if (this.wanted && (this.pc || this.state === "connecting")) return;
    this.wanted = true;
    this.set("connecting");
    try {
      this.stream = this.stream || await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    } catch (_) {
      this.set("noDevice");
      return;
    }
    if (!this.wanted) { this.released(); return; }
    if (this.preview) this.preview.srcObject = this.stream;
    const pc = new RTCPeerConnection();
    // Each transceiver's own track, to take off and put back (setEnabled).
    this.tracks = new Map();
    for (const track of this.stream.getAudioTracks()) {
      this.tracks.set(pc.addTransceiver(track, { direction: "sendonly" }), track);
    }
    for (const track of this.stream.getVideoTracks()) {
      this.tracks.set(pc.addTransceiver(track, {
        direction: "sendonly",
        sendEncodings: this.simulcast
          ? [
            { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150000 },
            { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500000 },
            { rid: "f", maxBitrate: 1500000 },
          ]
          : [{ maxBitrate: 1500000 }],
      }), track);
    }
    if (!this.enabled) {
      for (const [tr] of this.tracks) tr.sender.replaceTrack(null).catch(() => {});
    }
    await this.connect(pc);
  }

  released() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    if (this.preview) this.preview.srcObject = null;
  }
}

/// A receiving connection negotiated over the WebSocket (`media_subscribe`): every track
/// published, named by participant (`a=msid`), for the chair console's grid. `onTrack(
/// participant, stream)` is called for each participant's stream as it appears.
export class Console {
  constructor(client, onTrack) {
    this.client = client;
    this.onTrack = onTrack;
    this.pc = null;
    this.media = null;
    client.on("media", (msg) => this.handle(msg));
  }

  async start() {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.addEventListener("track", (ev) => {
      for (const stream of ev.streams) this.onTrack(stream.id, stream);
    });
    pc.addEventListener("icecandidate", (ev) => {
      if (this.media != null && ev.candidate) {
        this.client.mediaSend({ type: "media_candidate", media: this.media, candidate: ev.candidate.candidate });
      }
    });
    const offer = await this.client.mediaRequest({ type: "media_subscribe" });
    this.media = offer.media;
    await this.answer(offer);
  }

  async answer(offer) {
    await this.pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await this.client.mediaRequest({ type: "media_answer", media: this.media, sdp: this.pc.localDescription.sdp });
  }

  handle(msg) {
    if (msg.type === "media_sdp" && msg.media === this.media && msg.sdp_type === "offer") {
      this.answer(msg).catch(() => this.restart());
    }
    if (msg.type === "media_closed" && msg.media === this.media) this.restart();
  }

  restart() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.media = null;
    setTimeout(() => this.start().catch(() => this.restart()), 2000);
  }
}
