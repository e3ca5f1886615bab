//! Searches: the query rules of docs/PROTOCOL.md §4.6 and the query thread.

use std::ops::Bound;
use std::sync::Weak;
use std::time::Duration;

use futures_channel::oneshot;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Term, Value};
use tantivy::{Index, IndexReader, Order, TantivyDocument};

use crate::schema::{self, Fields};
use crate::{SearchError, SearchIndex};

/// Characters a query has at most.
pub const MAX_QUERY_CHARS: usize = 200;
/// Terms a query has at most.
pub const MAX_QUERY_TERMS: usize = 8;
/// Messages one page has at most.
pub const MAX_SEARCH_LIMIT: usize = 50;

/// One search: the messages of `room` holding every term of `q` (the last one as a
/// prefix), newest first, below `before` if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The room.
    pub room: String,
    /// The query text (1 to [`MAX_QUERY_CHARS`] characters).
    pub q: String,
    /// Only messages with a smaller `seq`.
    pub before: Option<u64>,
    /// At most this many (1 to [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPage {
    /// Chat frames exactly as broadcast, newest first.
    pub frames: Vec<String>,
    /// The `before` of the next page, if there is one.
    pub next_before: Option<u64>,
}

/// Why a query was refused: 400 `invalid_query` with this sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryRule {
    /// Empty, blank or too long, or no word in it.
    Empty,
    /// Over [`MAX_QUERY_TERMS`] terms.
    TooManyTerms,
}

impl SearchQuery {
    /// Whether `q` is a query the index takes, before it is asked: 1 to 200 characters.
    ///
    /// ```
    /// use hubbub_search::SearchQuery;
    /// assert!(SearchQuery::valid_text("deploy fri"));
    /// assert!(!SearchQuery::valid_text(""));
    /// assert!(!SearchQuery::valid_text(&"x".repeat(201)));
    /// ```
    pub fn valid_text(q: &str) -> bool {
        let n = q.chars().count();
        n > 0 && n <= MAX_QUERY_CHARS && !q.trim().is_empty()
    }
}

pub(crate) struct Job {
    pub query: SearchQuery,
    pub reply: oneshot::Sender<Result<SearchPage, SearchError>>,
}

#[derive(Clone)]
pub(crate) struct Reader {
    pub reader: IndexReader,
    pub index: Index,
    pub fields: Fields,
}

pub(crate) fn run(reader: Reader, index: Weak<SearchIndex>) {
    loop {
        let Some(owner) = index.upgrade() else { return };
        match owner.next_job() {
            Some(job) => {
                let answer = search(&reader, &job.query);
                owner.counted_search();
                let _ = job.reply.send(answer);
            }
            None if owner.closed() => return,
            None => {
                drop(owner);
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
    }
}

/// The terms of `q`, or why it is refused.
pub(crate) fn parse(index: &Index, q: &str) -> Result<Vec<String>, QueryRule> {
    if !SearchQuery::valid_text(q) {
        return Err(QueryRule::Empty);
    }
    let terms = schema::terms(index, q);
    match terms.len() {
        0 => Err(QueryRule::Empty),
        n if n > MAX_QUERY_TERMS => Err(QueryRule::TooManyTerms),
        _ => Ok(terms),
    }
}

fn search(r: &Reader, q: &SearchQuery) -> Result<SearchPage, SearchError> {
    let f = r.fields;
    let terms = match parse(&r.index, &q.q) {
        Ok(terms) => terms,
        // The server checks the rules first; a query refused here finds nothing.
        Err(_) => return Ok(SearchPage::default()),
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::Must,
        Box::new(TermQuery::new(
            Term::from_field_text(f.room, &q.room),
            IndexRecordOption::Basic,
        )),
    )];
    let last = terms.len() - 1;
    for (i, t) in terms.iter().enumerate() {
        let term = Term::from_field_text(f.content, t);
        let clause: Box<dyn Query> = if i == last {
            Box::new(FuzzyTermQuery::new_prefix(term, 0, false))
        } else {
            Box::new(TermQuery::new(term, IndexRecordOption::Basic))
        };
        clauses.push((Occur::Must, clause));
    }
    if let Some(before) = q.before {
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_u64(f.seq, before)),
            )),
        ));
    }
    let query = BooleanQuery::new(clauses);
    let limit = q.limit.clamp(1, MAX_SEARCH_LIMIT);
    let searcher = r.reader.searcher();
    let top = TopDocs::with_limit(limit + 1).order_by_u64_field("seq", Order::Desc);
    let found = searcher.search(&query, &top)?;
    let more = found.len() > limit;
    let mut page = SearchPage::default();
    for (seq, address) in found.into_iter().take(limit) {
        let doc: TantivyDocument = searcher.doc(address)?;
        if let Some(frame) = doc.get_first(f.frame).and_then(|v| v.as_str()) {
            page.frames.push(frame.to_owned());
        }
        if more {
            page.next_before = Some(seq);
        }
    }
    Ok(page)
}
