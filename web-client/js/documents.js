// Documents as files, for every page that handles them: uploading one (with its progress) to
// the sitting, and opening a version in the browser's own viewer through a short-lived link
// (the viewer cannot send the tab's token). The server checks the type, the size and who may
// read; this module only carries the bytes and the answers.

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
