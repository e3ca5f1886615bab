//! Message search: the index's threads (`hubbub-search`) started from the configuration,
//! and the sink through which the workers hand every accepted message to both the index
//! and the durable store.

use std::sync::Arc;

use anyhow::Context;
use hubbub_core::{PersistRecord, PersistSink, StateWrite};
use hubbub_persist_bridge::PersistQueue;
use hubbub_search::{SearchConfig, SearchIndex, SearchQueue};

use crate::config::{Config, Switch};

/// Starts the index unless `SEARCH=off`. A `SEARCH_DIR` that cannot hold an index is an
/// error: the server would otherwise answer searches over nothing.
pub(crate) fn start(config: &Config) -> anyhow::Result<Option<Arc<SearchIndex>>> {
    if config.search == Switch::Off {
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
        None => tracing::info!(
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
