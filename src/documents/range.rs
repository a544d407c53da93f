//! HTTP byte ranges (RFC 9110 §14): which part of a document a `Range` header asks for, and
//! the `Content-Disposition` that names a download. Pure.

use std::ops::Range;

/// What to answer a request for a resource of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The whole resource (no `Range`, or one this server does not honour, such as several
    /// ranges at once: serving the whole is always allowed).
    Whole,
    /// One range, `206 Partial Content`.
    Part(Range<u64>),
    /// A range that lies outside the resource, `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// Reads a `Range` header value for a resource of `size` bytes.
pub fn answer(header: Option<&str>, size: u64) -> Answer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Answer::Whole;
    };
    if spec.contains(',') {
        return Answer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Answer::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // The last `n` bytes.
        let Ok(n) = last.parse::<u64>() else {
            return Answer::Whole;
        };
        if n == 0 || size == 0 {
            return Answer::Unsatisfiable;
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Answer::Whole;
        };
        let end = if last.is_empty() {
            size
        } else {
            match last.parse::<u64>() {
                Ok(l) if l >= start => l.saturating_add(1).min(size),
                _ => return Answer::Whole,
            }
        };
        if start >= size {
            return Answer::Unsatisfiable;
        }
        start..end
    };
    Answer::Part(range)
}

/// A `Content-Disposition` value naming `file_name`: `inline` (opened by the browser) or
/// `attachment` (saved), with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187).
pub fn disposition(file_name: &str, inline: bool) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .-_()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(file_name, ATTR_CHAR);
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Everything but RFC 8187's `attr-char` is percent-encoded.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        let cases: &[(Option<&str>, u64, Answer)] = &[
            (None, 100, Answer::Whole),
            (Some("bytes=0-9"), 100, Answer::Part(0..10)),
            (Some("bytes=90-"), 100, Answer::Part(90..100)),
            (Some("bytes=95-200"), 100, Answer::Part(95..100)),
            (Some("bytes=-10"), 100, Answer::Part(90..100)),
            (Some("bytes=-500"), 100, Answer::Part(0..100)),
            (Some("bytes=99-99"), 100, Answer::Part(99..100)),
            (Some("bytes=100-"), 100, Answer::Unsatisfiable),
            (Some("bytes=-0"), 100, Answer::Unsatisfiable),
            (Some("bytes=0-1,5-6"), 100, Answer::Whole),
            (Some("bytes=9-3"), 100, Answer::Whole),
            (Some("items=0-1"), 100, Answer::Whole),
            (Some("bytes=x-"), 100, Answer::Whole),
        ];
        for (header, size, want) in cases {
            assert_eq!(answer(*header, *size), *want, "{header:?} of {size}");
        }
    }

    #[test]
    fn a_vietnamese_file_name_survives_in_utf8() {
        let d = disposition("Tờ trình số 1.pdf", true);
        assert_eq!(
            d,
            "inline; filename=\"T_ tr_nh s_ 1.pdf\"; filename*=UTF-8''T%E1%BB%9D%20tr%C3%ACnh%20s%E1%BB%91%201.pdf"
        );
        let d = disposition("a\"b;c.pdf", false);
        assert!(d.starts_with("attachment; filename=\"a_b_c.pdf\""), "{d}");
    }
}
