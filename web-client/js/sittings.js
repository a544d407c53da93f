// The sittings card of the clerk station: every sitting (past, in session, scheduled) with a
// link to follow it here, and a form that creates a new one from the same roster file (TSV)
// and agenda as `dienhong create-sitting`. The server starts it at once.
import { t, addStrings, errorText } from "./i18n.js";
import { h, fill } from "./ui.js";

addStrings({
  vi: {
    sittingsTitle: "Các phiên họp", sittingsHelp: "Phiên họp mới bắt đầu ngay, không cần khởi động lại máy chủ. Tài khoản mới đặt mật khẩu bằng lệnh dienhong passwd.",
    followHere: "Theo dõi tại đây", following: "Đang theo dõi", newSitting: "Tạo phiên họp mới",
    sittingId: "Mã phiên họp (chữ không dấu, số, - hoặc _)", sittingTitle: "Tên phiên họp",
    rosterFile: "Danh sách (tệp TSV: mã, họ tên, đoàn, vai trò)", agendaLines: "Chương trình (mỗi dòng một nội dung)",
    createSitting: "Tạo phiên họp", sittingCreated: "Đã tạo phiên họp {id}.", chooseRoster: "Xin chọn tệp danh sách.",
    creating: "Đang tạo…",
  },
  en: {
    sittingsTitle: "Sittings", sittingsHelp: "A new sitting starts at once, with no server restart. New accounts get their password with dienhong passwd.",
    followHere: "Follow here", following: "Following", newSitting: "New sitting",
    sittingId: "Sitting id (plain letters, digits, - or _)", sittingTitle: "Title",
    rosterFile: "Roster (TSV file: code, name, delegation, roles)", agendaLines: "Agenda (one item per line)",
    createSitting: "Create the sitting", sittingCreated: "Sitting {id} created.", chooseRoster: "Choose the roster file.",
    creating: "Creating…",
  },
});

const ORDER = { open: 0, suspended: 1, scheduled: 2, closed: 3 };

/// Mounts the card in `root` for `auth`'s clerk, following `current`; returns a function that
/// renders it again (after a language change). The list is read again every 10 s; the form
/// is built once per language, so what is being typed is never disturbed.
export function mountSittingsCard(root, auth, current, notice) {
  let list = [];
  const listEl = h("ul", { class: "sittings-list", "aria-live": "polite" });

  const showList = () => {
    const sorted = [...list].sort((a, b) => (ORDER[a.phase] ?? 9) - (ORDER[b.phase] ?? 9));
    fill(listEl, sorted.map((s) => h("li", {},
      h("span", { class: `pill phase phase-${s.phase}` }, t(`phase_${s.phase}`)), " ",
      h("b", {}, s.title), " ", h("span", { class: "muted mono" }, s.sitting), " ",
      s.sitting === current
        ? h("span", { class: "muted" }, `· ${t("following")}`)
        : h("a", { href: `?sitting=${encodeURIComponent(s.sitting)}` }, t("followHere")))));
  };

  const load = async () => {
    try {
      const r = await fetch("/api/sittings", { cache: "no-store" });
      if (r.ok) list = await r.json();
    } catch (_) { /* kept as it was */ }
    showList();
  };

  const submit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const file = f.elements.roster.files[0];
    if (!file) { notice(t("chooseRoster"), "error"); return; }
    const button = f.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = t("creating");
    try {
      const r = await fetch("/api/sittings", {
        method: "POST",
        headers: { authorization: `Bearer ${auth.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          id: f.elements.id.value.trim(), title: f.elements.title.value.trim(),
          roster: await file.text(), agenda: f.elements.agenda.value,
        }),
      });
      let json = null;
      try { json = await r.json(); } catch (_) { /* not JSON */ }
      if (!r.ok) {
        const code = (json && json.code) || "unavailable";
        notice(json && json.message ? `${errorText(code)} ${json.message}` : errorText(code), "error");
        return;
      }
      notice(t("sittingCreated").replace("{id}", json.sitting));
      f.reset();
      await load();
    } catch (_) {
      notice(errorText("unavailable"), "error");
    } finally {
      button.disabled = false;
      button.textContent = t("createSitting");
    }
  };

  const render = () => {
    showList();
    fill(root,
      h("h2", { id: "sittings-title" }, t("sittingsTitle")),
      listEl,
      h("h3", { id: "new-sitting-title" }, t("newSitting")),
      h("p", { class: "hint" }, t("sittingsHelp")),
      h("form", { id: "new-sitting", autocomplete: "off", "aria-labelledby": "new-sitting-title", onsubmit: submit },
        h("label", {}, h("span", {}, t("sittingId")),
          h("input", { name: "id", required: true, maxlength: "64", pattern: "[A-Za-z0-9_\\-]+", spellcheck: "false" })),
        h("label", {}, h("span", {}, t("sittingTitle")),
          h("input", { name: "title", required: true, maxlength: "500" })),
        h("label", {}, h("span", {}, t("rosterFile")),
          h("input", { type: "file", name: "roster", accept: ".tsv,.txt,text/tab-separated-values,text/plain" })),
        h("label", {}, h("span", {}, t("agendaLines")),
          h("textarea", { name: "agenda", rows: "4" })),
        h("button", { type: "submit", id: "new-sitting-submit" }, t("createSitting"))));
  };
  root.setAttribute("aria-labelledby", "sittings-title");
  render();
  load();
  setInterval(load, 10_000);
  return render;
}
