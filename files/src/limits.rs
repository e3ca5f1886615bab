//! What an upload may be: its name, type and size, and the uploader's hourly quota
//! (docs/PROTOCOL.md §4.7).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// The types accepted when `FILES_ALLOWED_TYPES` is not set: pictures, PDF, plain text,
/// archives, common audio and video — nothing a browser would run (no HTML, no SVG).
pub const DEFAULT_ALLOWED_TYPES: &str =
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,application/zip,audio/mpeg,video/mp4";

/// Largest file when `MAX_FILE_BYTES` is not set: 10 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Bytes one uploader may declare per clock hour when `FILES_QUOTA_BYTES_PER_HOUR` is not
/// set: 100 MiB.
pub const DEFAULT_QUOTA_BYTES_PER_HOUR: u64 = 100 * 1024 * 1024;

/// Most characters of a file's name.
pub const MAX_NAME_CHARS: usize = 255;

/// The limits of a node's file sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// The MIME types accepted (lower case, without parameters).
    pub allowed_types: Vec<String>,
    /// Bytes one uploader may declare per clock hour.
    pub quota_bytes_per_hour: u64,
    /// How long an upload or download URL stays valid.
    pub url_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            allowed_types: parse_types(DEFAULT_ALLOWED_TYPES).unwrap_or_default(),
            quota_bytes_per_hour: DEFAULT_QUOTA_BYTES_PER_HOUR,
            url_ttl: Duration::from_secs(300),
        }
    }
}

/// A comma-separated list of MIME types (`type/subtype`), lower-cased; `Err` names the
/// first entry that is not one.
///
/// ```
/// use hubbub_files::parse_types;
/// assert_eq!(parse_types("image/PNG, text/plain").unwrap(), ["image/png", "text/plain"]);
/// assert_eq!(parse_types("png").unwrap_err(), "png");
/// ```
pub fn parse_types(raw: &str) -> Result<Vec<String>, String> {
    let mut types = Vec::new();
    for t in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let ok = t.split_once('/').is_some_and(|(a, b)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
            };
            token(a) && token(b)
        });
        if !ok {
            return Err(t.to_owned());
        }
        types.push(t.to_ascii_lowercase());
    }
    if types.is_empty() {
        return Err(raw.to_owned());
    }
    Ok(types)
}

/// The body of `POST /api/rooms/{id}/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadBody {
    /// The file's name.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Why an upload is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    /// The body is not `{"name","contentType","size"}` (400 `invalid_body`).
    #[error("the body must be {{\"name\":\"...\",\"contentType\":\"...\",\"size\":N}}")]
    InvalidBody,
    /// The name is empty, too long, or holds a control character or a slash (400).
    #[error("name must be 1 to 255 characters, without control characters or slashes")]
    InvalidName,
    /// `size` is 0 (400 `invalid_size`).
    #[error("size must be at least 1 byte")]
    InvalidSize,
    /// Over `MAX_FILE_BYTES` (413 `file_too_large`).
    #[error("files are at most {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// Not in the allowlist (415 `unsupported_type`).
    #[error("files of type {0:?} are not accepted")]
    UnsupportedType(String),
    /// The uploader's hourly quota would be passed (429 `upload_quota_exceeded`).
    #[error("the hourly upload quota is used up; retry in {retry_after_secs} s")]
    QuotaExceeded {
        /// Seconds until the next hour.
        retry_after_secs: u64,
    },
    /// The file store did not answer (503 `files_unavailable`).
    #[error("the file store is unavailable; retry later")]
    Unavailable,
}

impl UploadRefused {
    /// The HTTP status and error code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            UploadRefused::InvalidBody => (400, "invalid_body"),
            UploadRefused::InvalidName => (400, "invalid_name"),
            UploadRefused::InvalidSize => (400, "invalid_size"),
            UploadRefused::TooLarge { .. } => (413, "file_too_large"),
            UploadRefused::UnsupportedType(_) => (415, "unsupported_type"),
            UploadRefused::QuotaExceeded { .. } => (429, "upload_quota_exceeded"),
            UploadRefused::Unavailable => (503, "files_unavailable"),
        }
    }
}

impl UploadBody {
    /// Decodes and checks a body against `limits` (the quota is the service's).
    ///
    /// ```
    /// use hubbub_files::{Limits, UploadBody, UploadRefused};
    /// let l = Limits::default();
    /// let b = UploadBody::decode(br#"{"name":"a.png","contentType":"image/png","size":5}"#, &l).unwrap();
    /// assert_eq!(b.size, 5);
    /// let e = UploadBody::decode(br#"{"name":"a.svg","contentType":"image/svg+xml","size":5}"#, &l);
    /// assert!(matches!(e, Err(UploadRefused::UnsupportedType(_))));
    /// ```
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<UploadBody, UploadRefused> {
        let mut body: UploadBody =
            serde_json::from_slice(bytes).map_err(|_| UploadRefused::InvalidBody)?;
        let n = body.name.chars().count();
        if n == 0
            || n > MAX_NAME_CHARS
            || body
                .name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(UploadRefused::InvalidName);
        }
        if body.size == 0 {
            return Err(UploadRefused::InvalidSize);
        }
        if body.size > limits.max_file_bytes {
            return Err(UploadRefused::TooLarge {
                max: limits.max_file_bytes,
            });
        }
        let essence = essence(&body.content_type);
        if !limits.allowed_types.contains(&essence) {
            return Err(UploadRefused::UnsupportedType(body.content_type));
        }
        body.content_type = essence;
        Ok(body)
    }
}

/// A MIME type without its parameters, lower-cased: `Text/Plain; charset=utf-8` is
/// `text/plain`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Bytes declared per uploader in the current clock hour.
#[derive(Debug, Default)]
pub(crate) struct Quota {
    used: HashMap<String, (u64, u64)>,
}

/// Entries kept before the old hours are swept.
const QUOTA_SWEEP_AT: usize = 10_000;

impl Quota {
    /// Counts `bytes` for `who` at `now_secs` (Unix), or says when to retry.
    pub fn take(&mut self, who: &str, bytes: u64, per_hour: u64, now_secs: u64) -> Result<(), u64> {
        let hour = now_secs / 3600;
        if self.used.len() >= QUOTA_SWEEP_AT {
            self.used.retain(|_, (h, _)| *h == hour);
        }
        let entry = self.used.entry(who.to_owned()).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        if entry.1.saturating_add(bytes) > per_hour {
            return Err((hour + 1) * 3600 - now_secs);
        }
        entry.1 += bytes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let l = Limits::default();
        let d = |raw: &str| UploadBody::decode(raw.as_bytes(), &l);
        let ok = d(r#"{"name":"r.pdf","contentType":"Application/PDF; x=1","size":10485760}"#);
        assert_eq!(ok.unwrap().content_type, "application/pdf");
        assert_eq!(
            d(r#"{"name":"r.pdf","contentType":"application/pdf","size":10485761}"#),
            Err(UploadRefused::TooLarge { max: 10485760 })
        );
        for (raw, want) in [
            (
                r#"{"name":"","contentType":"text/plain","size":1}"#,
                UploadRefused::InvalidName,
            ),
            (
                r#"{"name":"../x","contentType":"text/plain","size":1}"#,
                UploadRefused::InvalidName,
            ),
            (
                r#"{"name":"a\nb","contentType":"text/plain","size":1}"#,
                UploadRefused::InvalidName,
            ),
            (
                r#"{"name":"a","contentType":"text/plain","size":0}"#,
                UploadRefused::InvalidSize,
            ),
            (
                r#"{"name":"a","contentType":"text/plain","size":-1}"#,
                UploadRefused::InvalidBody,
            ),
            (r#"{"name":"a","size":1}"#, UploadRefused::InvalidBody),
            (r#"[]"#, UploadRefused::InvalidBody),
        ] {
            assert_eq!(d(raw), Err(want), "{raw}");
        }
        let long = format!(
            r#"{{"name":"{}","contentType":"text/plain","size":1}}"#,
            "é".repeat(256)
        );
        assert_eq!(d(&long), Err(UploadRefused::InvalidName));
        assert!(matches!(
            d(r#"{"name":"a.html","contentType":"text/html","size":1}"#),
            Err(UploadRefused::UnsupportedType(_))
        ));
    }

    #[test]
    fn quota_is_per_uploader_and_per_clock_hour() {
        let mut q = Quota::default();
        let hour = 500_000 * 3600;
        assert_eq!(q.take("a", 60, 100, hour + 10), Ok(()));
        assert_eq!(q.take("a", 41, 100, hour + 20), Err(3580));
        assert_eq!(q.take("b", 100, 100, hour + 20), Ok(()));
        assert_eq!(q.take("a", 40, 100, hour + 30), Ok(()));
        assert_eq!(q.take("a", 100, 100, hour + 3600), Ok(()), "a new hour");
    }

    #[test]
    fn type_lists() {
        assert!(parse_types("").is_err());
        assert!(parse_types("image/png,").is_ok());
        assert_eq!(parse_types("a/b,/c").unwrap_err(), "/c");
    }
}
