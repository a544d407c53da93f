//! The text of a stored file, for the search index: a PDF's text (through `pdf-extract`), the
//! paragraphs of a DOCX or ODT, the cells of an XLSX, a text file as it is; nothing from an
//! image. A file that cannot be read gives no text rather than an error: it is still found
//! by its title. Runs on a blocking thread; at most `max_bytes` of text per file (the
//! `documents.index_text_bytes` setting).

use super::sniff::Kind;
use quick_xml::events::Event as Xml;
use std::io::{Cursor, Read};

/// Largest XML part read from an office file (a zip bomb stops here).
const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;

/// The text of `bytes`, a file of this kind: at most `max_bytes` of it.
pub fn text(kind: Kind, bytes: &[u8], max_bytes: usize) -> String {
    let mut out = match kind {
        Kind::Pdf => pdf(bytes),
        Kind::Docx => office(bytes, "word/document.xml", "t", "p", max_bytes),
        Kind::Odt => office(bytes, "content.xml", "", "p", max_bytes),
        Kind::Xlsx => office(bytes, "xl/sharedStrings.xml", "t", "si", max_bytes),
        Kind::Text => String::from_utf8_lossy(bytes).into_owned(),
        Kind::Png | Kind::Jpeg => String::new(),
    };
    if out.len() > max_bytes {
        let mut cut = max_bytes;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

fn pdf(bytes: &[u8]) -> String {
    // The PDF parser may panic on a malformed file: that file then has no text.
    let bytes = bytes.to_vec();
    std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&bytes).ok())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The text in one XML part of a ZIP container: the character data inside elements named
/// `text_tag` (any element when empty), with a line break after each `block_tag`.
fn office(bytes: &[u8], part: &str, text_tag: &str, block_tag: &str, max_bytes: usize) -> String {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return String::new();
    };
    let Ok(entry) = archive.by_name(part) else {
        return String::new();
    };
    let mut xml = Vec::new();
    if entry.take(MAX_PART_BYTES).read_to_end(&mut xml).is_err() {
        return String::new();
    }
    let mut reader = quick_xml::Reader::from_reader(&xml[..]);
    let mut out = String::new();
    let mut depth_in_text = 0usize;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Xml::Start(e)) => {
                if text_tag.is_empty() || AsRef::<str>::as_ref(&e.local_name()) == text_tag {
                    depth_in_text += 1;
                }
            }
            Ok(Xml::End(e)) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if (text_tag.is_empty() || name == text_tag) && depth_in_text > 0 {
                    depth_in_text -= 1;
                }
                if name == block_tag {
                    out.push('\n');
                }
            }
            Ok(Xml::Empty(e)) => {
                let local = e.local_name();
                let name: &str = local.as_ref();
                if name == "tab" {
                    out.push('\t');
                } else if name == "br" || name == "s" {
                    out.push(' ');
                }
            }
            Ok(Xml::Text(t)) if depth_in_text > 0 => {
                out.push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0));
            }
            Ok(Xml::GeneralRef(r)) if depth_in_text > 0 => {
                // &amp; and the like, and numeric references.
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else {
                    let c = match r.into_inner().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    };
                    out.push_str(c);
                }
            }
            Ok(Xml::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        if out.len() > max_bytes {
            break;
        }
        buf.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn text_stops_at_the_limit_on_a_character_boundary() {
        let t = text(Kind::Text, "ờ".repeat(100).as_bytes(), 10);
        assert_eq!(t, "ờờờ");
    }

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, body) in entries {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .expect("entry");
                w.write_all(body.as_bytes()).expect("write");
            }
            w.finish().expect("finish");
        }
        out.into_inner()
    }

    #[test]
    fn the_paragraphs_of_office_files_come_out_in_order() {
        let docx = zip_of(&[(
            "word/document.xml",
            r#"<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>Luật Chuyển </w:t></w:r><w:r><w:t>đổi số</w:t></w:r></w:p><w:p><w:r><w:t>Điều 1 &amp; 2</w:t></w:r></w:p></w:body></w:document>"#,
        )]);
        assert_eq!(
            text(Kind::Docx, &docx, LIMIT),
            "Luật Chuyển đổi số\nĐiều 1 & 2\n"
        );
        let odt = zip_of(&[(
            "content.xml",
            r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:p>Báo cáo<text:s/>thẩm tra</text:p></office:text></office:body></office:document-content>"#,
        )]);
        assert_eq!(text(Kind::Odt, &odt, LIMIT), "Báo cáo thẩm tra\n");
        let xlsx = zip_of(&[(
            "xl/sharedStrings.xml",
            r#"<sst xmlns="s"><si><t>Ngân sách</t></si><si><t>Hà Nội</t></si></sst>"#,
        )]);
        assert_eq!(text(Kind::Xlsx, &xlsx, LIMIT), "Ngân sách\nHà Nội\n");
    }

    #[test]
    fn the_vietnamese_text_of_a_pdf_comes_back() {
        let bytes = crate::pdf::render(
            "Tờ trình",
            "vi",
            &[
                crate::pdf::Block::Title("Tờ trình dự án Luật Chuyển đổi số".into()),
                crate::pdf::Block::Text(
                    "Điều 1. Phạm vi điều chỉnh: Đồng bằng sông Cửu Long.".into(),
                ),
            ],
            "Trang {page}/{pages}",
        )
        .expect("pdf");
        let got: String = unicode_normalization::UnicodeNormalization::nfc(
            text(Kind::Pdf, &bytes, LIMIT).as_str(),
        )
        .collect();
        for want in [
            "Tờ trình dự án Luật Chuyển đổi số",
            "Phạm vi điều chỉnh",
            "Đồng bằng sông Cửu Long",
            "Trang 1/1",
        ] {
            assert!(got.contains(want), "{want:?} in {got:?}");
        }
    }

    #[test]
    fn unreadable_files_give_no_text() {
        assert_eq!(text(Kind::Docx, b"PK\x03\x04 not a zip", LIMIT), "");
        assert_eq!(text(Kind::Pdf, b"%PDF-1.4 broken", LIMIT), "");
        assert_eq!(text(Kind::Png, b"\x89PNG", LIMIT), "");
        assert_eq!(text(Kind::Text, "Ghi chú".as_bytes(), LIMIT), "Ghi chú");
    }
}
