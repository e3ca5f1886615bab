//! The writer thread: the queue into the index, a commit every `commit_every`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hubbub_core::protocol::encode_chat_message;
use tantivy::directory::MmapDirectory;
use tantivy::query::RangeQuery;
use tantivy::schema::Term;
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy};

use crate::schema::{self, Fields};
use crate::{Entry, SearchConfig, SearchError, Shared};

/// Bytes the writer buffers before it flushes a segment.
const WRITER_MEMORY: usize = 32 << 20;
/// How long the writer sleeps when the queue is empty.
const IDLE_SLEEP: Duration = Duration::from_millis(20);

pub(crate) struct Opened {
    pub writer: IndexWriter,
    pub reader: crate::query::Reader,
    fields: Fields,
    /// The next ordinal (messages indexed before, in a directory's index).
    next_ordinal: u64,
}

pub(crate) fn open(cfg: &SearchConfig) -> Result<Opened, SearchError> {
    let (schema, fields) = schema::schema();
    let index = match &cfg.dir {
        None => Index::create_in_ram(schema),
        Some(dir) => {
            let failed = |reason: String| SearchError::Open {
                dir: dir.display().to_string(),
                reason,
            };
            std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
            let directory = MmapDirectory::open(dir).map_err(|e| failed(e.to_string()))?;
            Index::open_or_create(directory, schema).map_err(|e| failed(e.to_string()))?
        }
    };
    schema::register_analyzer(&index);
    let writer: IndexWriter = index.writer_with_num_threads(1, WRITER_MEMORY)?;
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let next_ordinal = reader.searcher().num_docs();
    Ok(Opened {
        reader: crate::query::Reader {
            reader,
            index,
            fields,
        },
        writer,
        fields,
        next_ordinal,
    })
}

pub(crate) fn run(mut opened: Opened, cfg: SearchConfig, shared: &Shared) {
    let mut uncommitted = 0u64;
    let mut last_commit = Instant::now();
    let mut frame = Vec::with_capacity(512);
    loop {
        let mut took = 0;
        while let Some(entry) = shared.queue.pop() {
            let message = match entry {
                Entry::Accepted(record) => record.to_message(),
                Entry::Stored(message) => message,
            };
            frame.clear();
            encode_chat_message(&mut frame, &message);
            let f = opened.fields;
            opened
                .writer
                .delete_term(Term::from_field_text(f.message_id, &message.message_id));
            let added = opened.writer.add_document(doc!(
                f.room => message.room_id.as_str(),
                f.message_id => message.message_id.as_str(),
                f.seq => message.seq,
                f.ordinal => opened.next_ordinal,
                f.content => schema::spaced(&message.content).into_owned(),
                f.frame => String::from_utf8_lossy(&frame).into_owned(),
            ));
            if let Err(e) = added {
                tracing::warn!(error = %e, "a message was not indexed");
                shared.counters.dropped.fetch_add(1, Relaxed);
                shared.counters.queued.fetch_sub(1, Relaxed);
                continue;
            }
            opened.next_ordinal += 1;
            uncommitted += 1;
            took += 1;
            if took >= 4096 {
                break;
            }
        }
        let closing = shared.closed.load(Relaxed) && shared.queue.is_empty();
        if uncommitted > 0 && (closing || last_commit.elapsed() >= cfg.commit_every) {
            commit(&mut opened, &cfg, shared, uncommitted);
            uncommitted = 0;
            last_commit = Instant::now();
        }
        if closing {
            return;
        }
        if took == 0 {
            std::thread::park_timeout(IDLE_SLEEP);
        }
    }
}

fn commit(opened: &mut Opened, cfg: &SearchConfig, shared: &Shared, added: u64) {
    // An index in memory keeps the newest `max_messages`.
    if cfg.dir.is_none() && opened.next_ordinal > cfg.max_messages {
        let below = opened.next_ordinal - cfg.max_messages;
        let field = opened.fields.ordinal;
        let old = RangeQuery::new(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(Term::from_field_u64(field, below)),
        );
        if let Err(e) = opened.writer.delete_query(Box::new(old)) {
            tracing::warn!(error = %e, "the oldest messages stay in the index");
        }
    }
    match opened.writer.commit() {
        Ok(_) => {
            // Counted once the searcher sees them: `indexed` means searchable (a search
            // made after the count rose once found nothing, the reload not yet done).
            if let Err(e) = opened.reader.reader.reload() {
                tracing::warn!(error = %e, "the searcher did not reload");
            }
            shared.counters.indexed.fetch_add(added, Relaxed);
        }
        Err(e) => {
            tracing::warn!(error = %e, count = added, "a commit of the search index failed");
            shared.counters.dropped.fetch_add(added, Relaxed);
            shared.counters.queued.fetch_sub(added, Relaxed);
        }
    }
}
