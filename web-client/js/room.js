// The delegation site's room app (and the chamber's: the CHAMBER account publishes the
// hall's programme from here): started once a day on the room's computer, it publishes the
// room's camera and microphone over WHIP (three simulcast layers), shows the programme on
// the room's screen with the speaker's name and time over it, and lists this delegation's
// deputies with their check-in. It comes back by itself after the network drops: the
// connection reconnects, the publisher and the programme start again, and a room that was
// broadcasting before a reload (or a trip to the log-in page) broadcasts again.
import { t, onLang, addStrings } from "./i18n.js";
import { h, fill, text, clock, every } from "./ui.js";
import { queueOf, openVote } from "./state.js";
import { Programme, Publisher } from "./media.js";
import { kioskAuth, bootRetrying, keepMediaAlive, confirmOnline } from "./kiosk.js";

addStrings({
  vi: {
    siteCamera: "Camera và micro của điểm cầu", fullscreen: "Toàn màn hình", exitFullscreen: "Thoát toàn màn hình",
    presentOf: "{n}/{m} có mặt", hallPresent: "Đại biểu có mặt tại hội trường",
    inQueue: "Đăng ký phát biểu: thứ {n}", noSiteDeputies: "Không có đại biểu nào thuộc điểm cầu này.",
    byClerk: "thư ký điểm danh thay", chamberCamera: "Hình và âm thanh hội trường",
    chamberHelp: "Đây là chương trình của hội trường: các điểm cầu nhận hình và âm thanh này khi không ai phát biểu hoặc khi đại biểu tại hội trường phát biểu.",
  },
  en: {
    siteCamera: "This site's camera and microphone", fullscreen: "Full screen", exitFullscreen: "Leave full screen",
    presentOf: "{n}/{m} present", hallPresent: "Deputies present in the hall",
    inQueue: "Asked to speak: number {n}", noSiteDeputies: "No deputy belongs to this site.",
    byClerk: "checked in by a clerk", chamberCamera: "The hall's camera and sound",
    chamberHelp: "This is the hall's programme: the sites receive this picture and sound while nobody has the floor and while a deputy in the hall speaks.",
  },
});

const $ = (id) => document.getElementById(id);
/// Set while this tab should broadcast: survives a reload and a trip to the log-in page.
const BROADCAST_KEY = "dh.room.broadcast";
const autostart = new URLSearchParams(location.search).get("autostart") === "1"
  || sessionStorage.getItem(BROADCAST_KEY) === "1";

let publisher = null;
let programme = null;
// For tests and monitoring: what this room sends and receives.
window.dienhongMedia = {
  state: () => (publisher ? publisher.state : "idle"),
  framesDecoded: () => (programme ? programme.frames() : 0),
  stats: async () => (publisher && publisher.pc ? publisher.pc.getStats() : new Map()),
  programme: () => (programme ? programme.state : "idle"),
};

// --- the room's camera and microphone ------------------------------------------------------
function showPublisher() {
  const s = publisher ? publisher.state : "idle";
  const el = $("status");
  el.dataset.state = s;
  el.textContent = t(s);
  const on = !!(publisher && publisher.wanted);
  $("start").disabled = on;
  $("stop").disabled = !on;
  $("preview").hidden = !on;
}

function makePublisher(auth) {
  publisher = new Publisher(auth, {
    simulcast: true,
    preview: $("preview"),
    onState: (s) => {
      showPublisher();
      // A camera unplugged or busy: try again until it comes back.
      if (s === "noDevice") {
        setTimeout(() => { if (publisher.wanted && publisher.state === "noDevice") publisher.start(); }, 10000);
      }
    },
  });
}

function startBroadcast() {
  if (!publisher || publisher.wanted) return;
  sessionStorage.setItem(BROADCAST_KEY, "1");
  publisher.start();
  showPublisher();
}

function stopBroadcast() {
  sessionStorage.removeItem(BROADCAST_KEY);
  if (publisher) publisher.stop();
}

/// Resolves once the publisher's first attempt is over (live, refused, no device), or
/// after 15 s.
function firstAttempt() {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const check = setInterval(() => {
      if (!publisher || publisher.state !== "connecting" || Date.now() - t0 > 15000) {
        clearInterval(check);
        resolve();
      }
    }, 100);
  });
}

// A kiosk with a token broadcasts at once, before anything else: if the server refuses the
// token, WHIP's 401 sends the page to log in.
const auth = await kioskAuth("roomTitle", {
  whileChecking: (saved) => {
    if (!autostart) return null;
    makePublisher(saved);
    startBroadcast();
    return firstAttempt();
  },
});
if (publisher && publisher.auth.token !== auth.token) {
  await publisher.stop();
  publisher = null;
}
if (!publisher) makePublisher(auth);
$("room").hidden = false;
$("start").addEventListener("click", startBroadcast);
$("stop").addEventListener("click", stopBroadcast);
if (autostart) startBroadcast();
showPublisher();

// --- the programme on the room's screen -------------------------------------------------------
const video = $("programme");
let soundWanted = true;
let ownVoice = false;
const showProgramme = () => {
  const s = programme ? programme.state : "idle";
  const el = $("programme-state");
  el.dataset.state = s;
  el.textContent = t(s);
  if (s === "receiving") playWithSound();
};
/// The room hears the hall, except its own microphone coming back (feedback).
function applySound() {
  video.muted = !soundWanted || ownVoice;
  text("sound", soundWanted ? t("soundOff") : t("soundOn"));
}
/// Plays with sound if the browser lets this page (a kiosk is started with autoplay
/// allowed); else muted, and the sound button is there for a person to press.
function playWithSound() {
  applySound();
  video.play().catch(() => {
    soundWanted = false;
    applySound();
    video.play().catch(() => {});
  });
}
$("sound").addEventListener("click", () => {
  soundWanted = !soundWanted;
  applySound();
  video.play().catch(() => {});
});
applySound();
programme = new Programme(video, auth, showProgramme);
programme.start();

const showFullscreen = () => text("fullscreen", document.fullscreenElement ? t("exitFullscreen") : t("fullscreen"));
$("fullscreen").hidden = !document.fullscreenEnabled;
$("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else $("stage").requestFullscreen().catch(() => {});
});
document.addEventListener("fullscreenchange", showFullscreen);
showFullscreen();

// --- the sitting -------------------------------------------------------------------------
const client = await bootRetrying("roomTitle", auth);
keepMediaAlive(client, () => [publisher, programme]);
confirmOnline(client);
let myId = client.auth.actor;
client.on("welcome", (m) => { if (!myId) { myId = m.actor; render(client.state); } });
const myDelegation = () => (myId ? client.actor(myId).delegation : null);
const isChamber = () => (client.roster.delegations[myDelegation()] || {}).kind === "chamber";

function where(s, id) {
  return t(`where_${s.locations[id] || "site"}`);
}

function renderSpeaker(s) {
  const f = s.floor;
  $("speaker-overlay").hidden = !f;
  const mine = myDelegation();
  const a = f ? client.actor(f.deputy) : null;
  const loc = f ? s.locations[f.deputy] : null;
  // The room's own sound must not come back to it through the programme (feedback): the
  // chamber's whenever the programme carries the hall (nobody, or someone in the hall,
  // speaking); a site's while its own deputy speaks from the room (or a device in it).
  const wasOwn = ownVoice;
  ownVoice = isChamber()
    ? !f || loc === "hall"
    : !!(f && mine && a.delegation === mine && loc !== "hall" && loc !== "remote");
  if (ownVoice !== wasOwn) applySound();
  if (!f) return;
  text("speaker-name", a.name || f.deputy);
  text("speaker-meta", [a.delegation ? client.delegationName(a.delegation) : null, t(`kind_${f.kind}`), s.locations[f.deputy] ? where(s, f.deputy) : null]
    .filter(Boolean).join(" · "));
}

function renderVote(s) {
  const v = openVote(s);
  $("vote-overlay").hidden = !v;
  if (v) text("vote-question", v.question);
}

function renderDeputies(s) {
  const code = myDelegation();
  const d = code ? client.roster.delegations[code] : null;
  text("site-name", d ? `— ${d.name}` : "");
  // The chamber's room app publishes the hall's programme; a site's, the room.
  for (const [id, site, chamber] of [["camera-title", "siteCamera", "chamberCamera"], ["room-help", "roomHelp", "chamberHelp"]]) {
    const key = isChamber() ? chamber : site;
    if ($(id).dataset.i18n !== key) { $(id).dataset.i18n = key; $(id).textContent = t(key); }
  }
  if (isChamber()) {
    // The chamber's own room: its deputies are the whole assembly; it shows who is in the hall.
    const inHall = Object.keys(s.present).filter((id) => s.locations[id] === "hall").length;
    text("deputies-title", t("hallPresent"));
    text("present-count", String(inHall));
    fill("deputies");
    return;
  }
  text("deputies-title", t("siteDeputies"));
  const deputies = Object.values(client.roster.actors)
    .filter((a) => code && a.delegation === code && (a.roles || []).includes("deputy"))
    .sort((a, b) => a.name.localeCompare(b.name, "vi"));
  const present = deputies.filter((a) => a.id in s.present).length;
  text("present-count", deputies.length ? t("presentOf").replace("{n}", present).replace("{m}", deputies.length) : "");
  const queue = queueOf(s);
  fill("deputies", deputies.length ? deputies.map((a) => {
    const here = a.id in s.present;
    const speaking = !!(s.floor && s.floor.deputy === a.id);
    const asked = queue.find((r) => r.deputy === a.id);
    return h("li", { class: `${here ? "here" : "away"}${speaking ? " speaking" : ""}` },
      h("span", { class: "who" },
        h("span", { class: "name" }, a.name),
        h("span", { class: "code muted" }, a.id),
        speaking ? h("span", { class: "now" }, t("speaker")) : null,
        asked ? h("span", { class: "asked" }, `${t("inQueue").replace("{n}", asked.position)} · ${t(`kind_${asked.kind}`)}`) : null),
      h("span", { class: `state ${here ? "in" : "out"}` },
        here ? `${t("checkedIn")} · ${where(s, a.id)}${s.present[a.id] ? ` (${t("byClerk")})` : ""}` : t("notCheckedIn")));
  }) : h("li", { class: "muted" }, t("noSiteDeputies")));
}

function render(s) {
  renderSpeaker(s);
  renderVote(s);
  renderDeputies(s);
  tick();
}

function tick() {
  const s = client.state;
  const now = client.now();
  if (s.floor) {
    const left = s.floor.deadline - now;
    text("speaker-timer", clock(left));
    $("speaker-timer").classList.toggle("low", left < 30000);
  }
  const v = openVote(s);
  if (v) text("vote-timer", clock(v.deadline - now));
}

client.on("state", render);
onLang(() => { render(client.state); showPublisher(); showProgramme(); applySound(); showFullscreen(); });
render(client.state);
every(250, tick);
