// The chair console: the sitting's phase, attendance and quorum by delegation, the agenda,
// the queue (reordered by drag or keyboard), the floor and its timer, votes (open, close,
// void, run again, live tally, result), and the grid of the chamber and the 63 sites with
// a picture and a sound level from each, with a mute per site.
import { t, onLang, errorText } from "./i18n.js";
import { h, fill, text, clock, percent, notice, act, who, boot, every } from "./ui.js";
import { queueOf, openVote, latestVote, membersOf, quorumMet, budgetsLeft } from "./state.js";
import { Console } from "./media.js";

const client = await boot("chairTitle");
const $ = (id) => document.getElementById(id);
const members = membersOf(client.roster);
const presides = (s) => s.phase === "open";

// --- the sitting -----------------------------------------------------------------------
$("open-sitting").addEventListener("click", (ev) => act(client, { command: "open_sitting" }, ev.currentTarget));
$("resume-sitting").addEventListener("click", (ev) => act(client, { command: "resume_sitting" }, ev.currentTarget));
$("suspend-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const reason = new FormData(ev.target).get("reason");
  if (await act(client, { command: "suspend_sitting", reason }, ev.submitter)) ev.target.reset();
});
// Closing cannot be undone: the chair confirms it in a dialog (Escape or "cancel" keeps
// the sitting open).
$("close-sitting").addEventListener("click", () => $("confirm-close").showModal());
$("confirm-close").addEventListener("close", () => {
  if ($("confirm-close").returnValue === "close") act(client, { command: "close_sitting" }, $("close-sitting"));
  $("confirm-close").returnValue = "";
});

// --- the floor -------------------------------------------------------------------------
$("extend").addEventListener("click", (ev) => {
  const secs = Number($("extend-secs").value);
  act(client, { command: "extend_floor", secs }, ev.currentTarget);
});
$("revoke").addEventListener("click", (ev) => act(client, { command: "revoke_floor" }, ev.currentTarget));
$("give-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const deputy = String(f.get("deputy")).trim().toUpperCase();
  if (await act(client, { command: "give_floor", deputy, kind: f.get("kind") }, ev.submitter)) ev.target.reset();
});

// --- the queue: grant, remove, move by buttons, by Alt+arrows, or by dragging ---------------
function moveRequest(request, by) {
  const order = [...client.state.queue];
  const i = order.indexOf(request);
  const j = i + by;
  if (i < 0 || j < 0 || j >= order.length) return;
  [order[i], order[j]] = [order[j], order[i]];
  reorder(order, request);
}
async function reorder(order, focus) {
  if (await act(client, { command: "reorder_queue", order })) {
    requestAnimationFrame(() => document.querySelector(`#queue li[data-request="${focus}"]`)?.focus());
  }
}
$("queue").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b) return;
  const request = Number(b.closest("li").dataset.request);
  if (b.dataset.action === "grant") act(client, { command: "grant_floor", request }, b);
  if (b.dataset.action === "remove") act(client, { command: "withdraw_request", request }, b);
  if (b.dataset.action === "up") moveRequest(request, -1);
  if (b.dataset.action === "down") moveRequest(request, 1);
});
$("queue").addEventListener("keydown", (ev) => {
  const li = ev.target.closest("li[data-request]");
  if (!li || ev.target !== li) return;
  const request = Number(li.dataset.request);
  if (ev.altKey && ev.key === "ArrowUp") { ev.preventDefault(); moveRequest(request, -1); }
  if (ev.altKey && ev.key === "ArrowDown") { ev.preventDefault(); moveRequest(request, 1); }
  if (!ev.altKey && ev.key === "ArrowUp") { ev.preventDefault(); li.previousElementSibling?.focus(); }
  if (!ev.altKey && ev.key === "ArrowDown") { ev.preventDefault(); li.nextElementSibling?.focus(); }
  if (ev.key === "Enter") {
    ev.preventDefault();
    // The request leaves the queue: the focus goes where the chair will want it next.
    act(client, { command: "grant_floor", request }).then((ok) => {
      if (ok) requestAnimationFrame(() => $("revoke").focus());
    });
  }
});
let dragged = null;
$("queue").addEventListener("dragstart", (ev) => {
  const li = ev.target.closest("li[data-request]");
  if (!li) return;
  dragged = Number(li.dataset.request);
  ev.dataTransfer.effectAllowed = "move";
  ev.dataTransfer.setData("text/plain", String(dragged));
});
$("queue").addEventListener("dragover", (ev) => { if (dragged != null) ev.preventDefault(); });
$("queue").addEventListener("drop", (ev) => {
  ev.preventDefault();
  const target = ev.target.closest("li[data-request]");
  if (dragged == null || !target) return;
  const order = client.state.queue.filter((r) => r !== dragged);
  order.splice(order.indexOf(Number(target.dataset.request)), 0, dragged);
  reorder(order, dragged);
  dragged = null;
});

// --- votes -----------------------------------------------------------------------------
$("vote-form").elements.method.addEventListener("change", (ev) => {
  const box = $("vote-form").elements.allow_change;
  box.disabled = ev.target.value === "secret";
  if (box.disabled) box.checked = false;
});
$("vote-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  const rerun = f.rerun_of.value ? Number(f.rerun_of.value) : null;
  const ok = await act(client, {
    command: "open_vote",
    question: f.question.value.trim(),
    method: f.method.value,
    rule: f.rule.value,
    window_secs: Number(f.window.value) || null,
    allow_change: f.method.value === "secret" ? false : f.allow_change.checked,
    rerun_of: rerun,
    step_up: f.step_up.checked,
  }, ev.submitter);
  if (ok) { ev.target.reset(); f.rerun_of.value = ""; stepUpDefault(client.state, true); }
});
// The passkey box starts at the rules' default, once the rules are known.
let stepUpSet = false;
function stepUpDefault(s, again) {
  if ((stepUpSet && !again) || !s.rules) return;
  stepUpSet = true;
  $("vote-form").elements.step_up.checked = !!s.rules.step_up_ballots;
}
client.on("state", (s) => stepUpDefault(s, false));
$("vote-live").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b) return;
  const vote = Number(b.dataset.vote);
  if (b.dataset.action === "close") act(client, { command: "close_vote", vote }, b);
  if (b.dataset.action === "void") {
    const reason = $("void-reason").value.trim();
    if (!reason) { $("void-reason").focus(); notice(t("voidReason"), "error"); return; }
    act(client, { command: "void_vote", vote, reason }, b);
  }
  if (b.dataset.action === "rerun") {
    const f = $("vote-form").elements;
    const v = client.state.votes[vote];
    f.question.value = v.question;
    f.method.value = v.method;
    f.rule.value = v.rule;
    f.rerun_of.value = String(vote);
    f.question.focus();
  }
});

/// A bar's filled part; its width set from script (no inline style attribute in the markup).
function barFill(choice, bp) {
  const el = h("span", { class: `fill ${choice}` });
  el.style.width = `${bp / 100}%`;
  return el;
}

function resultBars(r) {
  const bar = (choice, count, bp) => h("div", { class: "bar" },
    h("span", {}, t(`choice_${choice}`)),
    h("span", { class: "track" }, barFill(choice, bp)),
    h("span", { id: `result-${choice}` }, `${count} · ${percent(bp)}`));
  return h("div", { class: "bars" },
    bar("yes", r.tally.yes, r.yes_bp_of_members),
    bar("no", r.tally.no, r.no_bp_of_members),
    bar("abstain", r.tally.abstain, r.abstain_bp_of_members));
}

function renderVote(s) {
  const open = openVote(s);
  $("vote-form").hidden = !!open || s.phase !== "open";
  const v = open || latestVote(s);
  if (!v) { fill("vote-live", h("p", { class: "muted" }, t("noVote"))); return; }
  const present = Object.keys(s.present).length;
  const parts = [
    h("p", { class: "big", id: "vote-question" }, v.question),
    h("p", { class: "muted" }, `${t(`method_${v.method}`)} · ${t(`rule_${v.rule}`)}`),
  ];
  if (v.status.status === "open") {
    parts.push(
      h("p", {}, `${t("timeLeft")} `, h("span", { class: "timer", id: "vote-timer", role: "timer" }, clock(v.deadline - client.now()))),
      h("p", { id: "vote-count" }, `${v.participants.length} / ${present} ${t("votesCounted")}`),
      v.tally ? h("p", { id: "live-tally" }, `${t("liveTally")}: ${t("choice_yes")} ${v.tally.yes} · ${t("choice_no")} ${v.tally.no} · ${t("choice_abstain")} ${v.tally.abstain}`)
        : h("p", { class: "muted" }, t("secretNote")),
      h("button", { type: "button", "data-action": "close", "data-vote": v.id, id: "close-vote" }, t("closeVote")));
  } else {
    const r = v.status.result;
    if (r) {
      parts.push(
        h("p", { class: `verdict ${r.passed ? "ok" : "no"}`, id: "verdict", "data-passed": String(r.passed) }, r.passed ? t("passed") : t("failed")),
        resultBars(r),
        h("p", { class: "muted" }, `${t("participants")}: ${r.participants} / ${r.members} (${percent(r.participants_bp_of_members)} ${t("ofMembers")})`));
    }
    if (v.status.status === "voided") {
      parts.push(h("p", { class: "no" }, `${t("voided")}: ${v.status.reason}`),
        h("button", { type: "button", "data-action": "rerun", "data-vote": v.id, id: "rerun-vote" }, t("rerun")));
    }
  }
  if (v.status.status !== "voided") {
    parts.push(h("div", { class: "row" },
      h("label", { class: "tight" }, h("span", {}, t("voidReason")), h("input", { id: "void-reason", maxlength: "200" })),
      h("button", { type: "button", class: "secondary", "data-action": "void", "data-vote": v.id, id: "void-vote" }, t("voidVote"))));
  }
  // Keep a reason being typed across re-renders.
  const typed = $("void-reason")?.value;
  const focused = document.activeElement?.id;
  fill("vote-live", parts);
  if (typed && $("void-reason")) $("void-reason").value = typed;
  if (focused && $(focused) && focused !== "vote-live") $(focused).focus();
}

// --- the agenda ----------------------------------------------------------------------------
$("next-item").addEventListener("click", (ev) => {
  const s = client.state;
  const i = s.agenda.findIndex((x) => x.id === s.current_item);
  const next = s.agenda[i + 1];
  if (next) act(client, { command: "set_current_item", item: next.id }, ev.currentTarget);
});
$("agenda").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-item]");
  if (b) act(client, { command: "set_current_item", item: Number(b.dataset.item) }, b);
});

// --- the sites: a picture and a sound level from each, mute on the console --------------------
const tiles = new Map(); // participant → {el, video, level}
const muted = new Set();
const participantOf = new Map(); // delegation code → the site operator's account
for (const a of Object.values(client.roster.actors)) {
  if (a.roles.includes("site_operator") && a.delegation && !participantOf.has(a.delegation)) participantOf.set(a.delegation, a.id);
}
function tile(participant, label) {
  if (tiles.has(participant)) return tiles.get(participant);
  const video = h("video", { autoplay: true, playsinline: true, muted: true });
  video.muted = true;
  const level = h("i");
  const mute = h("button", { type: "button", class: "secondary", "data-participant": participant, "aria-pressed": "false" }, t("mute"));
  const el = h("div", { class: "site", dataset: { participant } }, video, h("div", { class: "level", role: "presentation" }, level), h("div", { class: "site-name" }, label), mute);
  $("sites").append(el);
  const entry = { el, video, level, mute };
  tiles.set(participant, entry);
  return entry;
}
// The chamber first, then the delegations by their statistics-office code.
const delegations = Object.values(client.roster.delegations)
  .sort((a, b) => (b.kind === "chamber") - (a.kind === "chamber") || a.code.localeCompare(b.code));
for (const d of delegations) {
  const p = participantOf.get(d.code);
  if (p) tile(p, d.name);
}
$("sites").addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-participant]");
  if (!b) return;
  const participant = b.dataset.participant;
  const next = !muted.has(participant);
  try {
    await client.mediaRequest({ type: "media_mute", participant, muted: next });
    if (next) muted.add(participant); else muted.delete(participant);
    b.setAttribute("aria-pressed", String(next));
    b.textContent = next ? t("unmute") : t("mute");
  } catch (e) {
    notice(errorText(e.code), "error");
  }
});
client.on("media", (msg) => {
  if (msg.type !== "media_levels") return;
  const heard = new Map(msg.levels.map((l) => [l.participant, l]));
  for (const [p, tl] of tiles) {
    const l = heard.get(p);
    tl.level.style.width = l ? `${Math.round(((127 - l.dbov) / 127) * 100)}%` : "0";
  }
});
const mediaConsole = new Console(client, (participant, stream) => {
  const a = client.actor(participant);
  const tl = tile(participant, a.name || participant);
  tl.video.srcObject = stream;
});
mediaConsole.start().catch(() => mediaConsole.restart());
// The mute buttons' words follow the language (only when it changes: the page renders often).
onLang(() => {
  for (const [p, tl] of tiles) tl.mute.textContent = muted.has(p) ? t("unmute") : t("mute");
});
function renderSites(s) {
  const speaker = s.floor && s.floor.deputy;
  const speakerSite = speaker && (s.locations[speaker] || "site") === "site" ? participantOf.get(client.actor(speaker).delegation) : null;
  for (const [p, tl] of tiles) tl.el.classList.toggle("speaking", p === speaker || p === speakerSite);
}

// --- the whole page --------------------------------------------------------------------------
function render(s) {
  text("sitting-title", s.title);
  text("phase", t(`phase_${s.phase}`));
  const present = Object.keys(s.present).length;
  text("present-count", present);
  text("members-count", members);
  const q = quorumMet(s, members);
  // The rules need a quorum to open a vote unless they say otherwise (absent: needed).
  const needs = !s.rules || s.rules.vote_needs_quorum !== false;
  text("vote-quorum", needs && !q ? t("voteNeedsQuorum") : "");
  text("quorum-mark", q ? "✔" : "✘");
  $("quorum-mark").className = q ? "ok" : "no";
  text("quorum-text", q ? t("quorum") : t("noQuorum"));
  text("queue-count", s.queue.length);
  $("open-sitting").hidden = s.phase !== "scheduled";
  $("resume-sitting").hidden = s.phase !== "suspended";
  $("suspend-form").hidden = s.phase !== "open";
  $("close-sitting").hidden = !(s.phase === "open" || s.phase === "suspended");

  if (s.floor) {
    const w = who(client, s.floor.deputy);
    fill("speaker",
      h("p", { class: "big", id: "speaker-name" }, w.name),
      h("p", { class: "muted" }, `${w.delegation} · ${t(`kind_${s.floor.kind}`)}`),
      h("p", { class: "timer", id: "speaker-timer", role: "timer" }, clock(s.floor.deadline - client.now())));
  } else {
    fill("speaker", h("p", { class: "muted" }, t("nobody")));
  }
  $("floor-controls").hidden = !s.floor;
  $("give-form").hidden = !presides(s);

  const focusedRequest = document.activeElement?.closest?.("#queue li")?.dataset.request;
  const items = queueOf(s);
  text("queue-help", items.length ? "Alt + ↑/↓" : "");
  fill("queue", items.length ? items.map((r) => {
    const w = who(client, r.deputy);
    return h("li", { tabindex: "0", draggable: "true", dataset: { request: r.id }, "aria-label": `${r.position}. ${w.name}, ${t(`kind_${r.kind}`)}` },
      h("span", {}, `${r.position}. ${w.name}`, h("span", { class: "muted" }, ` · ${w.delegation}`), " ", h("span", { class: "pill" }, t(`kind_${r.kind}`))),
      h("span", { class: "row" },
        h("button", { type: "button", "data-action": "grant" }, t("grant")),
        h("button", { type: "button", class: "secondary", "data-action": "up", "aria-label": `${t("moveUp")} ${w.name}`, disabled: r.position === 1 }, "↑"),
        h("button", { type: "button", class: "secondary", "data-action": "down", "aria-label": `${t("moveDown")} ${w.name}`, disabled: r.position === items.length }, "↓"),
        h("button", { type: "button", class: "secondary", "data-action": "remove", "aria-label": `${t("remove")} ${w.name}` }, "✕")));
  }) : h("li", { class: "muted" }, t("queueEmpty")));
  if (focusedRequest) document.querySelector(`#queue li[data-request="${focusedRequest}"]`)?.focus();

  renderBudgets(s);
  renderVote(s);

  fill("agenda", s.agenda.map((i) => h("li", { class: i.id === s.current_item ? "current" : "", "aria-current": i.id === s.current_item ? "step" : null },
    h("span", {}, i.title),
    i.id === s.current_item ? null : h("button", { type: "button", class: "secondary", "data-item": i.id }, t("setCurrent")))));
  const idx = s.agenda.findIndex((x) => x.id === s.current_item);
  $("next-item").disabled = idx >= s.agenda.length - 1;

  renderAttendance(s);
  renderSites(s);
}

// Each delegation's speaking time left on the item, when the rules cap it: those who spoke,
// hold the floor or wait in the queue, the least left first.
function renderBudgets(s) {
  const left = budgetsLeft(s, client.roster, client.now());
  const codes = Object.keys(left).sort((a, b) => left[a] - left[b] || a.localeCompare(b));
  $("budgets").hidden = !(s.rules && s.rules.delegation_budget_secs);
  fill("budget-list", codes.length ? codes.map((code) => h("li", { dataset: { delegation: code }, class: left[code] <= 0 ? "no" : null },
    h("span", {}, client.delegationName(code)), " ",
    h("b", { class: "mono" }, left[code] > 0 ? clock(left[code]) : t("budgetUsed")))) : h("li", { class: "muted" }, t("budgetsNone")));
}

// Attendance changes far less often than ballots arrive: the table of delegations and the
// list of 500 present deputies are rebuilt only when who is present changed.
let attendanceShown = null;
function renderAttendance(s) {
  const present = Object.keys(s.present).sort();
  const key = present.join(",");
  if (key === attendanceShown) return;
  attendanceShown = key;
  const byDelegation = new Map();
  for (const a of Object.values(client.roster.actors)) {
    if (!a.roles.includes("deputy") || !a.delegation) continue;
    const e = byDelegation.get(a.delegation) || { present: 0, members: 0 };
    e.members += 1;
    if (a.id in s.present) e.present += 1;
    byDelegation.set(a.delegation, e);
  }
  fill($("attendance").tBodies[0], [...byDelegation.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([code, e]) =>
    h("tr", { dataset: { delegation: code } }, h("td", {}, client.delegationName(code)), h("td", {}, String(e.present)), h("td", {}, String(e.members)))));
  fill("present-deputies", present.map((id) => h("option", { value: id }, client.actor(id).name)));
}

client.on("state", render);
onLang(() => render(client.state));
every(250, () => {
  const s = client.state;
  if (s.floor && $("speaker-timer")) {
    const left = s.floor.deadline - client.now();
    $("speaker-timer").textContent = clock(left);
    $("speaker-timer").classList.toggle("low", left < 30000);
  }
  if (s.floor && s.rules && s.rules.delegation_budget_secs) renderBudgets(s);
  const v = openVote(s);
  if (v && $("vote-timer")) $("vote-timer").textContent = clock(v.deadline - client.now());
});
