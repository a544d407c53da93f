//! PDF documents from flowing text, in a font that has every Vietnamese letter (DejaVu Sans,
//! embedded from `assets/fonts/`, subset by the writer): A4 pages with a title, headings,
//! paragraphs and table rows wrapped to the page, and a footer with the page number. Text is
//! real text (with its Unicode mapping), so it can be searched, copied and extracted. The
//! same blocks give the same bytes.

use krilla::Document;
use krilla::geom::Point;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};
use unicode_normalization::UnicodeNormalization;

const REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// A4, in points.
const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const FOOTER_SIZE: f32 = 8.0;

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The embedded font did not load.
    #[error("the embedded font did not load")]
    Font,
    /// The writer failed.
    #[error("writing the PDF: {0}")]
    Write(String),
}

/// A piece of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// The document's title (large, bold).
    Title(String),
    /// A section heading.
    Heading(String),
    /// A paragraph.
    Text(String),
    /// A small, grey note.
    Note(String),
    /// A table row: each cell with its share of the width (the shares of a table add up to
    /// 1); `bold` for a header row.
    Row {
        /// Cells and their shares of the width.
        cells: Vec<(String, f32)>,
        /// A header row.
        bold: bool,
    },
}

#[derive(Clone, Copy, PartialEq)]
enum Face {
    Regular,
    Bold,
}

/// One line placed on a page: its baseline's start, size, face, grey or black, and text.
struct Placed {
    x: f32,
    y: f32,
    size: f32,
    face: Face,
    grey: bool,
    text: String,
}

/// Widths of text in a font, for wrapping.
struct Measure<'a> {
    regular: skrifa::FontRef<'a>,
    bold: skrifa::FontRef<'a>,
}

impl Measure<'_> {
    fn width(&self, text: &str, size: f32, face: Face) -> f32 {
        let font = if face == Face::Bold {
            &self.bold
        } else {
            &self.regular
        };
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::new(size), LocationRef::default());
        text.chars()
            .map(|c| {
                charmap
                    .map(c)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(size * 0.6)
            })
            .sum()
    }

    /// `text` broken into lines no wider than `width` (a word too long for a line is broken
    /// between letters).
    fn wrap(&self, text: &str, size: f32, face: Face, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate, size, face) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone, broken if it must be.
                for c in word.chars() {
                    let mut next = line.clone();
                    next.push(c);
                    if !line.is_empty() && self.width(&next, size, face) > width {
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    } else {
                        line = next;
                    }
                }
            }
            lines.push(line);
        }
        lines
    }
}

/// Lays the blocks out on pages.
fn layout(blocks: &[Block], m: &Measure<'_>) -> Vec<Vec<Placed>> {
    let width = PAGE_W - 2.0 * MARGIN;
    let bottom = PAGE_H - MARGIN - 2.0 * FOOTER_SIZE;
    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = MARGIN;
    for block in blocks {
        let (size, face, grey, before, after) = match block {
            Block::Title(_) => (16.0, Face::Bold, false, 0.0, 8.0),
            Block::Heading(_) => (12.0, Face::Bold, false, 10.0, 3.0),
            Block::Text(_) => (10.0, Face::Regular, false, 0.0, 4.0),
            Block::Note(_) => (8.5, Face::Regular, true, 0.0, 4.0),
            Block::Row { bold, .. } => (
                9.0,
                if *bold { Face::Bold } else { Face::Regular },
                false,
                0.0,
                3.0,
            ),
        };
        let line_h = size * 1.35;
        // Each column's lines.
        let columns: Vec<(f32, f32, Vec<String>)> = match block {
            Block::Title(t) | Block::Heading(t) | Block::Text(t) | Block::Note(t) => {
                let t: String = t.nfc().collect();
                vec![(0.0, width, m.wrap(&t, size, face, width))]
            }
            Block::Row { cells, .. } => {
                let mut x = 0.0;
                cells
                    .iter()
                    .map(|(t, share)| {
                        let w = width * share.clamp(0.0, 1.0);
                        let t: String = t.nfc().collect();
                        let col = (x, w, m.wrap(&t, size, face, (w - 4.0).max(size)));
                        x += w;
                        col
                    })
                    .collect()
            }
        };
        let rows = columns.iter().map(|c| c.2.len()).max().unwrap_or(1).max(1);
        // A heading keeps its first lines of what follows with it; a row stays whole.
        let keep = match block {
            Block::Heading(_) => rows as f32 * line_h + before + 3.0 * line_h,
            Block::Row { .. } => rows as f32 * line_h,
            _ => line_h,
        };
        if y + keep > bottom && pages.last().is_some_and(|p| !p.is_empty()) {
            pages.push(Vec::new());
            y = MARGIN;
        } else {
            y += before;
        }
        for r in 0..rows {
            if y + line_h > bottom {
                pages.push(Vec::new());
                y = MARGIN;
            }
            y += line_h;
            for (x, _, lines) in &columns {
                if let Some(text) = lines.get(r).filter(|t| !t.is_empty())
                    && let Some(page) = pages.last_mut()
                {
                    page.push(Placed {
                        x: MARGIN + x,
                        y,
                        size,
                        face,
                        grey,
                        text: text.clone(),
                    });
                }
            }
        }
        y += after;
    }
    pages
}

/// The PDF of `blocks`, titled `title` (in its metadata), in `language` (`vi`, `en`), each
/// page's footer reading `footer` and the page's number out of the total (`{page}`, `{pages}`).
pub fn render(
    title: &str,
    language: &str,
    blocks: &[Block],
    footer: &str,
) -> Result<Vec<u8>, PdfError> {
    let m = Measure {
        regular: skrifa::FontRef::new(REGULAR).map_err(|_| PdfError::Font)?,
        bold: skrifa::FontRef::new(BOLD).map_err(|_| PdfError::Font)?,
    };
    let regular = Font::new(REGULAR.into(), 0).ok_or(PdfError::Font)?;
    let bold = Font::new(BOLD.into(), 0).ok_or(PdfError::Font)?;
    let pages = layout(blocks, &m);
    let total = pages.len();
    let mut doc = Document::new();
    doc.set_metadata(
        Metadata::new()
            .title(title.to_owned())
            .language(language.to_owned()),
    );
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or(PdfError::Font)?;
    let black = krilla::paint::Fill {
        paint: krilla::color::rgb::Color::new(0, 0, 0).into(),
        ..Default::default()
    };
    let grey = krilla::paint::Fill {
        paint: krilla::color::rgb::Color::new(90, 90, 90).into(),
        ..Default::default()
    };
    for (n, lines) in pages.iter().enumerate() {
        let mut page = doc.start_page_with(settings.clone());
        let mut surface = page.surface();
        for l in lines {
            surface.set_fill(Some(if l.grey { grey.clone() } else { black.clone() }));
            let font = if l.face == Face::Bold {
                bold.clone()
            } else {
                regular.clone()
            };
            surface.draw_text(
                Point::from_xy(l.x, l.y),
                font,
                l.size,
                &l.text,
                false,
                TextDirection::LeftToRight,
            );
        }
        let foot = footer
            .replace("{page}", &(n + 1).to_string())
            .replace("{pages}", &total.to_string());
        let foot: String = foot.nfc().collect();
        surface.set_fill(Some(grey.clone()));
        surface.draw_text(
            Point::from_xy(MARGIN, PAGE_H - MARGIN + FOOTER_SIZE),
            regular.clone(),
            FOOTER_SIZE,
            &foot,
            false,
            TextDirection::LeftToRight,
        );
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_blocks_give_the_same_bytes_and_long_text_makes_pages() {
        let mut blocks = vec![Block::Title("Biên bản phiên họp".into())];
        for i in 0..120 {
            blocks.push(Block::Text(format!(
                "{i}. Đại biểu Nguyễn Thị Hằng (Thừa Thiên Huế) phát biểu về Luật Chuyển đổi số."
            )));
        }
        let a = render("Biên bản", "vi", &blocks, "Trang {page}/{pages}").expect("pdf");
        let b = render("Biên bản", "vi", &blocks, "Trang {page}/{pages}").expect("pdf");
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, b, "reproducible");
        let m = Measure {
            regular: skrifa::FontRef::new(REGULAR).expect("font"),
            bold: skrifa::FontRef::new(BOLD).expect("font"),
        };
        assert!(
            layout(&blocks, &m).len() >= 3,
            "120 lines fill more than two pages"
        );
    }

    #[test]
    fn lines_wrap_within_the_width() {
        let m = Measure {
            regular: skrifa::FontRef::new(REGULAR).expect("font"),
            bold: skrifa::FontRef::new(BOLD).expect("font"),
        };
        let text = "Quốc hội quyết nghị thông qua Luật Chuyển đổi số với 452 đại biểu tán thành";
        let lines = m.wrap(text, 10.0, Face::Regular, 120.0);
        assert!(lines.len() > 2, "{lines:?}");
        for l in &lines {
            assert!(m.width(l, 10.0, Face::Regular) <= 120.0, "{l}");
        }
        assert_eq!(lines.join(" "), text);
        let long = m.wrap(&"đ".repeat(100), 10.0, Face::Regular, 50.0);
        assert!(long.len() > 5 && long.iter().all(|l| !l.is_empty()));
    }
}
