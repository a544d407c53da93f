//! What a file is, judged by its bytes, never by its name: the allow-list of types a
//! document may have (PDF, DOCX, ODT, XLSX, plain UTF-8 text, PNG, JPEG). Pure, apart from
//! [`zip_kind`], which reads a ZIP container's directory from a seekable reader.

use std::io::{Read, Seek};

/// A type on the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PDF.
    Pdf,
    /// Word (Office Open XML).
    Docx,
    /// OpenDocument text.
    Odt,
    /// Excel (Office Open XML).
    Xlsx,
    /// Plain UTF-8 text.
    Text,
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
}

impl Kind {
    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Kind::Odt => "application/vnd.oasis.opendocument.text",
            Kind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Kind::Text => "text/plain",
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
        }
    }

    /// The kind with this media type (as [`Kind::media_type`] gives it).
    pub fn from_media_type(media_type: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.media_type() == media_type)
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Docx => "docx",
            Kind::Odt => "odt",
            Kind::Xlsx => "xlsx",
            Kind::Text => "txt",
            Kind::Png => "png",
            Kind::Jpeg => "jpg",
        }
    }

    /// Whether a browser shows it itself (opened in place rather than saved).
    pub fn shown_inline(self) -> bool {
        matches!(self, Kind::Pdf | Kind::Png | Kind::Jpeg | Kind::Text)
    }
}

/// Every kind on the allow-list.
pub const ALL: [Kind; 7] = [
    Kind::Pdf,
    Kind::Docx,
    Kind::Odt,
    Kind::Xlsx,
    Kind::Text,
    Kind::Png,
    Kind::Jpeg,
];

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Settled by the signature.
    Known(Kind),
    /// A ZIP container: its directory decides ([`zip_kind`]).
    Zip,
    /// No binary signature: text if the whole file is ([`TextCheck`]).
    MaybeText,
    /// A signature of a type not on the list (or no signature and bytes that are not text).
    Refused,
}

/// Judges the first bytes of a file (at least the first 8, when it has them).
pub fn head(bytes: &[u8]) -> Head {
    if bytes.starts_with(b"%PDF-") {
        Head::Known(Kind::Pdf)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Head::Known(Kind::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Head::Known(Kind::Jpeg)
    } else if bytes.starts_with(b"PK\x03\x04") {
        Head::Zip
    } else if bytes.is_empty() {
        Head::Refused
    } else {
        Head::MaybeText
    }
}

/// Which office format a ZIP container holds, from its entries: ODT names itself in its
/// `mimetype` entry; DOCX and XLSX have `[Content_Types].xml` and their main part. `None`
/// for any other ZIP (or a broken one).
pub fn zip_kind<R: Read + Seek>(reader: R) -> Option<Kind> {
    let mut archive = zip::ZipArchive::new(reader).ok()?;
    if let Ok(mut entry) = archive.by_name("mimetype") {
        let mut declared = String::new();
        entry
            .by_ref()
            .take(128)
            .read_to_string(&mut declared)
            .ok()?;
        return (declared.trim() == Kind::Odt.media_type()).then_some(Kind::Odt);
    }
    let has = |name: &str| archive.index_for_name(name).is_some();
    if !has("[Content_Types].xml") {
        return None;
    }
    if has("word/document.xml") {
        Some(Kind::Docx)
    } else if has("xl/workbook.xml") {
        Some(Kind::Xlsx)
    } else {
        None
    }
}

/// Checks, chunk by chunk, that a whole file is plain UTF-8 text: valid UTF-8 with no
/// control characters other than tab, line feed, form feed and carriage return.
#[derive(Debug, Default)]
pub struct TextCheck {
    /// Bytes of a character cut by the end of the previous chunk.
    carry: Vec<u8>,
    failed: bool,
}

impl TextCheck {
    /// Feeds the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed {
            return;
        }
        let mut joined;
        let bytes = if self.carry.is_empty() {
            chunk
        } else {
            joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(chunk);
            &joined[..]
        };
        let valid = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) if e.error_len().is_none() => {
                // A character cut at the end: keep its bytes for the next chunk.
                let (ok, rest) = bytes.split_at(e.valid_up_to());
                self.carry = rest.to_vec();
                // Valid by the error's own account.
                std::str::from_utf8(ok).unwrap_or_default()
            }
            Err(_) => {
                self.failed = true;
                return;
            }
        };
        if valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
        {
            self.failed = true;
        }
    }

    /// Whether everything fed was text (and did not end inside a character).
    pub fn is_text(&self) -> bool {
        !self.failed && self.carry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, body) in entries {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .expect("entry");
                w.write_all(body).expect("write");
            }
            w.finish().expect("finish");
        }
        out.into_inner()
    }

    #[test]
    fn signatures_settle_the_binary_types() {
        let cases: &[(&[u8], Head)] = &[
            (b"%PDF-1.7\n", Head::Known(Kind::Pdf)),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Head::Known(Kind::Png)),
            (&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], Head::Known(Kind::Jpeg)),
            (b"PK\x03\x04\x14\0", Head::Zip),
            (b"Lu\xe1\xba\xadt", Head::MaybeText),
            (b"", Head::Refused),
        ];
        for (bytes, want) in cases {
            assert_eq!(head(bytes), *want, "{bytes:?}");
        }
    }

    #[test]
    fn zip_containers_are_told_apart_by_their_entries() {
        let odt = zip_with(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"<x/>"),
        ]);
        let ods = zip_with(&[(
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        )]);
        let docx = zip_with(&[
            ("[Content_Types].xml", b"<x/>"),
            ("word/document.xml", b"<x/>"),
        ]);
        let xlsx = zip_with(&[
            ("[Content_Types].xml", b"<x/>"),
            ("xl/workbook.xml", b"<x/>"),
        ]);
        let pptx = zip_with(&[
            ("[Content_Types].xml", b"<x/>"),
            ("ppt/presentation.xml", b"<x/>"),
        ]);
        let plain = zip_with(&[("a.txt", b"a")]);
        assert_eq!(zip_kind(Cursor::new(odt)), Some(Kind::Odt));
        assert_eq!(zip_kind(Cursor::new(docx)), Some(Kind::Docx));
        assert_eq!(zip_kind(Cursor::new(xlsx)), Some(Kind::Xlsx));
        assert_eq!(zip_kind(Cursor::new(ods)), None);
        assert_eq!(zip_kind(Cursor::new(pptx)), None);
        assert_eq!(zip_kind(Cursor::new(plain)), None);
        assert_eq!(zip_kind(Cursor::new(b"PK\x03\x04broken".to_vec())), None);
    }

    #[test]
    fn text_is_checked_across_chunk_boundaries() {
        let s = "Luật Chuyển đổi số\r\n\tĐiều 1.".as_bytes();
        for cut in 0..s.len() {
            let mut t = TextCheck::default();
            t.feed(&s[..cut]);
            t.feed(&s[cut..]);
            assert!(t.is_text(), "cut at {cut}");
        }
        let mut cut_short = TextCheck::default();
        cut_short.feed(&s[..2]); // "Lu" then the first byte of "ậ"
        cut_short.feed(&s[2..3]);
        assert!(!cut_short.is_text(), "ends inside a character");
        for bad in [&b"a\0b"[..], b"\xff\xfe", b"\x1b[31m", b"ok\xc3\x28"] {
            let mut t = TextCheck::default();
            t.feed(bad);
            assert!(!t.is_text(), "{bad:?}");
        }
    }

    #[test]
    fn media_types_round_trip() {
        for k in ALL {
            assert_eq!(Kind::from_media_type(k.media_type()), Some(k));
        }
        assert_eq!(Kind::from_media_type("text/html"), None);
    }
}
