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

/// A one-page PDF whose text is Vietnamese (a Type 0 font would be needed to show it; the
/// content stream holds it as UTF-16BE, as PDF text strings do).
fn pdf(text: &str) -> Vec<u8> {
    let mut utf16 = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        utf16.extend_from_slice(&u.to_be_bytes());
    }
    let hex: String = utf16.iter().map(|b| format!("{b:02X}")).collect();
    let stream = format!("BT /F1 12 Tf 72 720 Td <{hex}> Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
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

impl Http<'_> {
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
    let dir = std::path::PathBuf::from(format!(
        "{}-blobs",
        s.database_url().trim_start_matches("sqlite:")
    ));
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn real_files_go_up_and_come_back_byte_for_byte() {
    let s = start_with(&[]).await;
    let h = Http {
        s: &s,
        http: reqwest::Client::new(),
    };
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
        blob_files(&s).len(),
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
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"%PDF-1.4");
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
    s.stop().await;
}

#[tokio::test]
async fn each_reader_gets_only_what_its_role_may_read() {
    let s = start_with(&[]).await;
    let h = Http {
        s: &s,
        http: reqwest::Client::new(),
    };
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
    let h = Http {
        s: &s,
        http: reqwest::Client::new(),
    };
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
