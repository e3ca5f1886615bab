//! File sharing: the files thread (`hubbub-files`) started from the configuration, and
//! the engine's host answering a message's attachments from it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hubbub_core::PersistRecord;
use hubbub_files::{Backend, Files, FilesConfig, Limits, S3Config};

use crate::config::{Config, Switch};
use crate::engine::{FilesFuture, Host, LoadFuture, RangeFuture};

/// Starts file sharing unless `FILES=off`: on S3 with `FILES_S3_BUCKET`, else in
/// `FILES_DIR` (or a folder under the temporary directory).
pub(crate) fn start(config: &Config) -> anyhow::Result<Option<Files>> {
    if config.files == Switch::Off {
        return Ok(None);
    }
    let backend = match &config.files_s3_bucket {
        Some(bucket) => Backend::S3(S3Config {
            bucket: bucket.clone(),
            endpoint: config.files_s3_endpoint.clone(),
            region: config.files_s3_region.clone(),
        }),
        None => Backend::Local(config.files_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("hubbub-files-{}", std::process::id()))
        })),
    };
    let mut cfg = FilesConfig::new(backend);
    cfg.limits = Limits {
        max_file_bytes: config.max_file_bytes,
        allowed_types: config.files_allowed_types.0.clone(),
        quota_bytes_per_hour: config.files_quota_bytes_per_hour,
        url_ttl: Duration::from_secs(config.files_url_ttl_secs),
    };
    let files =
        Files::start(cfg).context("file sharing could not start (FILES=off turns it off)")?;
    Ok(Some(files))
}

/// Where files go, for the start-up line: `off`, the directory, or the bucket.
pub(crate) fn describe(files: Option<&Files>) -> String {
    match files.map(Files::backend) {
        None => "off".to_owned(),
        Some(Backend::Local(dir)) => dir.display().to_string(),
        Some(Backend::S3(s3)) => match &s3.endpoint {
            Some(endpoint) => format!("s3://{} at {endpoint}", s3.bucket),
            None => format!("s3://{}", s3.bucket),
        },
    }
}

/// A host that answers attachments from the files thread and everything else from
/// `inner`.
pub(crate) struct FilesHost {
    pub inner: Box<dyn Host>,
    pub files: Files,
}

impl Host for FilesHost {
    fn load_room(&self, room: Arc<str>, recent: usize) -> LoadFuture {
        self.inner.load_room(room, recent)
    }

    fn load_range(&self, room: Arc<str>, after: u64, upto: u64) -> RangeFuture {
        self.inner.load_range(room, after, upto)
    }

    fn check_files(&self, _room: Arc<str>, files: Vec<Box<str>>) -> FilesFuture {
        let store = self.files.clone();
        Box::pin(async move { store.check(files).await })
    }

    fn sequence(&self, token: u64, record: &PersistRecord, epoch: &str, floor: u64) -> bool {
        self.inner.sequence(token, record, epoch, floor)
    }

    fn fetch(&self, room: Arc<str>, after: u64, upto: u64) -> bool {
        self.inner.fetch(room, after, upto)
    }

    fn unwatch(&self, room: Arc<str>) {
        self.inner.unwatch(room)
    }
}
