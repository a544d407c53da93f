// The deputy app: check in saying where I sit, follow the programme and the speaker, ask to
// speak and withdraw, speak when given the floor (camera and microphone go live), vote when
// a vote opens (confirming the ballot with a passkey when the vote asks), read the current
// item's documents, register a passkey.
import { t, errorText, onLang, currentLang } from "./i18n.js";
import { h, fill, text, clock, notice, act, who, boot, every } from "./ui.js";
import { queueOf, openVote } from "./state.js";
import { Programme, Publisher } from "./media.js";
import { sendCommand, mountPasskeyCard } from "./passkey.js";
import { openDocument, mountSearchCard } from "./documents.js";

const client = await boot("deputyTitle");
const me = client.auth.actor;
const $ = (id) => document.getElementById(id);

// --- programme -----------------------------------------------------------------------
const programme = new Programme($("programme"), client.auth, (s) => text("programme-state", t(s)));
onLang(() => text("programme-state", t(programme.state)));
programme.start();
// Browsers start a page's video silent until the user asks for sound.
const soundLabel = () => { $("sound").textContent = $("programme").muted ? t("soundOn") : t("soundOff"); };
$("sound").addEventListener("click", () => {
  const v = $("programme");
  v.muted = !v.muted;
  $("sound").setAttribute("aria-pressed", String(!v.muted));
  soundLabel();
});
onLang(soundLabel);
window.dienhong.media = { frames: () => programme.frames(), programme: () => programme.state, publisher: () => publisher.state };

// --- my camera and microphone while I hold the floor -------------------------------------
const publisher = new Publisher(client.auth, {
  preview: $("self"),
  onState: (s) => text("camera-state", s === "live" ? t("cameraLive") : s === "noDevice" ? t("cameraFailed") : t("cameraStarting")),
});
// While I wait in the queue the connection is made ready, sending black and silence (the
// SFU forwards a deputy only with the floor anyway); given the floor, the camera and
// microphone go live on it at once instead of after a whole negotiation.
let speaking = false;
let readying = false;
let lastSpeaker = null;
function followFloor(s) {
  const mine = !!(s.floor && s.floor.deputy === me);
  const queued = s.queue.some((r) => s.requests[r]?.deputy === me);
  const speaker = s.floor ? s.floor.deputy : null;
  if (speaker && speaker !== me && speaker !== lastSpeaker) programme.expectMedia();
  lastSpeaker = speaker;
  if (mine !== speaking) {
    speaking = mine;
    // My own voice must not come back to me through the programme.
    $("programme").muted = mine ? true : $("sound").getAttribute("aria-pressed") !== "true";
  }
  if (mine) {
    publisher.setEnabled(true);
    publisher.start();
  } else if (queued && s.phase === "open") {
    if (!readying) { readying = true; publisher.setEnabled(false); publisher.start(); }
    return;
  } else if (publisher.wanted) {
    publisher.stop();
  }
  readying = false;
}

// --- check-in ------------------------------------------------------------------------
$("checkin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const location = new FormData(ev.target).get("location");
  act(client, { command: "check_in", deputy: me, location }, $("checkin-button"));
});
$("checkout").addEventListener("click", (ev) => act(client, { command: "check_out", deputy: me }, ev.currentTarget));

// --- requests to speak -----------------------------------------------------------------
$("ask").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-kind]");
  if (b) act(client, { command: "request_floor", kind: b.dataset.kind }, b);
});
$("withdraw").addEventListener("click", (ev) => {
  const r = client.state.queue.find((id) => client.state.requests[id]?.deputy === me);
  if (r != null) act(client, { command: "withdraw_request", request: r }, ev.currentTarget);
});
$("yield").addEventListener("click", (ev) => act(client, { command: "yield_floor" }, ev.currentTarget));

// --- voting ----------------------------------------------------------------------------
// What the server recorded for me, per vote: from the ack, never from the click.
const recorded = new Map();
$("vote-panel").addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-choice]");
  const v = openVote(client.state);
  if (!b || !v) return;
  const choice = b.dataset.choice;
  text("vote-recorded", t(v.step_up ? "confirming" : "sending"));
  const buttons = [...document.querySelectorAll("#vote-panel button[data-choice]")];
  buttons.forEach((x) => { x.disabled = true; });
  try {
    await sendCommand(client, { command: "cast_ballot", vote: v.id, choice });
    recorded.set(v.id, choice);
  } catch (e) {
    notice(errorText(e.code), "error");
  } finally {
    buttons.forEach((x) => { x.disabled = false; });
    render(client.state);
  }
});

function renderVote(s) {
  const v = openVote(s);
  const panel = $("vote-panel");
  if (!v) { panel.hidden = true; return; }
  const wasHidden = panel.hidden;
  panel.hidden = false;
  text("vote-question", v.question);
  text("vote-method", t(`method_${v.method}`));
  text("vote-secret", v.method === "secret" ? t("secretNote") : "");
  text("vote-stepup", v.step_up ? t("stepUpNote") : "");
  const present = me in s.present;
  const named = v.ballots[me];
  const mine = named ? named.choice : recorded.get(v.id);
  const tookPart = v.participants.includes(me);
  const final = tookPart && (v.method === "secret" || !v.allow_change);
  for (const b of panel.querySelectorAll("button[data-choice]")) {
    b.setAttribute("aria-pressed", String(mine === b.dataset.choice));
    b.disabled = !present || final;
  }
  let msg = "";
  if (mine) msg = `${t("recorded")}: ${t(`choice_${mine}`)}. ${final ? t("ballotFinal") : t("changeAllowed")}`;
  else if (tookPart) msg = `${t("recorded")}. ${t("ballotFinal")}`;
  else if (!present) msg = errorText("not_present");
  text("vote-recorded", msg);
  if (wasHidden) panel.querySelector("button[data-choice]:not(:disabled)")?.focus();
}

// --- documents -------------------------------------------------------------------------
const readable = (doc) => doc.access.level !== "restricted" || (doc.access.roles || []).includes("deputy");
function myDocs(s) {
  return Object.entries(s.documents)
    .filter(([, d]) => readable(d) && (s.current_item == null || d.item === s.current_item))
    .map(([id, d]) => ({ id: Number(id), ...d }));
}
function docBadge(d) {
  const acks = d.acks[me] || {};
  const readVersions = Object.entries(acks).filter(([, a]) => a === "read").map(([v]) => Number(v));
  if (!readVersions.length) return "isNew";
  return Math.max(...readVersions) < d.versions.length ? "changed" : null;
}
const received = new Set();
function acknowledgeReceived(s) {
  if (!(me in s.present)) return;
  for (const d of myDocs(s)) {
    const v = d.versions.length;
    const key = `${d.id}:${v}`;
    if (received.has(key) || (d.acks[me] || {})[v]) continue;
    received.add(key);
    client.command({ command: "acknowledge_document", document: d.id, version: v, ack: "received" }).catch(() => {});
  }
}
// The document open in the page (its id), shown again after every change and in the other
// language.
let opened = null;
function renderViewer(s) {
  const view = $("doc-view");
  const d = opened == null ? null : s.documents[opened];
  view.hidden = !d;
  if (!d) return;
  const fmt = new Intl.NumberFormat(currentLang() === "vi" ? "vi-VN" : "en-GB");
  const latest = d.versions.length;
  const v = d.versions[latest - 1];
  // Every version stays readable; the older ones say they were replaced.
  const versions = d.versions.map((x, i) => ({ ...x, n: i + 1 })).reverse();
  fill(view,
    h("h3", {}, v.title),
    h("p", { class: "muted" }, `${t("version")} ${latest} · ${v.media_type} · ${fmt.format(v.size)} B`),
    h("p", { class: "muted hash" }, `SHA-256 ${v.sha256}`),
    h("ul", { class: "versions" }, versions.map((x) => h("li", { dataset: { version: x.n } },
      h("span", {}, `${t("version")} ${x.n}: ${x.title}`, " ",
        x.n < latest ? h("span", { class: "badge muted-badge" }, t("docSuperseded")) : null),
      h("button", {
        type: "button", class: "secondary open-file",
        "aria-label": `${t("openFile")}: ${x.title} (${t("version")} ${x.n})`,
        onclick: () => openFile(opened, x.n),
      }, t("openFile"))))));
}
/// Opens a version's file in the browser's own viewer; the latest one counts as read.
async function openFile(id, version) {
  const ok = await openDocument(client.auth, client.sitting, id, version);
  if (!ok) { notice(t("openFailed"), "error"); return; }
  const d = client.state.documents[id];
  if (d && version === d.versions.length && (d.acks[me] || {})[version] !== "read") {
    client.command({ command: "acknowledge_document", document: id, version, ack: "read" })
      .catch((e) => notice(errorText(e.code), "error"));
  }
}
function openDoc(d) {
  opened = d.id;
  renderViewer(client.state);
  openFile(d.id, d.versions.length);
}
function renderDocs(s) {
  const docs = myDocs(s);
  let fresh = 0;
  fill("documents", docs.length ? docs.map((d) => {
    const badge = docBadge(d);
    if (badge) fresh += 1;
    const v = d.versions[d.versions.length - 1];
    return h("li", { dataset: { document: d.id } },
      h("span", {}, v.title, " ", h("span", { class: "muted" }, `(${t("version")} ${d.versions.length})`),
        badge ? h("span", { class: "badge" }, t(badge)) : null),
      h("button", { type: "button", class: "secondary", onclick: () => openDoc(d) }, t("open")));
  }) : h("li", { class: "muted" }, t("noDocuments")));
  const b = $("docs-badge");
  b.hidden = fresh === 0;
  b.textContent = fresh ? String(fresh) : "";
}

// --- the whole page ------------------------------------------------------------------
function renderSpeaker(s) {
  if (!s.floor) { fill("speaker", h("p", { class: "muted" }, t("nobody"))); return; }
  const w = who(client, s.floor.deputy);
  fill("speaker",
    h("p", {}, h("span", { class: "muted" }, `${t("speaker")}: `), h("span", { class: "name", id: "speaker-name" }, w.name)),
    h("p", { class: "muted" }, `${w.delegation} · ${t(`kind_${s.floor.kind}`)}`),
    h("p", {}, h("span", { class: "muted" }, `${t("remaining")} `), h("span", { id: "speaker-timer", class: "timer", role: "timer" }, clock(s.floor.deadline - client.now()))));
}

function render(s) {
  text("phase-note", s.phase === "open" ? "" : `${t(`phase_${s.phase}`)}${s.phase === "scheduled" ? ` — ${t("waitOpen")}` : ""}`);
  const present = me in s.present;
  $("checkin").hidden = present;
  $("checked").hidden = !present;
  text("my-location", present ? t(`loc_${s.locations[me] || "site"}`) : "");
  renderVote(s);
  renderSpeaker(s);
  $("my-floor").hidden = !(s.floor && s.floor.deputy === me);
  followFloor(s);
  const q = queueOf(s);
  const mine = q.find((r) => r.deputy === me);
  text("my-place", mine ? `${t("yourPlace")}: ${mine.position} / ${q.length}` : "");
  $("withdraw").hidden = !mine;
  for (const b of document.querySelectorAll("#ask button")) b.disabled = !present || !!mine || s.phase !== "open";
  fill("queue", q.length ? q.map((r) => {
    const w = who(client, r.deputy);
    return h("li", { class: r.deputy === me ? "mine" : "" },
      h("span", {}, `${r.position}. ${w.name}`, h("span", { class: "muted" }, ` · ${w.delegation}`)),
      h("span", { class: "pill" }, t(`kind_${r.kind}`)));
  }) : h("li", { class: "muted" }, t("queueEmpty")));
  fill("agenda", s.agenda.map((i) => h("li", { class: i.id === s.current_item ? "current" : "", "aria-current": i.id === s.current_item ? "step" : null }, i.title)));
  renderDocs(s);
  renderViewer(s);
  acknowledgeReceived(s);
}

// --- my passkey ------------------------------------------------------------------------
mountSearchCard($("search-card"), client, notice);
const passkeyCard = mountPasskeyCard($("passkey-card"), client.auth, notice);

client.on("state", render);
onLang(() => { render(client.state); passkeyCard(); });
every(250, () => {
  const s = client.state;
  if (s.floor) {
    const left = s.floor.deadline - client.now();
    const el = $("speaker-timer");
    if (el) { el.textContent = clock(left); el.classList.toggle("low", left < 30000); }
  }
  const v = openVote(s);
  if (v) text("vote-timer", clock(v.deadline - client.now()));
});
