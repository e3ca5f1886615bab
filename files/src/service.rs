//! The thread `hubbub-files`: a current-thread tokio runtime taking requests from the
//! workers through a bounded queue, each answered on a oneshot channel.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use hubbub_core::FileFacts;

use crate::limits::{Limits, Quota, UploadBody, UploadRefused};
use crate::local::LocalDir;
use crate::record::{valid_file_id, Catalog, FileRecord};
use crate::s3::S3Store;
use crate::signing::{Signer, UrlRefused};
use crate::{Backend, FileStats, FilesConfig, FilesError, SharedStats};

/// An upload granted: where and how to send the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The file's id.
    pub file_id: String,
    /// `PUT`.
    pub method: &'static str,
    /// Absolute (S3) or relative to the server (local).
    pub url: String,
    /// Headers to send with the bytes.
    pub headers: Vec<(String, String)>,
    /// When the URL expires (Unix s).
    pub expires: u64,
}

/// Why a local PUT is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PutRefused {
    /// No upload with this id was asked for (404 `file_not_found`).
    #[error("no upload with this id was asked for")]
    NotFound,
    /// Its bytes are already stored, or arriving (409 `already_uploaded`).
    #[error("this file's bytes were already uploaded")]
    AlreadyUploaded,
    /// More bytes than the upload declared (413 `file_too_large`).
    #[error("the body is larger than the upload declared ({declared} bytes)")]
    TooLarge {
        /// What was declared.
        declared: u64,
    },
    /// Another `Content-Type` than the upload declared (415 `unsupported_type`).
    #[error("Content-Type must be the type the upload declared")]
    WrongType,
    /// The connection ended before the last byte (nothing is kept).
    #[error("the upload ended before its last byte")]
    Incomplete,
    /// The disk refused, or the files thread is busy (503 `files_unavailable`).
    #[error("the file store is unavailable; retry later")]
    Unavailable,
}

/// The bytes of a local upload on their way to the disk.
#[derive(Debug)]
pub struct Upload {
    chunks: mpsc::Sender<Vec<u8>>,
    done: oneshot::Receiver<Result<u64, PutRefused>>,
}

impl Upload {
    /// Hands `chunk` to the files thread, waiting while it is behind (backpressure on
    /// the client, not memory on the worker).
    pub async fn send(&mut self, chunk: Vec<u8>) -> Result<(), PutRefused> {
        std::future::poll_fn(|cx| self.chunks.poll_ready(cx))
            .await
            .map_err(|_| PutRefused::Unavailable)?;
        self.chunks
            .start_send(chunk)
            .map_err(|_| PutRefused::Unavailable)
    }

    /// The last byte was sent: the stored size, once the file is whole on disk.
    pub async fn finish(self) -> Result<u64, PutRefused> {
        let Upload { chunks, done } = self;
        drop(chunks);
        done.await.unwrap_or(Err(PutRefused::Unavailable))
    }
}

enum Request {
    Prepare {
        room: String,
        uploader: String,
        body: UploadBody,
        now: u64,
        reply: oneshot::Sender<Result<Ticket, UploadRefused>>,
    },
    Check {
        files: Vec<Box<str>>,
        reply: oneshot::Sender<Option<Vec<Option<FileFacts>>>>,
    },
    Find {
        id: String,
        reply: oneshot::Sender<Option<FileRecord>>,
    },
    DownloadUrl {
        record: FileRecord,
        now: u64,
        reply: oneshot::Sender<Option<String>>,
    },
    BeginPut {
        id: String,
        length: u64,
        content_type: String,
        reply: oneshot::Sender<Result<Upload, PutRefused>>,
    },
    Read {
        id: String,
        reply: oneshot::Sender<Option<(FileRecord, Vec<u8>)>>,
    },
}

/// The handle the workers hold.
#[derive(Clone)]
pub struct Files {
    tx: tokio::sync::mpsc::Sender<Request>,
    signer: Signer,
    limits: Arc<Limits>,
    stats: SharedStats,
    backend: Arc<Backend>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("backend", &self.backend)
            .finish()
    }
}

/// What the thread works with.
struct State {
    store: Store,
    catalog: Mutex<Catalog>,
    quota: Mutex<Quota>,
    receiving: Mutex<HashSet<String>>,
    limits: Arc<Limits>,
    signer: Signer,
    stats: SharedStats,
}

enum Store {
    Local(LocalDir),
    S3(S3Store),
}

impl Files {
    /// Starts the files thread for `cfg`.
    pub fn start(cfg: FilesConfig) -> Result<Files, FilesError> {
        let local = match &cfg.backend {
            Backend::Local(dir) => Some(LocalDir::open(dir).map_err(|source| FilesError::Dir {
                path: dir.clone(),
                source,
            })?),
            Backend::S3(_) => None,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(cfg.queue.max(1));
        let signer = Signer::random();
        let limits = Arc::new(cfg.limits.clone());
        let stats: SharedStats = Arc::new(FileStats::default());
        let files = Files {
            tx,
            signer: signer.clone(),
            limits: limits.clone(),
            stats: stats.clone(),
            backend: Arc::new(cfg.backend.clone()),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FilesError::Thread)?;
        let catalog_cap = cfg.catalog_cap;
        std::thread::Builder::new()
            .name("hubbub-files".into())
            .spawn(move || {
                rt.block_on(async move {
                    let store = match (local, &cfg.backend) {
                        (Some(dir), _) => Store::Local(dir),
                        (None, Backend::S3(s3)) => Store::S3(S3Store::connect(s3).await),
                        (None, Backend::Local(_)) => return,
                    };
                    let state = Arc::new(State {
                        store,
                        catalog: Mutex::new(Catalog::new(catalog_cap)),
                        quota: Mutex::new(Quota::default()),
                        receiving: Mutex::new(HashSet::new()),
                        limits,
                        signer,
                        stats,
                    });
                    serve(state, rx).await;
                })
            })
            .map_err(FilesError::Thread)?;
        Ok(files)
    }

    /// Where the files go.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The figures.
    pub fn stats(&self) -> &FileStats {
        &self.stats
    }

    /// Does hubbub receive the bytes itself (`FILES_DIR`)?
    pub fn is_local(&self) -> bool {
        matches!(*self.backend, Backend::Local(_))
    }

    fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Option<oneshot::Receiver<T>> {
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(make(reply)) {
            Ok(()) => Some(answer),
            Err(_) => {
                FileStats::add(&self.stats.busy, 1);
                None
            }
        }
    }

    /// Grants an upload of `body` to `room` by `uploader` at `now` (Unix s), within the
    /// hourly quota.
    pub async fn prepare(
        &self,
        room: String,
        uploader: String,
        body: UploadBody,
        now: u64,
    ) -> Result<Ticket, UploadRefused> {
        let asked = self.ask(|reply| Request::Prepare {
            room,
            uploader,
            body,
            now,
            reply,
        });
        let answer = match asked {
            Some(rx) => rx.await.unwrap_or(Err(UploadRefused::Unavailable)),
            None => Err(UploadRefused::Unavailable),
        };
        match &answer {
            Ok(_) => FileStats::add(&self.stats.uploads, 1),
            Err(_) => FileStats::add(&self.stats.refused, 1),
        }
        answer
    }

    /// What the store knows of each of `files`, in order (`None`: it could not say). The
    /// hub decides from it, the room included.
    pub async fn check(&self, files: Vec<Box<str>>) -> Option<Vec<Option<FileFacts>>> {
        self.ask(|reply| Request::Check { files, reply })?
            .await
            .ok()
            .flatten()
    }

    /// The record of a stored file (`Ok(None)`: no such file, or its bytes never came;
    /// `Err`: the store could not say).
    pub async fn find(&self, id: &str) -> Result<Option<FileRecord>, PutRefused> {
        if !valid_file_id(id) {
            return Ok(None);
        }
        let id = id.to_owned();
        match self.ask(|reply| Request::Find { id, reply }) {
            Some(rx) => rx.await.map_err(|_| PutRefused::Unavailable),
            None => Err(PutRefused::Unavailable),
        }
    }

    /// A short-lived URL to `record`'s bytes.
    pub async fn download_url(&self, record: FileRecord, now: u64) -> Option<String> {
        let url = self
            .ask(|reply| Request::DownloadUrl { record, now, reply })?
            .await
            .ok()
            .flatten();
        if url.is_some() {
            FileStats::add(&self.stats.downloads, 1);
        }
        url
    }

    /// Checks a local URL's signature for `method` on `file` at `now` (Unix s). Cheap:
    /// runs on the worker.
    pub fn verify(
        &self,
        method: &str,
        file: &str,
        expires: Option<&str>,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), UrlRefused> {
        self.signer.verify(method, file, expires, sig, now)
    }

    /// Starts a local PUT of `length` bytes of `content_type` to `id` (after its URL was
    /// verified): refused before a byte is read when it breaks what was declared.
    pub async fn begin_put(
        &self,
        id: &str,
        length: u64,
        content_type: &str,
    ) -> Result<Upload, PutRefused> {
        let id = id.to_owned();
        let content_type = crate::limits::essence(content_type);
        let answer = match self.ask(|reply| Request::BeginPut {
            id,
            length,
            content_type,
            reply,
        }) {
            Some(rx) => rx.await.unwrap_or(Err(PutRefused::Unavailable)),
            None => Err(PutRefused::Unavailable),
        };
        if matches!(
            answer,
            Err(PutRefused::TooLarge { .. } | PutRefused::WrongType)
        ) {
            FileStats::add(&self.stats.refused, 1);
        }
        answer
    }

    /// A local file's record and bytes.
    pub async fn read(&self, id: &str) -> Result<Option<(FileRecord, Vec<u8>)>, PutRefused> {
        let id = id.to_owned();
        match self.ask(|reply| Request::Read { id, reply }) {
            Some(rx) => rx.await.map_err(|_| PutRefused::Unavailable),
            None => Err(PutRefused::Unavailable),
        }
    }
}

async fn serve(state: Arc<State>, mut rx: tokio::sync::mpsc::Receiver<Request>) {
    while let Some(request) = rx.recv().await {
        let state = state.clone();
        tokio::spawn(async move { state.handle(request).await });
    }
}

impl State {
    async fn handle(self: Arc<Self>, request: Request) {
        match request {
            Request::Prepare {
                room,
                uploader,
                body,
                now,
                reply,
            } => {
                let _ = reply.send(self.prepare(room, uploader, body, now).await);
            }
            Request::Check { files, reply } => {
                let mut facts = Vec::with_capacity(files.len());
                for id in &files {
                    match self.stored(id).await {
                        // The hub decides whether the file's room is the message's.
                        Ok(found) => facts.push(found.map(|r| r.facts())),
                        Err(()) => {
                            let _ = reply.send(None);
                            return;
                        }
                    }
                }
                let _ = reply.send(Some(facts));
            }
            Request::Find { id, reply } => {
                // A store that cannot answer drops the reply: the caller sees `Err`.
                if let Ok(found) = self.stored(&id).await {
                    let _ = reply.send(found.filter(|r| r.stored.is_some()));
                }
            }
            Request::DownloadUrl { record, now, reply } => {
                let ttl = self.limits.url_ttl;
                let url = match &self.store {
                    Store::Local(_) => {
                        let expires = now + ttl.as_secs();
                        let q = self.signer.query("GET", &record.file_id, expires);
                        Some(format!("/api/files/{}/content?{q}", record.file_id))
                    }
                    Store::S3(s3) => s3.presign_get(&record, ttl).await.ok(),
                };
                let _ = reply.send(url);
            }
            Request::BeginPut {
                id,
                length,
                content_type,
                reply,
            } => {
                let _ = reply.send(self.begin_put(id, length, content_type));
            }
            Request::Read { id, reply } => {
                let Store::Local(dir) = &self.store else {
                    let _ = reply.send(None);
                    return;
                };
                let Ok(Some(record)) = self.stored(&id).await else {
                    let _ = reply.send(None);
                    return;
                };
                match dir.read(&id) {
                    Ok(bytes) => {
                        let _ = reply.send(Some((record, bytes)));
                    }
                    Err(e) => {
                        tracing::warn!(file = %id, error = %e, "a stored file cannot be read");
                        let _ = reply.send(None);
                    }
                }
            }
        }
    }

    async fn prepare(
        &self,
        room: String,
        uploader: String,
        body: UploadBody,
        now: u64,
    ) -> Result<Ticket, UploadRefused> {
        let per_hour = self.limits.quota_bytes_per_hour;
        // Never contended (one thread); a poisoned lock refuses rather than skip the quota.
        self.quota
            .lock()
            .map_err(|_| UploadRefused::Unavailable)?
            .take(&uploader, body.size, per_hour, now)
            .map_err(|retry_after_secs| UploadRefused::QuotaExceeded { retry_after_secs })?;
        let ttl = self.limits.url_ttl;
        let expires = now + ttl.as_secs();
        let record = FileRecord {
            file_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            room,
            uploader,
            name: body.name,
            content_type: body.content_type,
            declared: body.size,
            stored: None,
        };
        let ticket = match &self.store {
            Store::Local(dir) => {
                dir.write_record(&record).map_err(|e| {
                    tracing::warn!(error = %e, "FILES_DIR refused an upload's record");
                    UploadRefused::Unavailable
                })?;
                let q = self.signer.query("PUT", &record.file_id, expires);
                Ticket {
                    file_id: record.file_id.clone(),
                    method: "PUT",
                    url: format!("/api/files/{}/content?{q}", record.file_id),
                    headers: vec![("Content-Type".into(), record.content_type.clone())],
                    expires,
                }
            }
            Store::S3(s3) => {
                let signed = s3.presign_put(&record, ttl).await.map_err(|e| {
                    tracing::warn!(error = %e, "S3 presigning failed");
                    UploadRefused::Unavailable
                })?;
                Ticket {
                    file_id: record.file_id.clone(),
                    method: signed.method,
                    url: signed.url,
                    headers: signed.headers,
                    expires,
                }
            }
        };
        self.remember(record);
        Ok(ticket)
    }

    fn remember(&self, record: FileRecord) {
        if let Ok(mut catalog) = self.catalog.lock() {
            catalog.insert(record);
        }
    }

    fn cached(&self, id: &str) -> Option<FileRecord> {
        self.catalog.lock().ok()?.get(id).cloned()
    }

    /// `id`'s record, with what was stored found out (`Err`: the store could not say).
    async fn stored(&self, id: &str) -> Result<Option<FileRecord>, ()> {
        if !valid_file_id(id) {
            return Ok(None);
        }
        let cached = self.cached(id);
        if cached.as_ref().is_some_and(|r| r.stored.is_some()) {
            return Ok(cached);
        }
        match &self.store {
            Store::Local(dir) => {
                let found = cached.or_else(|| dir.read_record(id));
                if let Some(r) = &found {
                    self.remember(r.clone());
                }
                Ok(found)
            }
            Store::S3(s3) => {
                let Some((size, meta)) = s3.head(id).await.map_err(|e| {
                    tracing::warn!(error = %e, "S3 HeadObject failed");
                })?
                else {
                    return Ok(cached);
                };
                let Some(mut record) = cached.or(meta) else {
                    return Ok(None);
                };
                record.stored = Some(size);
                if size > record.declared {
                    // A lying upload: the object goes, and nothing will carry it.
                    FileStats::add(&self.stats.refused, 1);
                    if let Err(e) = s3.delete(id).await {
                        tracing::warn!(error = %e, "S3 DeleteObject of an oversize upload failed");
                    }
                } else {
                    FileStats::add(&self.stats.stored, 1);
                    FileStats::add(&self.stats.stored_bytes, size);
                }
                self.remember(record.clone());
                Ok(Some(record))
            }
        }
    }

    fn begin_put(
        self: &Arc<Self>,
        id: String,
        length: u64,
        content_type: String,
    ) -> Result<Upload, PutRefused> {
        let Store::Local(dir) = &self.store else {
            return Err(PutRefused::NotFound);
        };
        if !valid_file_id(&id) {
            return Err(PutRefused::NotFound);
        }
        let record = self
            .cached(&id)
            .or_else(|| dir.read_record(&id))
            .ok_or(PutRefused::NotFound)?;
        if record.stored.is_some() {
            return Err(PutRefused::AlreadyUploaded);
        }
        if length > record.declared {
            return Err(PutRefused::TooLarge {
                declared: record.declared,
            });
        }
        if content_type != record.content_type {
            return Err(PutRefused::WrongType);
        }
        let Ok(mut receiving) = self.receiving.lock() else {
            return Err(PutRefused::Unavailable);
        };
        if !receiving.insert(id.clone()) {
            return Err(PutRefused::AlreadyUploaded);
        }
        drop(receiving);
        let file = match dir.begin(&id) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(error = %e, "FILES_DIR refused an upload");
                self.done_receiving(&id);
                return Err(PutRefused::Unavailable);
            }
        };
        let (chunks, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let (done_tx, done) = oneshot::channel();
        let state = self.clone();
        tokio::spawn(async move {
            let mut file = file;
            let mut result = Ok(());
            loop {
                let chunk = std::future::poll_fn(|cx| match Pin::new(&mut rx).poll_next(cx) {
                    Poll::Ready(c) => Poll::Ready(c),
                    Poll::Pending => Poll::Pending,
                })
                .await;
                let Some(chunk) = chunk else { break };
                if file.written() + chunk.len() as u64 > length {
                    result = Err(PutRefused::TooLarge {
                        declared: record.declared,
                    });
                    break;
                }
                if let Err(e) = file.write(&chunk) {
                    tracing::warn!(error = %e, "writing an upload failed");
                    result = Err(PutRefused::Unavailable);
                    break;
                }
            }
            let answer = match result {
                Err(e) => Err(e),
                Ok(()) if file.written() != length => Err(PutRefused::Incomplete),
                Ok(()) => state.keep(file, record),
            };
            state.done_receiving(&id);
            let _ = done_tx.send(answer);
        });
        Ok(Upload { chunks, done })
    }

    /// The last byte of a local upload arrived: the file becomes whole, its record says so.
    fn keep(
        &self,
        file: crate::local::Receiving,
        mut record: FileRecord,
    ) -> Result<u64, PutRefused> {
        let Store::Local(dir) = &self.store else {
            return Err(PutRefused::Unavailable);
        };
        let size = file.finish().map_err(|e| {
            tracing::warn!(error = %e, "finishing an upload failed");
            PutRefused::Unavailable
        })?;
        record.stored = Some(size);
        dir.write_record(&record).map_err(|e| {
            tracing::warn!(error = %e, "writing an upload's record failed");
            PutRefused::Unavailable
        })?;
        FileStats::add(&self.stats.stored, 1);
        FileStats::add(&self.stats.stored_bytes, size);
        self.remember(record);
        Ok(size)
    }

    fn done_receiving(&self, id: &str) {
        if let Ok(mut r) = self.receiving.lock() {
            r.remove(id);
        }
    }
}
