//! `FILES_S3_BUCKET`: presigned PUT and GET URLs, and HeadObject to see what landed.
//! The record rides along as object metadata, so a node that never saw the upload (or
//! restarted) still knows the file's room, name and declared size.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::record::FileRecord;

/// Where and how to reach the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// A non-AWS endpoint (`http://127.0.0.1:9000`); path-style addressing then.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
}

/// A presigned request for the client to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// `PUT` or `GET`.
    pub method: &'static str,
    /// The URL.
    pub url: String,
    /// Headers the client must send as they are (they are signed).
    pub headers: Vec<(String, String)>,
}

/// Why S3 did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3: {0}")]
pub struct S3Error(pub String);

/// The bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

const META_ROOM: &str = "hubbub-room";
const META_UPLOADER: &str = "hubbub-uploader";
const META_NAME: &str = "hubbub-name";
const META_DECLARED: &str = "hubbub-declared";

impl S3Store {
    /// A client for `cfg`, with the standard AWS credential chain (env first).
    pub async fn connect(cfg: &S3Config) -> S3Store {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .http_client(http)
            .load()
            .await;
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk).timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .build(),
        );
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint).force_path_style(true);
        }
        S3Store {
            client: Client::from_conf(builder.build()),
            bucket: cfg.bucket.clone(),
        }
    }

    /// The URL to PUT `record`'s bytes to: its type, length and metadata are signed.
    pub async fn presign_put(
        &self,
        record: &FileRecord,
        ttl: Duration,
    ) -> Result<Presigned, S3Error> {
        let cfg = PresigningConfig::expires_in(ttl).map_err(|e| S3Error(e.to_string()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&record.file_id)
            .content_type(&record.content_type)
            .content_length(i64::try_from(record.declared).unwrap_or(i64::MAX))
            .metadata(META_ROOM, &record.room)
            .metadata(META_UPLOADER, &record.uploader)
            .metadata(META_NAME, URL_SAFE_NO_PAD.encode(&record.name))
            .metadata(META_DECLARED, record.declared.to_string())
            .presigned(cfg)
            .await
            .map_err(|e| S3Error(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(Presigned {
            method: "PUT",
            url: req.uri().to_owned(),
            headers: req
                .headers()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    /// A URL to GET `record`'s bytes, named as uploaded.
    pub async fn presign_get(&self, record: &FileRecord, ttl: Duration) -> Result<String, S3Error> {
        let cfg = PresigningConfig::expires_in(ttl).map_err(|e| S3Error(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&record.file_id)
            .response_content_disposition(crate::disposition(record))
            .response_content_type(&record.content_type)
            .presigned(cfg)
            .await
            .map_err(|e| S3Error(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(req.uri().to_owned())
    }

    /// What the bucket holds under `id`: its size and the record its metadata carries
    /// (`Ok(None)`: nothing there).
    pub async fn head(&self, id: &str) -> Result<Option<(u64, Option<FileRecord>)>, S3Error> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(id)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                    return Ok(None);
                }
                return Err(S3Error(
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                ));
            }
        };
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        let record = out
            .metadata()
            .and_then(|m| record_of(id, m, out.content_type()));
        Ok(Some((size, record)))
    }

    /// Removes `id` (a file refused after it landed).
    pub async fn delete(&self, id: &str) -> Result<(), S3Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| S3Error(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))
    }
}

fn record_of(
    id: &str,
    meta: &HashMap<String, String>,
    content_type: Option<&str>,
) -> Option<FileRecord> {
    let name = URL_SAFE_NO_PAD.decode(meta.get(META_NAME)?).ok()?;
    Some(FileRecord {
        file_id: id.to_owned(),
        room: meta.get(META_ROOM)?.clone(),
        uploader: meta.get(META_UPLOADER)?.clone(),
        name: String::from_utf8(name).ok()?,
        content_type: crate::limits::essence(content_type?),
        declared: meta.get(META_DECLARED)?.parse().ok()?,
        stored: None,
    })
}
