//! Full-text search over every sitting's documents, with an embedded engine (tantivy) whose
//! index is kept beside the data and can always be rebuilt from the log and the stored blobs.
//! One entry per document version: its title and the text of its file, searchable as
//! Vietnamese is typed (see [`super::fold`]). Who may read what is decided by the caller:
//! [`SearchIndex::search`] keeps only the hits it is told are readable.

use super::fold::{VietFold, compose};
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

/// The tokenizer's name in the index.
const TOKENIZER: &str = "vi_folded";
/// Most candidates looked at for one query (before the reader's access and the filters).
const CANDIDATES: usize = 2_000;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 220;

/// What went wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The engine failed.
    #[error("search index: {0}")]
    Engine(#[from] tantivy::TantivyError),
    /// The index folder could not be opened.
    #[error("search index folder: {0}")]
    Folder(#[from] tantivy::directory::error::OpenDirectoryError),
    /// A file of the index failed.
    #[error("search index: {0}")]
    Io(#[from] std::io::Error),
}

/// One document version to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sitting.
    pub sitting: String,
    /// Document.
    pub document: u32,
    /// Version.
    pub version: u32,
    /// Agenda item.
    pub item: u32,
    /// Media type.
    pub media_type: String,
    /// When the version was published (milliseconds since the epoch).
    pub published_at: i64,
    /// Title.
    pub title: String,
    /// The text of the file.
    pub text: String,
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The words, as typed.
    pub query: String,
    /// Only this sitting.
    pub sitting: Option<String>,
    /// Only this agenda item.
    pub item: Option<u32>,
    /// Only this media type.
    pub media_type: Option<String>,
    /// Published at or after (milliseconds).
    pub from: Option<i64>,
    /// Published before (milliseconds).
    pub to: Option<i64>,
    /// Most hits.
    pub limit: usize,
}

/// A piece of a snippet: text, and whether it matched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Piece {
    /// The text.
    pub text: String,
    /// Whether these words matched the query.
    pub hit: bool,
}

/// One hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Sitting.
    pub sitting: String,
    /// Document.
    pub document: u32,
    /// Version.
    pub version: u32,
    /// Agenda item.
    pub item: u32,
    /// Media type.
    pub media_type: String,
    /// When it was published.
    pub published_at_ms: i64,
    /// Title.
    pub title: String,
    /// The best passage of its text, in pieces.
    pub snippet: Vec<Piece>,
    /// Relevance.
    pub score: f32,
}

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    sitting: Field,
    document: Field,
    version: Field,
    item: Field,
    media_type: Field,
    published: Field,
    title: Field,
    body: Field,
}

/// The index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchIndex")
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let f = Fields {
        key: b.add_text_field("key", STRING | STORED),
        sitting: b.add_text_field("sitting", STRING | STORED),
        document: b.add_u64_field("document", STORED),
        version: b.add_u64_field("version", STORED),
        item: b.add_u64_field("item", STORED | INDEXED),
        media_type: b.add_text_field("media_type", STRING | STORED),
        published: b.add_i64_field("published", STORED | INDEXED | FAST),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
    };
    (b.build(), f)
}

fn key(sitting: &str, document: u32, version: u32) -> String {
    format!("{sitting}/{document}/{version}")
}

impl SearchIndex {
    /// Opens the index in `dir`, making it if needed. An index made with another layout is
    /// replaced by an empty one (it is rebuilt from the log and the blobs).
    pub fn open(dir: &Path) -> Result<SearchIndex, SearchError> {
        std::fs::create_dir_all(dir)?;
        let (schema, f) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "search index unusable: starting an empty one");
                std::fs::remove_dir_all(dir)?;
                std::fs::create_dir_all(dir)?;
                Index::create_in_dir(dir, schema)?
            }
        };
        Self::with_index(index, f)
    }

    /// An index in memory (for tests).
    pub fn in_memory() -> Result<SearchIndex, SearchError> {
        let (schema, f) = schema();
        Self::with_index(Index::create_in_ram(schema), f)
    }

    fn with_index(index: Index, f: Fields) -> Result<SearchIndex, SearchError> {
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(VietFold)
            .build();
        index.tokenizers().register(TOKENIZER, analyzer);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(32 * 1024 * 1024)?;
        Ok(SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            f,
        })
    }

    /// Whether this version is indexed.
    pub fn has(&self, sitting: &str, document: u32, version: u32) -> bool {
        let term = Term::from_field_text(self.f.key, &key(sitting, document, version));
        let searcher = self.reader.searcher();
        searcher.doc_freq(&term).is_ok_and(|n| n > 0)
    }

    /// Adds (or replaces) versions, and makes them searchable.
    pub fn add(&self, entries: &[Entry]) -> Result<(), SearchError> {
        let Ok(mut w) = self.writer.lock() else {
            return Err(SearchError::Io(std::io::Error::other(
                "index writer poisoned",
            )));
        };
        for e in entries {
            let k = key(&e.sitting, e.document, e.version);
            w.delete_term(Term::from_field_text(self.f.key, &k));
            w.add_document(doc!(
                self.f.key => k,
                self.f.sitting => e.sitting.clone(),
                self.f.document => u64::from(e.document),
                self.f.version => u64::from(e.version),
                self.f.item => u64::from(e.item),
                self.f.media_type => e.media_type.clone(),
                self.f.published => e.published_at,
                self.f.title => compose(&e.title),
                self.f.body => compose(&e.text),
            ))?;
        }
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Empties the index.
    pub fn clear(&self) -> Result<(), SearchError> {
        let Ok(mut w) = self.writer.lock() else {
            return Err(SearchError::Io(std::io::Error::other(
                "index writer poisoned",
            )));
        };
        w.delete_all_documents()?;
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// How many versions are indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best hits for `s` among the versions `may_read(sitting, document)` allows.
    pub fn search(
        &self,
        s: &Search,
        may_read: impl Fn(&str, u32) -> bool,
    ) -> Result<Vec<Hit>, SearchError> {
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![self.f.title, self.f.body]);
        parser.set_conjunction_by_default();
        parser.set_field_boost(self.f.title, 2.0);
        let (words, _) = parser.parse_query_lenient(&compose(&s.query));
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, words.box_clone())];
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        if let Some(sitting) = &s.sitting {
            clauses.push((Occur::Must, term(self.f.sitting, sitting)));
        }
        if let Some(mt) = &s.media_type {
            clauses.push((Occur::Must, term(self.f.media_type, mt)));
        }
        if let Some(item) = s.item {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(self.f.item, u64::from(item)),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if s.from.is_some() || s.to.is_some() {
            let lower = s.from.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(self.f.published, v))
            });
            let upper = s.to.map_or(Bound::Unbounded, |v| {
                Bound::Excluded(Term::from_field_i64(self.f.published, v))
            });
            clauses.push((
                Occur::Must,
                Box::new(tantivy::query::RangeQuery::new(lower, upper)),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let top = searcher.search(&query, &TopDocs::with_limit(CANDIDATES).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, &*words, self.f.body)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut hits = Vec::new();
        for (score, address) in top {
            let d: TantivyDocument = searcher.doc(address)?;
            let text = |f: Field| {
                d.get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let number = |f: Field| {
                d.get_first(f)
                    .and_then(|v| v.as_u64())
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0)
            };
            let sitting = text(self.f.sitting);
            let document = number(self.f.document);
            if !may_read(&sitting, document) {
                continue;
            }
            let snippet = snippets.snippet_from_doc(&d);
            let pieces = if snippet.fragment().is_empty() {
                let body = text(self.f.body);
                let head: String = body.chars().take(SNIPPET_CHARS).collect();
                if head.is_empty() {
                    Vec::new()
                } else {
                    vec![Piece {
                        text: head,
                        hit: false,
                    }]
                }
            } else {
                pieces(snippet.fragment(), snippet.highlighted())
            };
            hits.push(Hit {
                sitting,
                document,
                version: number(self.f.version),
                item: number(self.f.item),
                media_type: text(self.f.media_type),
                published_at_ms: d
                    .get_first(self.f.published)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0),
                title: text(self.f.title),
                snippet: pieces,
                score,
            });
            if hits.len() >= s.limit {
                break;
            }
        }
        Ok(hits)
    }
}

/// A fragment cut into pieces at its highlighted byte ranges.
fn pieces(fragment: &str, highlighted: &[std::ops::Range<usize>]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut push = |text: &str, hit: bool| {
        if !text.is_empty() {
            out.push(Piece {
                text: text.to_owned(),
                hit,
            });
        }
    };
    for r in highlighted {
        let (Some(before), Some(word)) = (fragment.get(at..r.start), fragment.get(r.clone()))
        else {
            continue;
        };
        push(before, false);
        push(word, true);
        at = r.end;
    }
    push(fragment.get(at..).unwrap_or_default(), false);
    out
}

#[cfg(test)]
mod tests;
