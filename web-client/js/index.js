// The public status page: every sitting from GET /api/sittings, read again every 2 s, with
// its phase, attendance and quorum, the speaker and the requests to speak, the open vote,
// and the agenda; and the ways in: log in, the hall display.
import { t, onLang, addStrings, currentLang } from "./i18n.js";
import { h, fill, mountHeader } from "./ui.js";

addStrings({
  vi: {
    publicHelp: "Đại biểu, chủ tọa, thư ký và điểm cầu đăng nhập để tham gia phiên họp. Màn hình hội trường hiển thị người phát biểu, thời gian và kết quả biểu quyết.",
    publicTitle: "Trạng thái phiên họp", loginLink: "Đăng nhập", noSittings: "Chưa có phiên họp nào.", votesDone: "Lần biểu quyết đã kết thúc",
    openDisplay: "Mở màn hình hội trường của phiên này", updated: "Cập nhật lúc",
  },
  en: {
    publicHelp: "Deputies, the chair, clerks and delegation sites log in to take part. The hall display shows the speaker, the time and the results of votes.",
    publicTitle: "Sitting status", loginLink: "Log in", noSittings: "No sittings yet.", votesDone: "Votes closed",
    openDisplay: "Open this sitting's hall display", updated: "Updated at",
  },
});

mountHeader("appName", null, null);

let list = null;
let failed = false;
let shown = "";

function stat(value, label, cls) {
  return h("div", { class: "stat" }, h("b", { class: cls || null }, value), h("span", {}, label));
}

function sittingCard(s) {
  const headingId = `sitting-${s.sitting}`;
  return h("section", { class: "card sitting", "aria-labelledby": headingId },
    h("h2", { id: headingId }, s.title),
    h("p", {},
      h("span", { class: `pill phase phase-${s.phase}` }, t(`phase_${s.phase}`)),
      " ", h("span", { class: "muted" }, `${t("events")}: ${s.seq}`)),
    h("div", { class: "stat-grid" },
      stat(`${s.present} / ${s.members}`, t("present")),
      stat(s.quorum_met ? "✔" : "✘", s.quorum_met ? t("quorum") : t("noQuorum"), s.quorum_met ? "ok" : "no"),
      stat(String(s.queue_len), t("queue")),
      stat(String(s.votes_closed ?? 0), t("votesDone"))),
    h("p", {}, s.floor
      ? [h("span", { class: "muted" }, `${t("speaker")}: `), h("b", {}, s.floor.name), ` · ${t(`kind_${s.floor.kind}`)}`]
      : h("span", { class: "muted" }, t("nobody"))),
    h("p", {}, s.open_vote
      ? [h("span", { class: "muted" }, `${t("voteOpen")}: `), h("b", {}, s.open_vote.question),
        ` · ${s.open_vote.participants} ${t("votesCounted")}`]
      : h("span", { class: "muted" }, t("noVote"))),
    h("h3", {}, t("agenda")),
    h("ol", { class: "agenda" }, s.agenda.map(([id, title]) => h("li", {
      class: id === s.current_item ? "current" : null,
      "aria-current": id === s.current_item ? "step" : null,
    }, title))),
    h("p", {}, h("a", { href: `/display?sitting=${encodeURIComponent(s.sitting)}` }, t("openDisplay"))));
}

function render() {
  // Rebuilt only when something changed: a link being followed or read keeps its place.
  const key = JSON.stringify([currentLang(), failed, list]);
  if (key === shown) return;
  shown = key;
  const root = document.getElementById("sittings");
  root.setAttribute("aria-busy", "false");
  if (failed && !list) { fill(root, h("p", { class: "no" }, t("error"))); return; }
  fill(root,
    failed ? h("p", { class: "no" }, t("error")) : null,
    list.length ? list.map(sittingCard) : h("p", { class: "muted" }, t("noSittings")));
}

/// The header's connection mark follows the last poll.
function showConn() {
  const el = document.getElementById("conn");
  if (!el || list === null && !failed) return;
  el.dataset.state = failed ? "offline" : "online";
  el.textContent = failed ? t("reconnecting") : t("online");
}

async function refresh() {
  try {
    const r = await fetch("/api/sittings", { cache: "no-store" });
    if (!r.ok) throw new Error(String(r.status));
    list = await r.json();
    failed = false;
  } catch (_) {
    failed = true;
  }
  render();
  showConn();
}

onLang(() => { shown = ""; render(); showConn(); });
refresh();
setInterval(refresh, 2000);
