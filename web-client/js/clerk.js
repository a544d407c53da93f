// The clerk station (thư ký): keeps the record. A summary of the sitting (phase, attendance,
// quorum, current item); the roll call of every vote (each deputy's ballot for a named vote,
// only the counts for a secret one) with the result; ballots and check-ins recorded on a
// deputy's behalf (a ballot confirmed with the clerk's own passkey when the vote asks for one);
// documents published and new versions of them; attendance by delegation; the minutes
// exported (PDF, HTML, JSON, CSV); the list of sittings and a new one created (sittings.js).
// Every refusal from the server is shown as a sentence (act/notice); nothing here decides a
// procedure rule: the page sends what the clerk asks and shows what the server recorded.
import { t, onLang, addStrings, currentLang, errorText } from "./i18n.js";
import { h, fill, text, notice, act, who, boot, every, clock, percent } from "./ui.js";
import { sortedKeys } from "./state.js";
import { mountPasskeyCard } from "./passkey.js";
import { uploadFile, openDocument, mountSearchCard } from "./documents.js";
import { mountSittingsCard } from "./sittings.js";

addStrings({
  vi: {
    overview: "Tổng quan phiên họp", phaseLabel: "Giai đoạn", presentOfMembers: "Có mặt / tổng số đại biểu",
    quorumNeed: "Cần có mặt ({rule} tổng số)", openVoteLabel: "Biểu quyết đang mở",
    chooseVote: "Chọn lần biểu quyết (mới nhất trước)", noVotes: "Chưa có lần biểu quyết nào.",
    status_open: "Đang mở", status_closed: "Đã kết thúc", status_voided: "Đã hủy",
    openedAt: "Mở lúc", rerunOf: "Biểu quyết lại thay cho lần",
    rowNo: "STT", deputyCol: "Đại biểu", choiceCol: "Phương án", behalfCol: "Thư ký ghi thay", changesCol: "Số lần đổi phiếu",
    noBallots: "Chưa có phiếu nào.", presentNotVoted: "Có mặt nhưng chưa biểu quyết",
    presentAtClose: "Có mặt khi kết thúc", notVotedAtClose: "Có mặt khi kết thúc nhưng không biểu quyết",
    everyoneVoted: "Mọi đại biểu có mặt đã biểu quyết.",
    secretCountsLater: "Số phiếu của từng phương án chỉ được công bố khi kết thúc.",
    notPresent: "Vắng mặt", behalfOnlyNamed: "Phiếu kín không thể ghi thay.",
    reasonExample: "Ví dụ: thiết bị của đại biểu bị lỗi", ballotRecorded: "Đã ghi phiếu thay đại biểu.",
    notOnRoster: "Không có mã này trong danh sách đại biểu.",
    cloc_hall: "Hội trường", cloc_site: "Điểm cầu của đoàn", cloc_remote: "Trực tuyến từ xa", cloc_unsaid: "Chưa rõ nơi tham dự",
    checkinNote: "Điểm danh không có ô lý do: hệ thống ghi là do bạn (thư ký) điểm danh thay đại biểu.",
    clerkCheckOut: "Ghi rời phiên họp", checkedInOk: "Đã điểm danh thay đại biểu.", checkedOutOk: "Đã ghi đại biểu rời phiên họp.",
    selfCheckIn: "tự điểm danh", byClerk: "Thư ký điểm danh thay", byClerkName: "do {name} điểm danh thay",
    pickFile: "Chọn tệp (tải lên ngay; loại tệp, dung lượng và mã băm do máy chủ xác định)",
    uploading: "Đang tải tệp lên…", uploaded: "Đã tải lên: loại tệp, dung lượng và mã băm do máy chủ xác định.",
    uploadFailed: "Không tải được tệp lên; xin thử lại.",
    upload_too_large: "Tệp lớn hơn giới hạn cho phép.",
    upload_unsupported_type: "Loại tệp không được chấp nhận (chỉ PDF, DOCX, ODT, XLSX, văn bản thuần, PNG, JPEG).",
    upload_empty: "Tệp rỗng.", upload_not_permitted: "Chỉ thư ký của phiên họp được tải tài liệu lên.",
    chooseFileFirst: "Xin chọn tệp và chờ tải lên xong.", openDoc: "Mở",
    readerRoles: "Vai trò được xem", published: "Đã đăng tài liệu.", versionPublished: "Đã đăng phiên bản mới.",
    acksCol: "Đã nhận / đã đọc", filterLabel: "Tìm đoàn hoặc đại biểu", noMatch: "Không tìm thấy.",
    unknownDelegation: "Không thuộc đoàn", pageTitle: "dienhong — thư ký",
    minutesTitle: "Biên bản", minutesHelp: "Biên bản được lập từ nhật ký của phiên họp, kèm các điểm kiểm tra đã ký.",
    minutesPdf: "Biên bản (PDF)", minutesHtml: "Trang biên bản (HTML)", minutesJson: "Dữ liệu (JSON)", csvAttendance: "Điểm danh (CSV)",
    csvSpeeches: "Phát biểu (CSV)", csvRollCall: "Biểu quyết (CSV)",
  },
  en: {
    overview: "Sitting overview", phaseLabel: "Phase", presentOfMembers: "Present / all deputies",
    quorumNeed: "Needed present ({rule} of all deputies)", openVoteLabel: "Open vote",
    chooseVote: "Choose a vote (newest first)", noVotes: "No votes yet.",
    status_open: "Open", status_closed: "Closed", status_voided: "Voided",
    openedAt: "Opened at", rerunOf: "Re-run of vote",
    rowNo: "No.", deputyCol: "Deputy", choiceCol: "Choice", behalfCol: "Recorded by a clerk", changesCol: "Changes",
    noBallots: "No ballots yet.", presentNotVoted: "Present but not voted",
    presentAtClose: "Present at the close", notVotedAtClose: "Present at the close but did not vote",
    everyoneVoted: "Every deputy present has voted.",
    secretCountsLater: "The counts per choice are known only when the vote closes.",
    notPresent: "Absent", behalfOnlyNamed: "A secret ballot cannot be recorded on a deputy's behalf.",
    reasonExample: "e.g. the deputy's device failed", ballotRecorded: "The ballot is recorded.",
    notOnRoster: "No deputy has this code.",
    cloc_hall: "Hall", cloc_site: "Delegation site", cloc_remote: "Remote", cloc_unsaid: "Place not given",
    checkinNote: "A check-in has no reason field: it is recorded as made by you, the clerk, on the deputy's behalf.",
    clerkCheckOut: "Check out", checkedInOk: "The deputy is checked in.", checkedOutOk: "The deputy is checked out.",
    selfCheckIn: "checked in themself", byClerk: "Checked in by a clerk", byClerkName: "checked in by {name}",
    pickFile: "Pick a file (uploaded at once; the server finds its type, size and hash)",
    uploading: "Uploading the file…", uploaded: "Uploaded: the type, size and hash are what the server found.",
    uploadFailed: "The file could not be uploaded; please try again.",
    upload_too_large: "The file is larger than the limit.",
    upload_unsupported_type: "This type of file is not accepted (only PDF, DOCX, ODT, XLSX, plain text, PNG, JPEG).",
    upload_empty: "The file is empty.", upload_not_permitted: "Only a clerk of the sitting may upload documents.",
    chooseFileFirst: "Please choose a file and wait for its upload.", openDoc: "Open",
    readerRoles: "Roles who may read it", published: "Document published.", versionPublished: "New version published.",
    acksCol: "Received / read", filterLabel: "Find a delegation or deputy", noMatch: "Nothing found.",
    unknownDelegation: "No delegation", pageTitle: "dienhong — clerk station",
    minutesTitle: "Minutes", minutesHelp: "Made from the sitting's log, with its signed checkpoints.",
    minutesPdf: "Minutes (PDF)", minutesHtml: "Minutes page (HTML)", minutesJson: "Data (JSON)", csvAttendance: "Attendance (CSV)",
    csvSpeeches: "Speeches (CSV)", csvRollCall: "Roll calls (CSV)",
  },
});

const client = await boot("clerkTitle");
const $ = (id) => document.getElementById(id);
const CHOICES = ["yes", "no", "abstain"];
const field = (form, name) => form.elements.namedItem(name);
const code = (value) => String(value || "").trim().toUpperCase();

// --- the roster's deputies (fixed for a sitting) --------------------------------------------
let rosterSeen = null;
let deputies = []; // actors with the deputy role, by code
let deputyIds = new Set();
function roster() {
  if (rosterSeen !== client.roster) {
    rosterSeen = client.roster;
    deputies = Object.values(client.roster.actors || {})
      .filter((a) => (a.roles || []).includes("deputy"))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    deputyIds = new Set(deputies.map((a) => a.id));
    buildAttendance();
    fillAllDeputies();
  }
  return deputies;
}
const members = () => roster().length;
// Only deputies check in (the server refuses anyone else), so the present are deputies.
const presentDeputies = (s) => Object.keys(s.present);
/// What attendance looks like, as one string: parts that show it redraw when it changes.
let presenceSig = "";
const presence = (s) => Object.keys(s.present).sort().map((id) => `${id}=${s.present[id] || ""}@${s.locations[id] || ""}`).join(",");

/// Basis points of `part` in `whole`, rounded half up as the server does (sitting/vote.rs).
function basisPoints(part, whole) {
  return whole ? Math.floor((part * 20000 + whole) / (whole * 2)) : 0;
}

function fmtTime(ms) {
  try {
    return new Date(ms).toLocaleTimeString(currentLang() === "vi" ? "vi-VN" : "en-GB");
  } catch (_) {
    return new Date(ms).toISOString().slice(11, 19);
  }
}

function itemTitle(s, id) {
  const at = s.agenda.findIndex((i) => i.id === id);
  return at < 0 ? null : `${at + 1}. ${s.agenda[at].title}`;
}

// Keys of what was last drawn, so a part is rebuilt only when what it shows changed (a
// 500-ballot vote brings hundreds of events a second).
const drawn = {};
function changed(part, key) {
  if (drawn[part] === key) return false;
  drawn[part] = key;
  return true;
}

// --- summary -------------------------------------------------------------------------------
function quorumOf(s, present, total) {
  const q = s.rules && s.rules.quorum;
  if (!q || !q.denominator) return null;
  const need = q.strict
    ? Math.floor((total * q.numerator) / q.denominator) + 1
    : Math.ceil((total * q.numerator) / q.denominator);
  const lhs = present * q.denominator;
  const rhs = total * q.numerator;
  return { need, met: q.strict ? lhs > rhs : lhs >= rhs, rule: `${q.strict ? ">" : "≥"} ${q.numerator}/${q.denominator}` };
}

function renderSummary(s) {
  const total = members();
  const present = presentDeputies(s).length;
  text("sitting-title", s.title || "");
  text("sum-phase", t(`phase_${s.phase}`));
  $("sum-phase").dataset.phase = s.phase;
  text("sum-present", `${present} / ${total}`);
  const q = quorumOf(s, present, total);
  text("sum-quorum", q ? `${q.need}` : t("none"));
  text("sum-quorum-rule", q ? t("quorumNeed").replace("{rule}", q.rule) : t("quorum"));
  const met = $("sum-quorum-met");
  met.textContent = q ? t(q.met ? "quorum" : "noQuorum") : "";
  met.className = q ? (q.met ? "ok" : "no") : "";
  met.dataset.met = q ? String(q.met) : "";
  text("sum-vote", s.open_vote != null ? `#${s.open_vote}` : t("none"));
  text("sum-item", s.current_item != null ? itemTitle(s, s.current_item) || `#${s.current_item}` : t("noItem"));
}

// --- the roll call ---------------------------------------------------------------------------
let selected = null; // the vote shown
let lastOpen = null;
const voteIds = (s) => Object.keys(s.votes).map(Number).sort((a, b) => b - a);

function renderVoteSelect(s) {
  const ids = voteIds(s);
  // A vote that opens is shown at once; otherwise the clerk's choice stays.
  if (s.open_vote != null && s.open_vote !== lastOpen) selected = s.open_vote;
  lastOpen = s.open_vote;
  if (selected == null || !(selected in s.votes)) selected = ids.length ? ids[0] : null;
  const sel = $("roll-vote");
  const key = currentLang() + ids.map((id) => `${id}:${s.votes[id].status.status}`).join(",");
  if (changed("select", key)) {
    sel.replaceChildren(...(ids.length
      ? ids.map((id) => {
        const v = s.votes[id];
        const open = v.status.status === "open";
        return h("option", { value: String(id), dataset: { status: v.status.status } },
          `${open ? "● " : ""}#${id} · ${t(`status_${v.status.status}`)} · ${v.question}`);
      })
      : [h("option", { value: "" }, t("noVotes"))]));
  }
  sel.disabled = !ids.length;
  sel.value = selected == null ? "" : String(selected);
}
$("roll-vote").addEventListener("change", (ev) => {
  selected = ev.target.value ? Number(ev.target.value) : null;
  rollAt = 0;
  render();
});

function bars(tally, bps) {
  return h("div", { class: "bars" }, CHOICES.map((c) => {
    const fillEl = h("div", { class: `fill ${c}` });
    fillEl.style.width = `${Math.min(100, bps[c] / 100)}%`;
    return h("div", { class: "bar", dataset: { choice: c } },
      h("span", {}, t(`choice_${c}`)),
      h("div", { class: "track", "aria-hidden": "true" }, fillEl),
      h("span", { class: "num" }, h("b", {}, String(tally[c])), ` · ${percent(bps[c])}`));
  }));
}

function renderRollHead(s, id, v) {
  const status = v.status.status;
  const item = v.item != null ? itemTitle(s, v.item) : null;
  fill("roll-head",
    h("h3", { id: "roll-question" }, `#${id} · ${v.question}`),
    h("p", { class: "row" },
      h("span", { class: `pill status-${status}`, id: "roll-status", dataset: { status } }, t(`status_${status}`)),
      h("span", { class: "pill" }, t(`method_${v.method}`)),
      v.rule ? h("span", { class: "pill" }, t(`rule_${v.rule}`)) : null),
    h("p", { class: "muted small" },
      item ? `${t("item")}: ${item} · ` : "",
      v.opened_at ? `${t("openedAt")} ${fmtTime(v.opened_at)}` : "",
      v.rerun_of != null ? ` · ${t("rerunOf")} #${v.rerun_of}` : "",
      status === "open" ? h("span", {}, ` · ${t("timeLeft")} `, h("b", { id: "roll-timer", role: "timer" }, clock(v.deadline - client.now()))) : null),
    status === "voided" ? h("p", { class: "no", id: "roll-voided" }, `${t("voided")}${v.status.reason ? ` — ${t("reason")}: ${v.status.reason}` : ""}`) : null,
    v.method === "secret" ? h("p", { class: "muted", id: "roll-secret-note" }, t("countsOnly")) : null);
}

function renderRollResult(s, v) {
  const result = v.status.result;
  if (result) {
    const bps = { yes: result.yes_bp_of_members, no: result.no_bp_of_members, abstain: result.abstain_bp_of_members };
    fill("roll-result",
      h("h3", {}, t("result")),
      bars(result.tally, bps),
      h("p", { id: "roll-participants" }, `${t("participants")}: `,
        h("b", {}, `${result.participants} / ${result.members}`), ` (${percent(result.participants_bp_of_members)} ${t("ofMembers")})`,
        ` · ${t("presentAtClose")}: `, h("b", {}, String(result.present))),
      h("p", { class: "muted small" }, `${t("rule")}: ${t(`rule_${result.rule}`)}`),
      h("p", { id: "roll-verdict", class: `verdict ${result.passed ? "ok" : "no"}`, dataset: { passed: String(result.passed) } },
        t(result.passed ? "passed" : "failed"),
        v.status.status === "voided" ? ` (${t("voided")})` : ""));
    return;
  }
  if (v.status.status !== "open") { fill("roll-result"); return; }
  const total = members();
  const took = v.participants.length;
  const present = presentDeputies(s).length;
  const tookLine = h("p", { id: "roll-participants" }, `${t("participants")}: `,
    h("b", {}, `${took} / ${total}`), ` (${percent(basisPoints(took, total))} ${t("ofMembers")})`,
    ` · ${t("present")}: `, h("b", {}, String(present)));
  if (v.tally) {
    const bps = Object.fromEntries(CHOICES.map((c) => [c, basisPoints(v.tally[c], total)]));
    fill("roll-result", h("h3", {}, t("liveTally")), bars(v.tally, bps), tookLine);
  } else {
    fill("roll-result", h("h3", {}, t("liveTally")), tookLine, h("p", { class: "muted" }, t("secretCountsLater")));
  }
}

function ballotRow(d, b, i) {
  const w = who(client, d);
  let behalf = t("none");
  if (b.on_behalf) {
    const clerk = client.actor(b.on_behalf.clerk);
    behalf = h("span", {}, h("span", { class: "clerk-name" }, clerk.name && clerk.name !== clerk.id ? `${clerk.name} (${clerk.id})` : clerk.id),
      h("br"), h("span", { class: "muted" }, `${t("reason")}: ${b.on_behalf.reason}`));
  }
  const data = { deputy: d, choice: b.choice, changes: String(b.changes) };
  if (b.on_behalf) data.behalf = b.on_behalf.clerk;
  return h("tr", { dataset: data, class: b.on_behalf ? "behalf" : null },
    h("td", { class: "num" }, String(i + 1)),
    h("td", {}, w.name, h("br"), h("span", { class: "muted small" }, d)),
    h("td", {}, w.delegation),
    h("td", { class: `choice-${b.choice}` }, t(`choice_${b.choice}`)),
    h("td", {}, behalf),
    h("td", { class: "num" }, String(b.changes)));
}

function renderMissing(s, v) {
  const status = v.status.status;
  if (status === "open") {
    const voted = new Set(v.participants);
    const missing = presentDeputies(s).filter((d) => !voted.has(d)).sort();
    const heading = h("h3", {}, `${t("presentNotVoted")}: `, h("b", { id: "not-voted-count" }, String(missing.length)));
    if (v.method === "secret") { fill("roll-missing", heading); return; }
    fill("roll-missing", heading, missing.length
      ? h("div", { class: "table-wrap names-wrap", tabindex: "0", role: "region", "aria-label": t("presentNotVoted") },
        h("ul", { class: "names", id: "not-voted" }, missing.map((d) => {
          const w = who(client, d);
          return h("li", { dataset: { deputy: d } }, w.name, " ", h("span", { class: "muted small" }, d));
        })))
      : h("p", { class: "ok" }, t("everyoneVoted")));
    return;
  }
  const r = v.status.result;
  if (r) {
    fill("roll-missing", h("p", {}, `${t("notVotedAtClose")}: `, h("b", { id: "not-voted-count" }, String(Math.max(0, r.present - r.participants)))));
  } else {
    fill("roll-missing");
  }
}

function renderRoll(s) {
  renderVoteSelect(s);
  const id = selected;
  const v = id == null ? null : s.votes[id];
  const wrap = $("roll-wrap");
  const tbody = $("roll-call").tBodies[0];
  if (!v) {
    if (changed("roll", `none|${currentLang()}`)) {
      fill("roll-head", h("p", { class: "muted" }, t("noVotes")));
      fill("roll-result");
      fill("roll-missing");
      tbody.replaceChildren();
      wrap.hidden = true;
    }
    return;
  }
  const changes = Object.values(v.ballots).reduce((n, b) => n + b.changes, 0);
  const key = [currentLang(), id, v.status.status, v.participants.length, changes,
    Object.keys(v.ballots).length, presenceSig, s.agenda.length].join("|");
  if (!changed("roll", key)) return;
  renderRollHead(s, id, v);
  renderRollResult(s, v);
  $("roll-call").dataset.vote = String(id);
  $("roll-call").dataset.method = v.method;
  text("roll-caption", `${t("rollCall")} #${id}`);
  if (v.method === "named") {
    const ids = sortedKeys(v.ballots);
    tbody.replaceChildren(...(ids.length
      ? ids.map((d, i) => ballotRow(d, v.ballots[d], i))
      : [h("tr", {}, h("td", { colspan: "6", class: "muted" }, t("noBallots")))]));
    wrap.hidden = false;
  } else {
    // A secret vote: no link between a deputy and a choice is ever shown.
    tbody.replaceChildren();
    wrap.hidden = true;
  }
  renderMissing(s, v);
}

// A 500-ballot vote brings hundreds of ballots a second: the roll call (hundreds of rows) is
// redrawn at most every ROLL_EVERY_MS, and once more after the last change.
const ROLL_EVERY_MS = 400;
let rollAt = 0;
let rollTimer = null;
function renderRollSoon(s) {
  const wait = rollAt + ROLL_EVERY_MS - performance.now();
  if (wait <= 0) {
    rollAt = performance.now();
    renderRoll(s);
  } else if (!rollTimer) {
    rollTimer = setTimeout(() => {
      rollTimer = null;
      rollAt = performance.now();
      renderRoll(client.state);
    }, wait);
  }
}

// --- deputies in the forms -------------------------------------------------------------------
function deputyOption(a) {
  const d = a.delegation ? client.delegationName(a.delegation) : "";
  return h("option", { value: a.id, label: `${a.name}${d ? ` · ${d}` : ""}` });
}
function fillAllDeputies() {
  fill("all-deputies", deputies.map(deputyOption));
}
function renderPresentList(s) {
  const ids = presentDeputies(s).sort();
  if (changed("presentList", ids.join(","))) fill("present-deputies", ids.map((id) => deputyOption(client.actor(id))));
}

/// One line about the deputy typed into a form: who it is, present or not, and for the
/// ballot form what they chose in the open vote.
function deputyHint(s, value, vote) {
  const id = code(value);
  if (!id) return "";
  if (!deputyIds.has(id)) return t("notOnRoster");
  const w = who(client, id);
  const parts = [`${w.name} · ${w.delegation}`];
  if (id in s.present) {
    const loc = s.locations[id];
    parts.push(`${t("present")} (${t(loc ? `cloc_${loc}` : "cloc_unsaid")})`);
  } else {
    parts.push(t("notPresent"));
  }
  if (vote && vote.ballots && vote.ballots[id]) parts.push(`${t("voted")}: ${t(`choice_${vote.ballots[id].choice}`)}`);
  else if (vote && vote.participants.includes(id)) parts.push(t("voted"));
  return parts.join(" · ");
}

// Runs a command from a form's button: the button stays disabled while it waits; a refusal
// is shown by act() as a sentence, a success as `okKey`. Resolves true when acknowledged.
async function run(command, button, okKey) {
  button.dataset.busy = "1";
  button.disabled = true;
  let ack = null;
  try {
    ack = await act(client, command, null);
  } finally {
    delete button.dataset.busy;
    button.disabled = false;
    render();
  }
  if (ack && okKey) notice(t(okKey));
  return !!ack;
}

// --- ballot on a deputy's behalf --------------------------------------------------------------
const behalf = $("behalf-form");
function renderBehalf(s) {
  const id = s.open_vote;
  const v = id != null ? s.votes[id] : null;
  const named = !!v && v.method === "named";
  text("behalf-vote", v
    ? `${t("openVoteLabel")}: #${id} · ${v.question}${named ? (v.step_up ? ` — ${t("stepUpClerk")}` : "") : ` — ${t("behalfOnlyNamed")}`}`
    : t("noVote"));
  $("behalf-vote").className = `hint${v && !named ? " no" : ""}`;
  const button = $("behalf-submit");
  if (!button.dataset.busy) button.disabled = !named;
  text("behalf-who", deputyHint(s, field(behalf, "deputy").value, v));
}
field(behalf, "deputy").addEventListener("input", () => renderBehalf(client.state));
behalf.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const s = client.state;
  if (s.open_vote == null) return;
  const ok = await run({
    command: "record_ballot",
    vote: s.open_vote,
    deputy: code(field(behalf, "deputy").value),
    choice: field(behalf, "choice").value,
    reason: field(behalf, "reason").value.trim(),
  }, $("behalf-submit"), "ballotRecorded");
  if (ok) {
    field(behalf, "deputy").value = "";
    field(behalf, "reason").value = "";
    renderBehalf(client.state);
    field(behalf, "deputy").focus();
  }
});

// --- check-in and check-out on a deputy's behalf ---------------------------------------------
const checkin = $("checkin-form");
function renderCheckin(s) {
  text("checkin-who", deputyHint(s, field(checkin, "deputy").value, null));
}
field(checkin, "deputy").addEventListener("input", () => renderCheckin(client.state));
checkin.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const ok = await run({
    command: "check_in",
    deputy: code(field(checkin, "deputy").value),
    location: field(checkin, "location").value,
  }, $("checkin-submit"), "checkedInOk");
  if (ok) renderCheckin(client.state);
});
$("checkout-button").addEventListener("click", async (ev) => {
  const ok = await run({ command: "check_out", deputy: code(field(checkin, "deputy").value) }, ev.currentTarget, "checkedOutOk");
  if (ok) renderCheckin(client.state);
});

// --- documents -----------------------------------------------------------------------------
/// Uploads a picked file at once, with its progress, and fills the form from what the server
/// found: its real type, size and hash (the clerk cannot type them). Publishing waits for it.
function uploader(form, noteId, progressId) {
  let token = 0;
  const bar = $(progressId);
  const submit = form.querySelector("[type=submit]");
  field(form, "file").addEventListener("change", async (ev) => {
    const file = ev.target.files && ev.target.files[0];
    const mine = ++token;
    for (const name of ["media_type", "size", "sha256", "file_name"]) field(form, name).value = "";
    if (!file) { text(noteId, ""); bar.hidden = true; return; }
    if (!field(form, "title").value || form.dataset.titleFromFile === "1") {
      field(form, "title").value = file.name.replace(/\.[^.]+$/, "") || file.name;
      form.dataset.titleFromFile = "1";
    }
    field(form, "file_name").value = file.name;
    bar.value = 0;
    bar.hidden = false;
    submit.disabled = true;
    form.dataset.uploading = "1";
    text(noteId, t("uploading"));
    try {
      const up = await uploadFile(client.auth, client.sitting, file, (f) => { if (mine === token) bar.value = f; });
      if (mine !== token) return;
      field(form, "media_type").value = up.media_type;
      field(form, "size").value = String(up.size);
      field(form, "sha256").value = up.sha256;
      bar.value = 1;
      text(noteId, t("uploaded"));
    } catch (e) {
      if (mine !== token) return;
      bar.hidden = true;
      field(form, "file_name").value = "";
      text(noteId, t(`upload_${e.code}`) === `upload_${e.code}` ? t("uploadFailed") : t(`upload_${e.code}`));
    } finally {
      if (mine === token) {
        delete form.dataset.uploading;
        submit.disabled = false;
      }
    }
  });
  field(form, "title").addEventListener("input", () => { delete form.dataset.titleFromFile; });
}

function documentFields(form) {
  const size = Number(String(field(form, "size").value).trim());
  return {
    title: field(form, "title").value.trim(),
    media_type: field(form, "media_type").value.trim(),
    size: Number.isFinite(size) ? size : 0,
    sha256: field(form, "sha256").value.trim().toLowerCase(),
    ...(field(form, "file_name").value ? { file_name: field(form, "file_name").value } : {}),
  };
}

function resetDocumentForm(form, noteId) {
  for (const name of ["file", "title", "media_type", "size", "sha256", "file_name"]) field(form, name).value = "";
  delete form.dataset.titleFromFile;
  form.querySelector("progress").hidden = true;
  text(noteId, "");
}

const publish = $("publish-form");
let itemChosen = false; // the clerk picked an item: it is no longer the current one by default
uploader(publish, "publish-file-note", "publish-progress");
field(publish, "item").addEventListener("change", () => { itemChosen = true; });
field(publish, "access").addEventListener("change", () => {
  $("publish-roles").hidden = field(publish, "access").value !== "restricted";
});
/// A document is published only from an uploaded file.
function uploadedOrSay(form) {
  if (field(form, "sha256").value && !form.dataset.uploading) return true;
  notice(t("chooseFileFirst"), "error");
  return false;
}

publish.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!uploadedOrSay(publish)) return;
  const level = field(publish, "access").value;
  const access = level === "restricted"
    ? { level, roles: [...publish.querySelectorAll("input[name=roles]:checked")].map((i) => i.value) }
    : { level };
  const item = field(publish, "item").value;
  const ok = await run({
    command: "publish_document",
    item: item === "" ? 0 : Number(item),
    ...documentFields(publish),
    access,
  }, $("publish-submit"), "published");
  if (ok) resetDocumentForm(publish, "publish-file-note");
});

function renderItems(s) {
  const sel = field(publish, "item");
  const key = currentLang() + s.agenda.map((i) => `${i.id}:${i.title}`).join("\n");
  if (changed("items", key)) {
    const keep = sel.value;
    sel.replaceChildren(...(s.agenda.length
      ? s.agenda.map((i, at) => h("option", { value: String(i.id) }, `${at + 1}. ${i.title}`))
      : [h("option", { value: "" }, t("noItem"))]));
    if (keep && s.agenda.some((i) => String(i.id) === keep)) sel.value = keep;
  }
  if (!itemChosen && s.current_item != null) sel.value = String(s.current_item);
}

const supersede = $("supersede-form");
uploader(supersede, "supersede-file-note", "supersede-progress");
field(supersede, "document").addEventListener("change", () => {
  const d = client.state.documents[field(supersede, "document").value];
  if (d && !field(supersede, "title").value) field(supersede, "title").value = d.versions[d.versions.length - 1].title;
});
supersede.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!uploadedOrSay(supersede)) return;
  const doc = field(supersede, "document").value;
  const ok = await run({
    command: "supersede_document",
    document: doc === "" ? 0 : Number(doc),
    ...documentFields(supersede),
  }, $("supersede-submit"), "versionPublished");
  if (ok) resetDocumentForm(supersede, "supersede-file-note");
});

const latest = (d) => d.versions[d.versions.length - 1];
function accessText(a) {
  if (a.level !== "restricted") return t(`access_${a.level}`);
  return `${t("access_restricted")}: ${(a.roles || []).map((r) => t(`role_${r}`)).join(", ")}`;
}
function ackCounts(d) {
  const v = String(d.versions.length);
  let received = 0;
  let read = 0;
  for (const acks of Object.values(d.acks || {})) {
    const a = acks[v];
    if (a) received += 1;
    if (a === "read") read += 1;
  }
  return `${received} / ${read}`;
}

function renderDocs(s) {
  const ids = Object.keys(s.documents).map(Number).sort((a, b) => a - b);
  const sel = field(supersede, "document");
  const selKey = currentLang() + ids.map((id) => `${id}:${s.documents[id].versions.length}:${latest(s.documents[id]).title}`).join("\n");
  if (changed("docSelect", selKey)) {
    const keep = sel.value;
    sel.replaceChildren(...(ids.length
      ? ids.map((id) => {
        const d = s.documents[id];
        return h("option", { value: String(id) }, `#${id} · ${latest(d).title} (${t("version")} ${d.versions.length})`);
      })
      : [h("option", { value: "" }, t("noDocuments"))]));
    if (keep && ids.includes(Number(keep))) sel.value = keep;
  }
  sel.disabled = !ids.length;
  const button = $("supersede-submit");
  if (!button.dataset.busy) button.disabled = !ids.length;

  const acks = ids.map((id) => ackCounts(s.documents[id])).join(",");
  if (!changed("docs", `${selKey}|${acks}|${s.agenda.map((i) => i.id).join(",")}`)) return;
  if (!ids.length) { fill("documents", h("p", { class: "muted" }, t("noDocuments"))); return; }
  fill("documents", h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "docs-title" },
    h("table", { id: "documents-table" },
      h("thead", {}, h("tr", {},
        ["#", t("item"), t("title"), t("version"), t("mediaType"), t("size"), t("access"), t("acksCol")]
          .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ids.map((id) => {
        const d = s.documents[id];
        const v = latest(d);
        return h("tr", { dataset: { document: String(id) } },
          h("td", { class: "num" }, String(id)),
          h("td", {}, itemTitle(s, d.item) || `#${d.item}`),
          h("td", {}, v.title, " ",
            h("button", {
              type: "button", class: "secondary small open-doc", "aria-label": `${t("openDoc")}: ${v.title}`,
              onclick: async () => { if (!await openDocument(client.auth, client.sitting, id, d.versions.length)) notice(t("openFailed"), "error"); },
            }, t("openDoc")),
            h("br"), h("span", { class: "muted small mono hash", title: v.sha256 }, v.sha256.slice(0, 16) + "…")),
          h("td", { class: "num" }, String(d.versions.length)),
          h("td", {}, v.media_type),
          h("td", { class: "num" }, v.size.toLocaleString(currentLang() === "vi" ? "vi-VN" : "en-GB")),
          h("td", {}, accessText(d.access)),
          h("td", { class: "num" }, ackCounts(d)));
      })))));
}

// --- attendance by delegation ------------------------------------------------------------------
const groups = []; // {code, name, ids, details, count, list}
function buildAttendance() {
  const byCode = new Map();
  for (const a of deputies) {
    const c = a.delegation && client.roster.delegations[a.delegation] ? a.delegation : "";
    if (!byCode.has(c)) byCode.set(c, []);
    byCode.get(c).push(a.id);
  }
  groups.length = 0;
  const codes = [...byCode.keys()].sort((a, b) => (a === "" ? 1 : b === "" ? -1 : a < b ? -1 : a > b ? 1 : 0));
  for (const c of codes) {
    const count = h("span", { class: "dcount" });
    const name = h("span", { class: "dname" });
    const list = h("ul", { class: "plain deps" });
    const details = h("details", { class: "delegation", dataset: { delegation: c } },
      h("summary", {}, name, " ", count), list);
    groups.push({ code: c, ids: byCode.get(c), details, name, count, list });
  }
  fill("delegations", groups.map((g) => g.details));
  delete drawn.attendance;
}

function deputyItem(s, id) {
  const a = client.actor(id);
  const here = id in s.present;
  const by = here ? s.present[id] : null;
  const loc = s.locations[id];
  const data = { deputy: id, present: String(here) };
  if (here) data.location = loc || "";
  if (by) data.byClerk = by;
  return h("li", { dataset: data },
    h("span", { class: "dep" }, a.name || id, " ", h("span", { class: "muted small" }, id)),
    h("span", { class: "dep-state" },
      h("span", { class: `pill ${here ? "here" : "away"}` }, here ? t("present") : t("notPresent")),
      here ? h("span", { class: "muted small" }, ` ${t(loc ? `cloc_${loc}` : "cloc_unsaid")}`) : null,
      here ? h("span", { class: "muted small" }, ` · ${by ? t("byClerkName").replace("{name}", client.actor(by).name || by) : t("selfCheckIn")}`) : null));
}

function renderAttendance(s) {
  roster();
  if (!changed("attendance", `${currentLang()}|${presenceSig}`)) return;
  const counts = { hall: 0, site: 0, remote: 0, unsaid: 0 };
  let byClerk = 0;
  let present = 0;
  for (const g of groups) {
    let here = 0;
    for (const id of g.ids) {
      if (id in s.present) {
        here += 1;
        counts[s.locations[id] || "unsaid"] += 1;
        if (s.present[id]) byClerk += 1;
      }
    }
    present += here;
    g.name.textContent = g.code ? client.delegationName(g.code) : t("unknownDelegation");
    g.count.textContent = `${here} / ${g.ids.length}`;
    g.details.dataset.present = String(here);
    g.details.dataset.members = String(g.ids.length);
    g.details.classList.toggle("full", here === g.ids.length);
    g.details.classList.toggle("empty", here === 0);
    g.list.replaceChildren(...g.ids.map((id) => deputyItem(s, id)));
  }
  text("attendance-totals", [
    `${t("present")}: ${present} / ${deputies.length}`,
    ...["hall", "site", "remote", "unsaid"].filter((k) => counts[k]).map((k) => `${t(`cloc_${k}`)}: ${counts[k]}`),
    byClerk ? `${t("byClerk")}: ${byClerk}` : null,
  ].filter(Boolean).join(" · "));
  applyFilter();
}

const fold = (x) => String(x || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
function applyFilter() {
  const q = fold($("attendance-filter").value.trim());
  let shown = 0;
  for (const g of groups) {
    const whole = !q || fold(g.name.textContent).includes(q) || fold(g.code) === q;
    let any = whole;
    for (const li of g.list.children) {
      const id = li.dataset.deputy;
      const match = whole || fold(id).includes(q) || fold(client.actor(id).name).includes(q);
      li.hidden = !match;
      any = any || match;
    }
    g.details.hidden = !any;
    if (q && any && !whole) g.details.open = true;
    if (any) shown += 1;
  }
  let none = $("attendance-none");
  if (!none) {
    none = h("p", { id: "attendance-none", class: "muted" });
    $("delegations").after(none);
  }
  none.hidden = shown > 0;
  none.textContent = t("noMatch");
}
$("attendance-filter").addEventListener("input", applyFilter);

// --- the whole page -----------------------------------------------------------------------------
function render() {
  const s = client.state;
  roster();
  presenceSig = presence(s);
  renderSummary(s);
  renderRollSoon(s);
  renderPresentList(s);
  renderBehalf(s);
  renderCheckin(s);
  renderItems(s);
  renderDocs(s);
  renderAttendance(s);
}

client.on("state", render);
// --- the minutes ------------------------------------------------------------------------------
// Made by the server from the log; fetched with the clerk's token and saved as a file.
$("minutes-export").addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-format]");
  if (!b) return;
  const q = new URLSearchParams({ format: b.dataset.format, lang: currentLang() });
  if (b.dataset.table) q.set("table", b.dataset.table);
  b.disabled = true;
  try {
    const r = await fetch(`/api/sittings/${encodeURIComponent(client.sitting)}/minutes?${q}`, {
      headers: { authorization: `Bearer ${client.auth.token}` },
    });
    if (!r.ok) {
      let code = "unavailable";
      try { code = (await r.json()).code || code; } catch (_) { /* not JSON */ }
      notice(errorText(code), "error");
      return;
    }
    const name = /filename="([^"]+)"/.exec(r.headers.get("content-disposition") || "");
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: name ? name[1] : "minutes" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (_) {
    notice(errorText("unavailable"), "error");
  } finally {
    b.disabled = false;
  }
});

// The clerk's own passkey, for entries on a deputy's behalf in votes that ask for one.
mountSearchCard($("search-card"), client, notice);
const passkeyCard = mountPasskeyCard($("passkey-card"), client.auth, notice);
onLang(() => passkeyCard());
// Every sitting, and a new one created from a roster and an agenda.
const sittingsCard = mountSittingsCard($("sittings-card"), client.auth, client.sitting, notice);
onLang(() => sittingsCard());
onLang(() => {
  document.title = t("pageTitle");
  rollAt = 0;
  render();
});
document.title = t("pageTitle");
render();
every(1000, () => {
  const v = selected != null ? client.state.votes[selected] : null;
  if (v && v.status.status === "open") text("roll-timer", clock(v.deadline - client.now()));
});
