//! Documents as files, through the real server: uploads of real files made here (a PDF with
//! Vietnamese text, a DOCX, an ODT, a PNG, plain text), published and superseded, read back
//! byte for byte with their headers (ETag, Range, the UTF-8 file name), the access levels
//! checked on every read, and bad input (over the limit, a type not allowed, a broken-off
//! upload, a hash that was never uploaded, a tampered blob) refused with nothing kept.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use support::ws::{Server, start_with};

/// A one-page PDF with this Vietnamese text, in an embedded font (as the minutes are made).
fn pdf(text: &str) -> Vec<u8> {
    dienhong::pdf::render(
        text,
        "vi",
        &[
            dienhong::pdf::Block::Title(text.to_owned()),
            dienhong::pdf::Block::Text("Điều 1. Phạm vi điều chỉnh.".to_owned()),
        ],
        "Trang {page}/{pages}",
    )
    .expect("pdf")
}

/// A ZIP container with these entries (the first stored, as ODT wants its `mimetype`).
fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        for (i, (name, body)) in entries.iter().enumerate() {
            let method = if i == 0 {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            w.start_file(
                *name,
                zip::write::SimpleFileOptions::default().compression_method(method),
            )
            .expect("entry");
            w.write_all(body.as_bytes()).expect("write");
        }
        w.finish().expect("zip");
    }
    out.into_inner()
}

fn docx(text: &str) -> Vec<u8> {
    zip_of(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "word/document.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"#
            ),
        ),
    ])
}

fn odt(text: &str) -> Vec<u8> {
    zip_of(&[
        ("mimetype", "application/vnd.oasis.opendocument.text"),
        (
            "content.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:p>{text}</text:p></office:text></office:body></office:document-content>"#
            ),
        ),
    ])
}

/// A 1×1 red PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49, 0x44, 0x41, 0x54, 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E,
    0x44, 0xAE, 0x42, 0x60, 0x82,
];

struct Http<'a> {
    s: &'a Server,
    http: reqwest::Client,
}

impl<'a> Http<'a> {
    fn new(s: &'a Server) -> Http<'a> {
        Http {
            s,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://{}/api/sittings/{}{path}",
            self.s.addr,
            self.s.sitting()
        )
    }

    async fn upload(&self, token: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/uploads"))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(
        &self,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("get")
    }
}

fn publish(up: &Value, title: &str, file_name: &str, access: Value) -> Value {
    json!({"command": "publish_document", "item": 1, "title": title, "media_type": up["media_type"], "size": up["size"], "sha256": up["sha256"], "file_name": file_name, "access": access})
}

fn blob_files(s: &Server) -> Vec<std::path::PathBuf> {
    files_in(&std::path::PathBuf::from(format!(
        "{}-blobs",
        s.database_url().trim_start_matches("sqlite:")
    )))
}

/// The stored blobs under `dir`: files named by a SHA-256.
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn real_files_go_up_and_come_back_byte_for_byte() {
    let s = start_with(&[]).await;
    let blobs = blob_files(&s);
    assert!(blobs.is_empty());
    let dir = std::path::PathBuf::from(format!(
        "{}-blobs",
        s.database_url().trim_start_matches("sqlite:")
    ));
    round_trip(&s, &dir).await;
    s.stop().await;
}

/// Uploads, publishes, reads back and supersedes real files; `blobs` is where the store keeps
/// the bytes (to count them and to tamper with one).
async fn round_trip(s: &Server, blobs: &std::path::Path) {
    let h = Http::new(s);
    let clerk_token = s.login("CLERK1").await;
    let mut clerk = s.client_speaking("CLERK1", 2).await;

    let the_pdf = pdf("Luật Chuyển đổi số: Điều 1. Phạm vi điều chỉnh");
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("to-trinh.pdf", the_pdf.clone(), "application/pdf"),
        (
            "du-thao.docx",
            docx("Dự thảo Luật Chuyển đổi số"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "bao-cao.odt",
            odt("Báo cáo thẩm tra"),
            "application/vnd.oasis.opendocument.text",
        ),
        ("bieu-do.png", PNG.to_vec(), "image/png"),
        (
            "ghi-chu.txt",
            "Ghi chú: đọc kỹ Điều 5.\n".as_bytes().to_vec(),
            "text/plain",
        ),
    ];
    let mut published = Vec::new();
    for (name, bytes, media_type) in &files {
        let (status, up) = h.upload(&clerk_token, bytes.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {up}");
        assert_eq!(up["media_type"], *media_type, "{name}");
        assert_eq!(up["size"], bytes.len() as u64, "{name}");
        let want = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(bytes))
        };
        assert_eq!(up["sha256"], want, "{name}: the server's own hash");
        let title = format!("Tài liệu {name}");
        let ack = clerk
            .command(publish(&up, &title, name, json!({"level": "public"})))
            .await;
        assert_eq!(ack["type"], "ack", "{name}: {ack}");
        published.push((name.to_string(), bytes.clone(), up));
    }
    // The same bytes again: the same record, stored once.
    let (status, again) = h.upload(&clerk_token, the_pdf.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["sha256"], published[0].2["sha256"]);
    assert_eq!(
        files_in(blobs).len(),
        files.len(),
        "one blob per distinct content"
    );

    let deputy = s.login("DB001").await;
    for (i, (name, bytes, up)) in published.iter().enumerate() {
        let path = format!("/documents/{}/versions/1", i + 1);
        let r = h.get(Some(&deputy), &path, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
        assert_eq!(etag, format!("\"{}\"", up["sha256"].as_str().expect("sha")));
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .expect("cd")
            .to_owned();
        let encoded =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
        assert!(
            disposition.contains(&encoded.replace("%2E", ".").replace("%2D", "-")),
            "{disposition}"
        );
        assert_eq!(r.headers()["accept-ranges"], "bytes");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with(up["media_type"].as_str().expect("mt"))
        );
        assert_eq!(
            r.bytes().await.expect("body").as_ref(),
            &bytes[..],
            "{name}: byte-identical"
        );
        // Asked again with its ETag: not sent again.
        let r = h
            .get(Some(&deputy), &path, &[("if-none-match", &etag)])
            .await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{name}");
    }
    // A range of the PDF, and one past its end.
    let r = h
        .get(
            Some(&deputy),
            "/documents/1/versions/1",
            &[("range", "bytes=0-7")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-7/{}", the_pdf.len()).as_str()
    );
    assert_eq!(r.bytes().await.expect("body").as_ref(), &the_pdf[..8]);
    let r = h
        .get(
            Some(&deputy),
            "/documents/1/versions/1",
            &[("range", &format!("bytes={}-", the_pdf.len()))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // A new version of the PDF: the old one stays readable, marked as superseded.
    let v2 = pdf("Luật Chuyển đổi số (bản sửa): Điều 1");
    let (_, up2) = h.upload(&clerk_token, v2.clone()).await;
    let ack = clerk
        .command(json!({"command": "supersede_document", "document": 1, "title": "Tờ trình (sửa)", "media_type": up2["media_type"], "size": up2["size"], "sha256": up2["sha256"], "file_name": "tờ trình sửa.pdf"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let old = h.get(Some(&deputy), "/documents/1/versions/1", &[]).await;
    assert_eq!(old.headers()["dienhong-superseded-by"], "2");
    assert_eq!(old.bytes().await.expect("old").as_ref(), &the_pdf[..]);
    let new = h.get(Some(&deputy), "/documents/1/versions/2", &[]).await;
    assert!(new.headers().get("dienhong-superseded-by").is_none());
    assert!(
        new.headers()["content-disposition"]
            .to_str()
            .expect("cd")
            .contains("filename*=UTF-8''t%E1%BB%9D%20tr%C3%ACnh%20s%E1%BB%ADa.pdf")
    );
    assert_eq!(new.bytes().await.expect("new").as_ref(), &v2[..]);
    let r = h.get(Some(&deputy), "/documents/1/versions/3", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A link opens the version it names, for its reader, without a bearer token.
    let link: Value = h
        .http
        .post(h.url("/documents/1/versions/2/link"))
        .bearer_auth(&deputy)
        .send()
        .await
        .expect("link")
        .json()
        .await
        .expect("json");
    let url = link["url"].as_str().expect("url");
    let r = h
        .http
        .get(format!("http://{}{url}", s.addr))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body").as_ref(), &v2[..]);
    let other = url.replace("/versions/2", "/versions/1");
    let r = h
        .http
        .get(format!("http://{}{other}", s.addr))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a link opens only its own version"
    );
    let tampered = format!("{}x", url);
    let r = h
        .http
        .get(format!("http://{}{tampered}", s.addr))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = h.get(None, "/documents/1/versions/2", &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "no token, no link: nothing"
    );

    // A stored file changed behind the server's back is refused, never served.
    let png = &published[3].2;
    let stored = files_in(blobs)
        .into_iter()
        .find(|p| p.ends_with(png["sha256"].as_str().expect("sha")))
        .expect("the PNG's blob");
    let mut bytes = std::fs::read(&stored).expect("read");
    bytes[20] ^= 1;
    std::fs::write(&stored, bytes).expect("tamper");
    let r = h.get(Some(&deputy), "/documents/4/versions/1", &[]).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn each_reader_gets_only_what_its_role_may_read() {
    let s = start_with(&[]).await;
    let h = Http::new(&s);
    let clerk_token = s.login("CLERK1").await;
    let mut clerk = s.client_speaking("CLERK1", 2).await;
    let levels = [
        json!({"level": "public"}),
        json!({"level": "deputies"}),
        json!({"level": "restricted", "roles": ["chair", "clerk"]}),
    ];
    for (i, access) in levels.iter().enumerate() {
        let (_, up) = h.upload(&clerk_token, pdf(&format!("Tài liệu {i}"))).await;
        let ack = clerk
            .command(publish(
                &up,
                &format!("Tài liệu {i}"),
                "t.pdf",
                access.clone(),
            ))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let observer = s.login("OBSERVER").await;
    let deputy = s.login("DB001").await;
    let chair = s.login("CHAIR").await;
    let cases = [
        (&observer, [true, false, false]),
        (&deputy, [true, true, false]),
        (&chair, [true, true, true]),
    ];
    for (token, may) in cases {
        for (i, may) in may.iter().enumerate() {
            let path = format!("/documents/{}/versions/1", i + 1);
            let r = h.get(Some(token), &path, &[]).await;
            let want = if *may {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(r.status(), want, "document {} for {token:.12}", i + 1);
            let link = h
                .http
                .post(h.url(&format!("{path}/link")))
                .bearer_auth(token)
                .send()
                .await
                .expect("link");
            assert_eq!(link.status(), want, "a link to document {}", i + 1);
        }
    }
    // Only a clerk uploads.
    let (status, body) = h.upload(&deputy, pdf("x")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "not_permitted");
    s.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_kept() {
    let s = start_with(&[("DIENHONG__DOCUMENTS__MAX_UPLOAD_BYTES", "65536")]).await;
    let h = Http::new(&s);
    let token = s.login("CLERK1").await;
    let mut clerk = s.client_speaking("CLERK1", 2).await;

    // Over the limit, declared: refused before reading.
    let (status, body) = h.upload(&token, vec![b'a'; 65_537]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "too_large");
    // Over the limit, not declared (chunked): cut off on the way.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b'a'; 4096])).collect();
    let r = h
        .http
        .post(h.url("/uploads"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may answer 413 before the client has sent everything, or close.
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // Content that is not on the list, whatever it claims to be.
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("html", b"<!doctype html><script>alert(1)</script>".to_vec()),
        ("elf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec()),
        ("zip", zip_of(&[("a.txt", "a")])),
        ("gif", b"GIF89a\x01\0\x01\0".to_vec()),
        ("binary", vec![0u8, 1, 2, 3, 255, 254]),
    ];
    for (what, bytes) in refused {
        let (status, body) = h.upload(&token, bytes).await;
        if what == "html" {
            // Text it is, by content: allowed as plain text, served as such.
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body["media_type"], "text/plain");
            continue;
        }
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{what}: {body}");
        assert_eq!(body["code"], "unsupported_type");
    }
    let (status, body) = h.upload(&token, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "empty");
    // A body that breaks off halfway.
    let broken: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"%PDF-1.4\n".to_vec()),
        Err(std::io::Error::other("cable pulled")),
    ];
    let _ = h
        .http
        .post(h.url("/uploads"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            broken,
        )))
        .send()
        .await;
    // Only the HTML-as-text upload was kept.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(blob_files(&s).len(), 1, "{:?}", blob_files(&s));

    // A document must name an upload, as it is.
    let ack = clerk
        .command(json!({"command": "publish_document", "item": 1, "title": "Giả", "media_type": "application/pdf", "size": 10, "sha256": "ab".repeat(32), "access": {"level": "public"}}))
        .await;
    assert_eq!(ack["code"], "no_such_blob", "{ack}");
    let (_, up) = h.upload(&token, pdf("Thật")).await;
    let mut wrong = publish(&up, "Sai cỡ", "a.pdf", json!({"level": "public"}));
    wrong["size"] = json!(up["size"].as_u64().expect("size") + 1);
    let ack = clerk.command(wrong).await;
    assert_eq!(ack["code"], "blob_mismatch", "{ack}");
    let mut wrong = publish(&up, "Sai loại", "a.pdf", json!({"level": "public"}));
    wrong["media_type"] = json!("image/png");
    assert_eq!(clerk.command(wrong).await["code"], "blob_mismatch");
    let ack = clerk
        .command(publish(&up, "Đúng", "a.pdf", json!({"level": "public"})))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");

    // A blob changed on disk is refused on read, never served.
    let stored = blob_files(&s)
        .into_iter()
        .find(|p| p.ends_with(up["sha256"].as_str().expect("sha")))
        .expect("the PDF's blob");
    let mut bytes = std::fs::read(&stored).expect("read");
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&stored, bytes).expect("tamper");
    let r = h.get(Some(&token), "/documents/1/versions/1", &[]).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "blob_corrupt");

    // Uploads no document took are collected after the grace period; the published one stays.
    let app = s.app.clone();
    let referenced = [up["sha256"].as_str().expect("sha").to_owned()].into();
    let removed = app
        .documents()
        .collect_orphans(&referenced, dienhong::sitting::Millis(i64::MAX))
        .await
        .expect("collect");
    assert_eq!(removed, 1, "the HTML-as-text upload");
    assert_eq!(blob_files(&s).len(), 1);
    s.stop().await;
}

/// Waits until a search by `token` for `q` gives `want` hits (the index follows the log).
async fn search_until(h: &Http<'_>, token: Option<&str>, q: &str, want: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let mut req = h
            .http
            .get(format!("http://{}/api/search", h.s.addr))
            .query(&[("q", q)]);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("search");
        assert_eq!(r.status(), StatusCode::OK);
        last = r.json().await.expect("json");
        if last["hits"].as_array().map(Vec::len) == Some(want) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{q}: wanted {want} hits, got {last}");
}

#[tokio::test]
async fn documents_are_found_by_vietnamese_typed_without_diacritics() {
    let s = start_with(&[]).await;
    let h = Http::new(&s);
    let clerk_token = s.login("CLERK1").await;
    let mut clerk = s.client_speaking("CLERK1", 2).await;
    let files = [
        (
            pdf("Tờ trình dự án Luật Chuyển đổi số"),
            "Tờ trình",
            json!({"level": "public"}),
        ),
        (
            docx("Báo cáo thẩm tra về ngân sách nhà nước"),
            "Báo cáo thẩm tra",
            json!({"level": "deputies"}),
        ),
        (
            odt("Ý kiến mật về ngân sách quốc phòng"),
            "Ý kiến",
            json!({"level": "restricted", "roles": ["chair"]}),
        ),
    ];
    for (bytes, title, access) in files {
        let (status, up) = h.upload(&clerk_token, bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        let ack = clerk.command(publish(&up, title, "f", access)).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let deputy = s.login("DB001").await;
    let observer = s.login("OBSERVER").await;
    let chair = s.login("CHAIR").await;
    // The PDF's own text, typed without diacritics, with its snippet.
    let found = search_until(&h, Some(&deputy), "luat chuyen doi so", 1).await;
    let hit = &found["hits"][0];
    assert_eq!(hit["document"], 1);
    assert_eq!(hit["media_type"], "application/pdf");
    assert_eq!(hit["superseded"], false);
    let marked: Vec<&str> = hit["snippet"]
        .as_array()
        .expect("snippet")
        .iter()
        .filter(|p| p["hit"] == true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert!(
        marked.contains(&"Luật") && marked.contains(&"Chuyển"),
        "{hit}"
    );
    // The text of the DOCX and the ODT; each reader finds only what it may read.
    search_until(&h, Some(&chair), "ngan sach", 2).await;
    search_until(&h, Some(&deputy), "ngan sach", 1).await;
    search_until(&h, Some(&observer), "ngan sach", 0).await;
    search_until(&h, None, "ngan sach", 0).await;
    search_until(&h, None, "chuyển đổi số", 1).await;
    search_until(&h, Some(&observer), "quoc phong", 0).await;
    search_until(&h, Some(&deputy), "quoc phong", 0).await;
    search_until(&h, Some(&chair), "quoc phong", 1).await;
    // Filters: by type, by agenda item, by when it was published.
    let filtered = |extra: Vec<(&'static str, String)>| {
        let (h, chair) = (&h, &chair);
        async move {
            let mut query = vec![("q", "ngan sach".to_owned())];
            query.extend(extra);
            let r: Value = h
                .http
                .get(format!("http://{}/api/search", h.s.addr))
                .query(&query)
                .bearer_auth(chair)
                .send()
                .await
                .expect("search")
                .json()
                .await
                .expect("json");
            r["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .filter_map(|h| h["document"].as_u64())
                .collect::<Vec<u64>>()
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let hour = 3_600_000;
    let table: Vec<(Vec<(&'static str, String)>, usize)> = vec![
        (
            vec![("type", "application/vnd.oasis.opendocument.text".into())],
            1,
        ),
        (vec![("item", "1".into())], 2),
        (vec![("item", "2".into())], 0),
        (
            vec![
                ("from", (now - hour).to_string()),
                ("to", (now + hour).to_string()),
            ],
            2,
        ),
        (vec![("from", (now + hour).to_string())], 0),
        (vec![("to", (now - hour).to_string())], 0),
    ];
    for (extra, want) in table {
        let what = format!("{extra:?}");
        let got = filtered(extra).await;
        assert_eq!(got.len(), want, "{what}: {got:?}");
    }
    assert_eq!(
        filtered(vec![(
            "type",
            "application/vnd.oasis.opendocument.text".into()
        )])
        .await,
        vec![3]
    );
    // Bad searches are told so.
    for q in ["", &"a".repeat(201)] {
        let r = h
            .http
            .get(format!("http://{}/api/search", s.addr))
            .query(&[("q", q)])
            .send()
            .await
            .expect("search");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // A new version is found, and the old one is marked as superseded.
    let (_, up) = h
        .upload(&clerk_token, pdf("Tờ trình sửa đổi: Luật Chuyển đổi số"))
        .await;
    let ack = clerk
        .command(json!({"command": "supersede_document", "document": 1, "title": "Tờ trình (sửa)", "media_type": up["media_type"], "size": up["size"], "sha256": up["sha256"]}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let found = search_until(&h, Some(&deputy), "luat chuyen doi so", 2).await;
    let versions: Vec<(u64, bool)> = found["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| (h["version"].as_u64().unwrap_or(0), h["superseded"] == true))
        .collect();
    assert!(
        versions.contains(&(1, true)) && versions.contains(&(2, false)),
        "{versions:?}"
    );
    // The index is rebuilt from the log and the stored files, by the command line.
    let db = s.database_url();
    let index = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dienhong"))
        .args(["reindex", "--database", &db])
        .env("DIENHONG__DOCUMENTS__INDEX_DIR", index.path())
        .output()
        .expect("reindex");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("indexed 4 document versions"), "{printed}");
    let again = dienhong::documents::search::SearchIndex::open(index.path()).expect("index");
    let hits = again
        .search(
            &dienhong::documents::search::Search {
                query: "luat chuyen doi so".into(),
                limit: 10,
                ..Default::default()
            },
            |_, _| true,
        )
        .expect("search");
    assert_eq!(hits.len(), 2);
    s.stop().await;
}

/// An S3-compatible server over a folder (`s3s-fs`, installed by `scripts/test-deps.sh`), on
/// a free port; its process is killed when this is dropped.
struct S3Server {
    child: std::process::Child,
    root: tempfile::TempDir,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3s_fs() -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("DIENHONG_S3S_FS").map(std::path::PathBuf::from);
    let installed =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/s3s/bin/s3s-fs"));
    from_env.into_iter().chain(installed).find(|p| p.is_file())
}

async fn start_s3() -> Option<S3Server> {
    let Some(bin) = s3s_fs() else {
        assert!(
            std::env::var_os("DIENHONG_REQUIRE_S3").is_none(),
            "s3s-fs is required here (scripts/test-deps.sh installs it)"
        );
        eprintln!("s3s-fs is not installed: the S3 store is not tested");
        return None;
    };
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("dienhong")).expect("bucket");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = std::process::Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--access-key",
            "dienhong-test",
            "--secret-key",
            "dienhong-test-secret",
        ])
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("s3s-fs starts");
    let server = S3Server { child, root, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(server);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("s3s-fs did not listen on {port}");
}

#[tokio::test]
async fn the_same_round_trip_against_an_s3_bucket() {
    let Some(s3) = start_s3().await else {
        return;
    };
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let s = start_with(&[
        ("DIENHONG__DOCUMENTS__STORE", "s3://dienhong/blobs"),
        (
            "DIENHONG__DOCUMENTS__STORE_OPTIONS__AWS_ENDPOINT",
            &endpoint,
        ),
        (
            "DIENHONG__DOCUMENTS__STORE_OPTIONS__AWS_REGION",
            "us-east-1",
        ),
        (
            "DIENHONG__DOCUMENTS__STORE_OPTIONS__AWS_ACCESS_KEY_ID",
            "dienhong-test",
        ),
        (
            "DIENHONG__DOCUMENTS__STORE_OPTIONS__AWS_SECRET_ACCESS_KEY",
            "dienhong-test-secret",
        ),
        ("DIENHONG__DOCUMENTS__STORE_OPTIONS__AWS_ALLOW_HTTP", "true"),
    ])
    .await;
    // Nothing goes to the folder beside the database: the bucket has it all.
    round_trip(&s, &s3.root.path().join("dienhong")).await;
    assert!(blob_files(&s).is_empty());
    // The search index read the files back from the bucket: both PDF versions and the DOCX
    // by their text.
    let h = Http::new(&s);
    let deputy = s.login("DB001").await;
    search_until(&h, Some(&deputy), "luat chuyen doi so", 3).await;
    s.stop().await;
}
