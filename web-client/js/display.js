// The hall display: the big screens of the hall, read from afar. The current agenda item;
// who has the floor, from where, the kind of speech and the time left; the requests to
// speak in order; the programme; a vote as it runs (question, time left, how many of those
// present have voted) and, once closed, its result as counts and percentages of the total
// membership with the verdict, kept on screen until another vote opens or the item changes.
import { t, onLang, addStrings, currentLang } from "./i18n.js";
import { h, fill, text, clock, every } from "./ui.js";
import { queueOf, openVote, latestVote } from "./state.js";
import { Programme } from "./media.js";
import { kioskAuth, bootRetrying, keepMediaAlive, confirmOnline, percentOf } from "./kiosk.js";

addStrings({
  vi: {
    voteResult: "Kết quả biểu quyết", votedOfPresent: "Đã biểu quyết / có mặt",
    moreInQueue: "và {n} đại biểu khác", ofTotal: "tổng số đại biểu",
    threshold: "Ngưỡng thông qua",
  },
  en: {
    voteResult: "Result of the vote", votedOfPresent: "Voted / present",
    moreInQueue: "and {n} more", ofTotal: "of all deputies",
    threshold: "Pass mark",
  },
});

/// How many requests the queue shows (the rest are counted).
const QUEUE_SHOWN = 8;
const $ = (id) => document.getElementById(id);

// For tests and monitoring: what the programme receives.
let programme = null;
window.dienhongMedia = {
  state: () => (programme ? programme.state : "idle"),
  framesDecoded: () => (programme ? programme.frames() : 0),
  stats: async () => (programme && programme.pc ? programme.pc.getStats() : new Map()),
};

const auth = await kioskAuth("displayTitle");
$("screen").hidden = false;

// --- the programme ---------------------------------------------------------------------
// Muted by default: the hall has its own sound.
const video = $("programme");
const showProgramme = () => {
  const s = programme ? programme.state : "idle";
  const el = $("programme-state");
  el.dataset.state = s;
  el.textContent = t(s);
};
programme = new Programme(video, auth, showProgramme);
programme.start();
const showSound = () => {
  text("sound", video.muted ? t("soundOn") : t("soundOff"));
};
$("sound").addEventListener("click", () => {
  video.muted = !video.muted;
  video.play().catch(() => {});
  showSound();
});
showSound();

const client = await bootRetrying("displayTitle", auth);
keepMediaAlive(client, () => [programme]);
confirmOnline(client);

// --- rendering ---------------------------------------------------------------------------
function renderItem(s) {
  const item = s.agenda.find((i) => i.id === s.current_item);
  text("current-item", item ? item.title : t("noItem"));
  $("current-item").classList.toggle("none", !item);
  text("phase", t(`phase_${s.phase}`));
  $("phase").dataset.phase = s.phase;
}

// A new speaker's picture is due at once: if none comes, the programme is pulled again
// after 5 s rather than after the 20 s idle rule.
let lastSpeaker = null;

function renderSpeaker(s) {
  const f = s.floor;
  if (f && f.deputy !== lastSpeaker && programme) programme.expectMedia();
  lastSpeaker = f ? f.deputy : null;
  $("speaker-none").hidden = !!f;
  $("speaker-timer-label").hidden = !f;
  if (!f) {
    text("speaker-name", "");
    text("speaker-meta", "");
    text("speaker-timer", "");
    return;
  }
  const a = client.actor(f.deputy);
  const where = s.locations[f.deputy];
  text("speaker-name", a.name || f.deputy);
  text("speaker-meta", [a.delegation ? client.delegationName(a.delegation) : null, t(`kind_${f.kind}`), where ? t(`where_${where}`) : null]
    .filter(Boolean).join(" · "));
}

function renderQueue(s) {
  const q = queueOf(s);
  text("queue-count", q.length ? `(${q.length})` : "");
  const items = q.slice(0, QUEUE_SHOWN).map((r) => {
    const a = client.actor(r.deputy);
    return h("li", {},
      h("span", { class: "pos", "aria-hidden": "true" }, String(r.position)),
      h("span", { class: "who" },
        h("span", { class: "name" }, a.name || r.deputy),
        h("span", { class: "meta" },
          a.delegation ? h("span", { class: "deleg" }, client.delegationName(a.delegation)) : null,
          h("span", { class: `kind kind-${r.kind}` }, t(`kind_${r.kind}`)))));
  });
  fill("queue", items.length ? items : h("li", { class: "empty" }, t("queueEmpty")));
  fitQueue(q.length);
}

/// On a screen that shows everything at once (no scrolling in the hall), the queue shows
/// as many requests as fit below the programme and counts the rest.
const wide = matchMedia("(min-width: 901px) and (min-height: 560px)");
function fitQueue(total) {
  const list = $("queue");
  const rows = () => list.querySelectorAll("li:not(.more):not(.empty)");
  const over = () => wide.matches
    && list.getBoundingClientRect().bottom + window.scrollY > document.documentElement.clientHeight - 12;
  const count = () => {
    list.querySelector("li.more")?.remove();
    const rest = total - rows().length;
    if (rest > 0 && rest < total) list.append(h("li", { class: "more" }, t("moreInQueue").replace("{n}", String(rest))));
  };
  const panel = list.closest("section");
  panel.hidden = false;
  count();
  while (over() && rows().length > 0) {
    rows()[rows().length - 1].remove();
    count();
  }
  // Not even the heading fits (a result on a small screen): the queue waits its turn.
  panel.hidden = over();
}
window.addEventListener("resize", () => { if (client) renderQueue(client.state); });

function renderVote(s) {
  const v = openVote(s);
  $("vote-panel").hidden = !v;
  if (!v) return;
  const present = Object.keys(s.present).length;
  text("vote-question", v.question);
  text("vote-method", [t(`method_${v.method}`), v.rule ? t(`rule_${v.rule}`) : null].filter(Boolean).join(" · "));
  text("vote-count", `${v.participants.length} / ${present}`);
  $("vote-progress").style.width = `${present ? Math.min(100, (100 * v.participants.length) / present) : 0}%`;
}

/// The last closed vote of the current item, unless another vote is open.
function shownResult(s) {
  if (s.open_vote != null) return null;
  const v = latestVote(s);
  if (!v || v.status.status !== "closed" || v.item !== s.current_item) return null;
  return v;
}

/// Where the pass mark lies, as a percentage of the total membership.
function passMark(r) {
  switch (r.rule) {
    case "majority_of_members": return 50;
    case "two_thirds_of_members": return 200 / 3;
    case "majority_of_present": return r.members ? (50 * r.present) / r.members : 50;
    default: return null;
  }
}

function renderResult(s) {
  const v = shownResult(s);
  $("result-panel").hidden = !v;
  if (!v) return;
  const r = v.status.result;
  const lang = currentLang();
  text("result-question", v.question);
  $("result").dataset.passed = String(!!r.passed);
  text("verdict", r.passed ? t("passed") : t("failed"));
  const mark = passMark(r);
  for (const c of ["yes", "no", "abstain"]) {
    const bp = r[`${c}_bp_of_members`];
    const fillBar = h("i", { class: "fill" });
    fillBar.style.width = `${Math.min(100, bp / 100)}%`;
    const track = h("span", { class: "track", "aria-hidden": "true" }, fillBar);
    if (c === "yes" && mark != null) {
      const m = h("b", { class: "mark", title: t("threshold") });
      m.style.left = `${mark}%`;
      track.append(m);
    }
    fill(`result-${c}`,
      h("span", { class: "choice" }, t(`choice_${c}`)),
      track,
      h("span", { class: "numbers" },
        h("span", { class: "n" }, String(r.tally[c])),
        h("span", { class: "pct" }, percentOf(bp, lang))));
  }
  text("result-turnout", `${t("participants")}: ${r.participants} / ${r.members} ${t("ofTotal")} (${percentOf(r.participants_bp_of_members, lang)})`);
  text("result-rule", r.rule ? `${t("rule")}: ${t(`rule_${r.rule}`)}` : "");
}

function render(s) {
  // While a vote runs or its result is up, the speaker's panel steps back; with nobody
  // speaking and no vote, the programme is what there is to watch.
  const voting = s.open_vote != null || !!shownResult(s);
  $("screen").classList.toggle("voting", voting);
  $("screen").classList.toggle("quiet", !voting && !s.floor);
  renderItem(s);
  renderSpeaker(s);
  renderVote(s);
  renderResult(s);
  tick();
  renderQueue(s); // last: it fits itself into the space the rest leaves
}

function tick() {
  const s = client.state;
  const now = client.now();
  if (s.floor) {
    const left = s.floor.deadline - now;
    const el = $("speaker-timer");
    text("speaker-timer", clock(left));
    el.classList.toggle("low", left < 30000 && left > 0);
    el.classList.toggle("over", left <= 0);
  }
  const v = openVote(s);
  if (v) {
    const left = v.deadline - now;
    text("vote-timer", clock(left));
    $("vote-timer").classList.toggle("low", left < 10000);
  }
  text("wall-clock", new Date(now).toLocaleTimeString(currentLang() === "vi" ? "vi-VN" : "en-GB", { hour: "2-digit", minute: "2-digit" }));
}

client.on("state", render);
onLang(() => { render(client.state); showProgramme(); showSound(); });
render(client.state);
every(250, tick);
