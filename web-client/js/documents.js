// Documents as files, for every page that handles them: uploading one (with its progress) to
// the sitting, and opening a version in the browser's own viewer through a short-lived link
// (the viewer cannot send the tab's token). The server checks the type, the size and who may
// read; this module only carries the bytes and the answers. Also the search card that the
// deputy app and the clerk station share.
import { t, addStrings, onLang } from "./i18n.js";
import { h, fill } from "./ui.js";

/// Uploads `file` to the sitting as its clerk. `onProgress(fraction)` follows the bytes sent.
/// Resolves to the server's `{sha256, size, media_type}`; rejects with an Error whose `code`
/// is the server's (too_large, unsupported_type, …) or "network".
export function uploadFile(auth, sitting, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/sittings/${encodeURIComponent(sitting)}/uploads`);
    xhr.setRequestHeader("authorization", `Bearer ${auth.token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable && onProgress) onProgress(ev.loaded / ev.total);
    });
    const fail = (code, message) => {
      const e = new Error(message || code);
      e.code = code;
      reject(e);
    };
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status === 201) resolve(body);
      else fail(body.code || `http_${xhr.status}`, body.message);
    });
    xhr.addEventListener("error", () => fail("network"));
    xhr.addEventListener("abort", () => fail("aborted"));
    xhr.send(file);
  });
}

/// The URL that opens version `version` of document `doc` for this reader (a link valid for
/// a while); null when the server refuses.
export async function documentLink(auth, sitting, doc, version) {
  const r = await fetch(
    `/api/sittings/${encodeURIComponent(sitting)}/documents/${doc}/versions/${version}/link`,
    { method: "POST", headers: { authorization: `Bearer ${auth.token}` } },
  );
  if (!r.ok) return null;
  return (await r.json()).url;
}

/// Opens a document version in a new tab (a PDF in the browser's own viewer). The tab is
/// opened at once, inside the click, so that pop-up blockers let it through, then pointed at
/// the link. Resolves to true when it was opened.
export async function openDocument(auth, sitting, doc, version) {
  const tab = window.open("about:blank", "_blank");
  const url = await documentLink(auth, sitting, doc, version);
  if (!url) {
    if (tab) tab.close();
    return false;
  }
  if (tab) {
    tab.opener = null;
    tab.location.href = url;
  } else {
    window.location.assign(url);
  }
  return true;
}

addStrings({
  vi: {
    searchDocs: "Tìm tài liệu", searchWords: "Từ cần tìm (có dấu hay không dấu đều được)",
    searchButton: "Tìm", searchThisSitting: "Chỉ trong phiên họp này", searching: "Đang tìm…",
    searchNone: "Không tìm thấy tài liệu nào.", searchFailed: "Không tìm được; xin thử lại.",
    searchCount: "Tìm thấy {n} tài liệu.", searchOne: "Tìm thấy 1 tài liệu.", docVersion: "Phiên bản", docSuperseded: "Đã được thay thế",
    openFile: "Mở tệp", openFailed: "Không mở được tài liệu.",
  },
  en: {
    searchDocs: "Find documents", searchWords: "Words to find (with or without diacritics)",
    searchButton: "Search", searchThisSitting: "This sitting only", searching: "Searching…",
    searchNone: "No documents found.", searchFailed: "The search failed; please try again.",
    searchCount: "{n} documents found.", searchOne: "1 document found.", docVersion: "Version", docSuperseded: "Superseded",
    openFile: "Open the file", openFailed: "The document could not be opened.",
  },
});

/// Asks the server for documents matching `words` that this reader may read.
export async function searchDocuments(auth, words, sitting) {
  const q = new URLSearchParams({ q: words });
  if (sitting) q.set("sitting", sitting);
  const r = await fetch(`/api/search?${q}`, {
    headers: auth ? { authorization: `Bearer ${auth.token}` } : {},
    cache: "no-store",
  });
  if (!r.ok) throw new Error(`search ${r.status}`);
  return (await r.json()).hits;
}

/// The search card: a box, and the hits with their snippets (matched words marked) and a
/// button that opens each file. Built from text nodes only: nothing from the server is HTML.
export function mountSearchCard(root, client, notice) {
  let hits = null;
  // What to say about the last search, translated when shown (the language may change).
  let status = null;
  const statusText = () => (status == null ? ""
    : status === "searchCount" ? t("searchCount").replace("{n}", String(hits ? hits.length : 0)) : t(status));
  const input = h("input", { type: "search", id: "search-words", name: "q", maxlength: "200", autocomplete: "off", enterkeyhint: "search" });
  const only = h("input", { type: "checkbox", id: "search-sitting", checked: true });
  const render = () => {
    const results = hits == null ? null : h("ol", { class: "plain search-hits", id: "search-hits" }, hits.map((hit) =>
      h("li", { dataset: { document: hit.document, version: hit.version } },
        h("p", { class: "hit-title" },
          h("strong", {}, hit.title), " ",
          h("span", { class: "muted" }, `(${t("docVersion")} ${hit.version})`),
          hit.superseded ? h("span", { class: "badge muted-badge" }, t("docSuperseded")) : null),
        hit.sitting !== client.sitting ? h("p", { class: "muted small" }, hit.sitting) : null,
        hit.snippet.length ? h("p", { class: "snippet" }, hit.snippet.map((p) => (p.hit ? h("mark", {}, p.text) : p.text))) : null,
        h("button", {
          type: "button", class: "secondary small",
          "aria-label": `${t("openFile")}: ${hit.title} (${t("docVersion")} ${hit.version})`,
          onclick: async () => {
            if (!await openDocument(client.auth, hit.sitting, hit.document, hit.version)) notice(t("openFailed"), "error");
          },
        }, t("openFile")))));
    const form = h("form", {
      role: "search", id: "search-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const words = input.value.trim();
        if (!words) return;
        status = "searching";
        render();
        try {
          hits = await searchDocuments(client.auth, words, only.checked ? client.sitting : null);
          status = hits.length === 1 ? "searchOne" : hits.length ? "searchCount" : "searchNone";
        } catch (_) {
          hits = null;
          status = "searchFailed";
        }
        render();
      },
    },
    h("label", { for: "search-words" }, h("span", {}, t("searchWords"))),
    h("div", { class: "row" }, input, h("button", { type: "submit", id: "search-submit" }, t("searchButton"))),
    h("label", { class: "inline" }, only, h("span", {}, t("searchThisSitting"))));
    fill(root,
      h("h2", { id: "search-title" }, t("searchDocs")),
      form,
      h("p", { id: "search-status", role: "status", class: "muted" }, statusText()),
      results);
  };
  render();
  onLang(render);
}
