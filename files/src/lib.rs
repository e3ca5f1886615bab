//! hubbub's file sharing (docs/PROTOCOL.md §4.7): a client asks for an upload, PUTs the
//! bytes to a signed, expiring URL — hubbub's own (`FILES_DIR`, the embedded default) or
//! a presigned S3 one (`FILES_S3_BUCKET`) — and attaches the file to a chat message by
//! its id. Limits hold where the bytes land: a local upload longer than declared is
//! refused before it is read; an S3 object bigger than declared is refused (and deleted)
//! when a message names it.
//!
//! Everything that touches a disk or the network runs on the thread `hubbub-files`
//! behind a bounded queue: a worker only signs or checks a URL (an HMAC) and waits on
//! channels, never on I/O.

mod limits;
mod local;
mod record;
mod s3;
mod service;
mod signing;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use limits::{
    essence, parse_types, Limits, UploadBody, UploadRefused, DEFAULT_ALLOWED_TYPES,
    DEFAULT_MAX_FILE_BYTES, DEFAULT_QUOTA_BYTES_PER_HOUR, MAX_NAME_CHARS,
};
pub use record::{valid_file_id, FileRecord};
pub use s3::{S3Config, S3Error};
pub use service::{Files, PutRefused, Ticket, Upload};
pub use signing::{Signer, UrlRefused};

/// Where the files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A directory of this machine, served by hubbub itself.
    Local(PathBuf),
    /// An S3 bucket (or an S3-API server).
    S3(S3Config),
}

/// How file sharing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// Where the files go.
    pub backend: Backend,
    /// What an upload may be.
    pub limits: Limits,
    /// Records kept in memory (older ones are read back from the store).
    pub catalog_cap: usize,
    /// Requests waiting for the files thread before new ones are refused.
    pub queue: usize,
}

impl FilesConfig {
    /// The defaults with `backend`.
    pub fn new(backend: Backend) -> FilesConfig {
        FilesConfig {
            backend,
            limits: Limits::default(),
            catalog_cap: 100_000,
            queue: 1024,
        }
    }
}

/// Why file sharing could not start.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// `FILES_DIR` cannot be made or written.
    #[error("FILES_DIR {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The thread could not be started.
    #[error("cannot start the files thread: {0}")]
    Thread(std::io::Error),
}

/// The files figures `/metrics` shows.
#[derive(Debug, Default)]
pub struct FileStats {
    /// Uploads granted (a URL handed out).
    pub uploads: AtomicU64,
    /// Uploads refused, at the request or where the bytes landed.
    pub refused: AtomicU64,
    /// Files whose bytes were stored (local) or found (S3).
    pub stored: AtomicU64,
    /// Their bytes.
    pub stored_bytes: AtomicU64,
    /// Download URLs handed out.
    pub downloads: AtomicU64,
    /// Requests refused because the files thread's queue was full.
    pub busy: AtomicU64,
}

impl FileStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// `Content-Disposition` for a download: pictures and plain text inline, the rest as an
/// attachment; the name in RFC 5987 form so any character survives.
///
/// ```
/// # use hubbub_files::{disposition, FileRecord};
/// let mut r = FileRecord { file_id: "f".into(), room: "r".into(), uploader: "u".into(),
///     name: "naïve report.pdf".into(), content_type: "application/pdf".into(),
///     declared: 1, stored: Some(1) };
/// assert_eq!(disposition(&r), "attachment; filename*=UTF-8''na%C3%AFve%20report.pdf");
/// r.content_type = "image/png".into();
/// assert!(disposition(&r).starts_with("inline;"));
/// ```
pub fn disposition(record: &FileRecord) -> String {
    let inline = record.content_type.starts_with("image/") || record.content_type == "text/plain";
    let mut name = String::new();
    for b in record.name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename*=UTF-8''{name}")
}

/// Shared by the handle and the thread.
pub(crate) type SharedStats = Arc<FileStats>;
