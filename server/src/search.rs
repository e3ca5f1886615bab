//! Message search: the index's threads (`hubbub-search`) started from the configuration,
//! and the sink through which the workers hand every accepted message to both the index
//! and the durable store.

use std::sync::Arc;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hubbub_core::{PersistRecord, PersistSink, StateWrite};
use hubbub_persist_bridge::PersistQueue;
use hubbub_persist_bridge::{Bridge, ScanCursor};
use hubbub_search::{SearchConfig, SearchIndex, SearchQueue};

use crate::config::{Config, Store, Switch};

/// Pages of the table between two progress lines of a rebuild.
const PROGRESS_EVERY: u64 = 20;

/// `SEARCH_REBUILD=true`: reads the whole messages table into the index on a thread of its
/// own (`hubbub-search-rebuild`), a page of 1,000 at a time, while the chat goes on; a
/// message the workers index meanwhile is there once. A page the store does not answer is
/// asked again (each second) until it does or the server stops.
pub(crate) fn rebuild(index: Arc<SearchIndex>, bridge: Arc<Bridge>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("hubbub-search-rebuild".into())
        .spawn(move || {
            let started = Instant::now();
            let mut cursor = ScanCursor::default();
            let (mut pages, mut read) = (0u64, 0u64);
            tracing::info!("search rebuild: reading the messages table");
            loop {
                let Some(answer) = wait(bridge.scan_messages(cursor.clone()), &index) else {
                    return;
                };
                let (messages, next) = match answer {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::debug!(error = %e, "search rebuild: the page is asked again");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                for m in messages {
                    if !index.index_stored(m) {
                        return;
                    }
                    read += 1;
                }
                pages += 1;
                if pages % PROGRESS_EVERY == 0 {
                    tracing::info!(messages = read, pages, "search rebuild: in progress");
                }
                match next {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
            tracing::info!(
                messages = read,
                took_ms = started.elapsed().as_millis() as u64,
                "search rebuild: done"
            );
        })
        .context("cannot start the search rebuild thread")?;
    Ok(())
}

/// The store's answer, waited for on this (non-worker) thread; `None` once the index stops.
fn wait<T>(
    mut rx: futures_channel::oneshot::Receiver<Result<T, hubbub_persist_bridge::QueryError>>,
    index: &SearchIndex,
) -> Option<Result<T, hubbub_persist_bridge::QueryError>> {
    loop {
        match rx.try_recv() {
            Ok(Some(answer)) => return Some(answer),
            Ok(None) if index.is_open() => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => return None,
            // The bridge dropped the question (it is stopping): ask again later.
            Err(_) => {
                std::thread::sleep(Duration::from_secs(1));
                return Some(Err(hubbub_persist_bridge::QueryError::Unavailable(
                    "the store dropped the question".into(),
                )));
            }
        }
    }
}

/// Starts the index unless `SEARCH=off`. A `SEARCH_DIR` that cannot hold an index is an
/// error: the server would otherwise answer searches over nothing.
pub(crate) fn start(config: &Config) -> anyhow::Result<Option<Arc<SearchIndex>>> {
    if config.search_rebuild && config.store != Store::Dynamodb {
        bail!("SEARCH_REBUILD=true reads the messages table: it needs STORE=dynamodb");
    }
    if config.search == Switch::Off {
        if config.search_rebuild {
            bail!("SEARCH_REBUILD=true rebuilds the search index: it needs SEARCH=on");
        }
        return Ok(None);
    }
    let cfg = SearchConfig {
        dir: config.search_dir.clone(),
        queue_size: config.search_queue_size as usize,
        max_messages: config.search_max_messages,
        ..SearchConfig::default()
    };
    let index = SearchIndex::start(cfg).context("cannot start the search index (SEARCH_DIR)")?;
    match &config.search_dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "search index on disk"),
        // The default: said only at debug, like the memory store.
        None => tracing::debug!(
            max_messages = config.search_max_messages,
            "search index in memory"
        ),
    }
    Ok(Some(index))
}

/// Where a worker's hub hands what it accepted: the search index (which never refuses:
/// a full queue drops from the index alone, counted there) and the durable store (whose
/// refusal is the hub's to handle, for `PERSIST_OVERFLOW`).
pub(crate) struct AcceptedSink {
    search: Option<SearchQueue>,
    store: Option<PersistQueue>,
    /// `PERSIST_OVERFLOW=reject`: what the store refuses is not broadcast, so not indexed.
    reject: bool,
}

impl AcceptedSink {
    /// The sink for the given services, if any is on.
    pub(crate) fn boxed(
        search: Option<&Arc<SearchIndex>>,
        store: Option<PersistQueue>,
        reject: bool,
    ) -> Option<Box<dyn PersistSink>> {
        if search.is_none() && store.is_none() {
            return None;
        }
        Some(Box::new(AcceptedSink {
            search: search.map(|s| s.queue()),
            store,
            reject,
        }))
    }
}

impl PersistSink for AcceptedSink {
    fn try_push(&mut self, record: PersistRecord) -> Result<(), PersistRecord> {
        match (&self.search, &mut self.store) {
            (Some(search), Some(store)) => match store.try_push(record.clone()) {
                Ok(()) => {
                    search.push(record);
                    Ok(())
                }
                // Refused by the store: broadcast all the same (and so indexed) unless
                // the policy is to reject it.
                Err(record) => {
                    if !self.reject {
                        search.push(record.clone());
                    }
                    Err(record)
                }
            },
            (Some(search), None) => {
                search.push(record);
                Ok(())
            }
            (None, Some(store)) => store.try_push(record),
            (None, None) => Ok(()),
        }
    }

    fn try_push_state(&mut self, write: StateWrite) -> Result<(), StateWrite> {
        match &mut self.store {
            Some(store) => store.try_push_state(write),
            None => Ok(()),
        }
    }
}
