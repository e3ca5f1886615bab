//! File sharing over HTTP (docs/PROTOCOL.md §4.7): `POST /api/rooms/{id}/uploads`,
//! `GET /api/files/{id}` (302 to a short-lived URL), and with the local store the signed
//! `PUT`/`GET /api/files/{id}/content`. Limits are checked where the bytes land: a PUT
//! longer than its upload declared is refused before a byte of it is read.

use std::time::{Duration, SystemTime};

use hubbub_files::{Files, PutRefused, UploadBody, UploadRefused, UrlRefused};
use monoio::io::AsyncReadRent;
use monoio::net::TcpStream;
use serde::Serialize;

use super::access::Caller;
use super::request::Head;
use super::response::Response;
use super::{rooms, Context};

/// A PUT whose client sends nothing for this long is ended (its partial file removed).
const BODY_IDLE: Duration = Duration::from_secs(30);
/// What one read of an upload takes from the socket.
const CHUNK: usize = 64 * 1024;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn files(ctx: &Context) -> Result<&Files, Response> {
    ctx.site
        .files
        .as_ref()
        .ok_or_else(|| Response::error(404, "files_disabled", "file sharing is off (FILES=off)"))
}

/// The file id of `/api/files/{id}/content`, if `path` is that.
pub(crate) fn content_path(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/api/files/")?.strip_suffix("/content")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn query<'a>(head: &'a Head, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(head.query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A 413 `file_too_large` that says its limit as a number too (`maxBytes`), so a client
/// need not read it out of the sentence.
fn too_large(max: u64, message: &str) -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
        max_bytes: u64,
    }
    let body = Body {
        error: "file_too_large",
        message,
        max_bytes: max,
    };
    match sonic_rs::to_vec(&body) {
        Ok(json) => Response::json(413, json),
        Err(_) => Response::error(413, "file_too_large", message),
    }
}

fn upload_refusal(e: &UploadRefused) -> Response {
    let (status, code) = e.status_and_code();
    match e {
        UploadRefused::QuotaExceeded { retry_after_secs } => {
            Response::error(status, code, &e.to_string())
                .header("Retry-After", &retry_after_secs.to_string())
        }
        UploadRefused::TooLarge { max } => too_large(*max, &e.to_string()),
        _ => Response::error(status, code, &e.to_string()),
    }
}

fn put_refusal(e: PutRefused) -> Response {
    if let PutRefused::TooLarge { declared } = e {
        return too_large(declared, &e.to_string());
    }
    let (status, code) = match e {
        PutRefused::NotFound => (404, "file_not_found"),
        PutRefused::AlreadyUploaded => (409, "already_uploaded"),
        PutRefused::TooLarge { .. } => (413, "file_too_large"),
        PutRefused::WrongType => (415, "unsupported_type"),
        PutRefused::Incomplete => (400, "incomplete_body"),
        PutRefused::Unavailable => (503, "files_unavailable"),
    };
    Response::error(status, code, &e.to_string())
}

fn url_refusal(e: UrlRefused) -> Response {
    let code = match e {
        UrlRefused::Expired => "url_expired",
        UrlRefused::BadSignature => "bad_signature",
    };
    Response::error(403, code, &e.to_string())
}

/// `POST /api/rooms/{id}/uploads`: a caller who may read the room asks to upload a file.
pub(crate) async fn upload(ctx: &Context, head: &Head, room: String, body: &[u8]) -> Response {
    let files = match files(ctx) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let caller = match Caller::of(&ctx.site, head) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let uploader = match &caller {
        Caller::User(who) => who.user_id.clone(),
        Caller::Operator => "operator".to_owned(),
        // Without auth the address stands for the uploader, for the quota.
        Caller::Open => format!(
            "address:{}",
            head.peer.map_or("unknown".into(), |p| p.to_string())
        ),
        Caller::Anonymous => return super::access::token_required(),
    };
    if !hubbub_core::upgrade::valid_room(&room) {
        return Response::error(
            400,
            "invalid_room",
            hubbub_core::protocol::ErrorCode::InvalidRoom.message(),
        );
    }
    let asked = match UploadBody::decode(body, files.limits()) {
        Ok(b) => b,
        Err(e) => return upload_refusal(&e),
    };
    if let Err(refused) = rooms::may_read(ctx, caller, &room).await {
        return refused;
    }
    match files.prepare(room, uploader, asked, now_secs()).await {
        Ok(ticket) => {
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Body<'a> {
                file_id: &'a str,
                method: &'a str,
                url: &'a str,
                headers: std::collections::BTreeMap<&'a str, &'a str>,
                expires_at: &'a str,
            }
            let expires_at = hubbub_core::UnixMillis(ticket.expires * 1000).to_rfc3339();
            let body = Body {
                file_id: &ticket.file_id,
                method: ticket.method,
                url: &ticket.url,
                headers: ticket
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                expires_at: expires_at.as_str(),
            };
            match sonic_rs::to_vec(&body) {
                Ok(json) => Response::json(201, json),
                Err(_) => Response::error(500, "internal", "the answer could not be encoded"),
            }
        }
        Err(e) => upload_refusal(&e),
    }
}

/// `GET /api/files/{id}`: 302 to a short-lived URL of the file, for a caller who may
/// read its room.
pub(crate) async fn redirect(ctx: &Context, head: &Head, id: &str) -> Response {
    let files = match files(ctx) {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Who asks is checked before anything is said of the file.
    let caller = match Caller::of(&ctx.site, head) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    if let Err(refused) = caller.may_read_rooms() {
        return refused;
    }
    let record = match files.find(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return not_found(),
        Err(e) => return put_refusal(e),
    };
    if let Err(refused) = rooms::may_read(ctx, caller, &record.room).await {
        return refused;
    }
    match files.download_url(record, now_secs()).await {
        Some(url) => Response::json(302, "")
            .header("Location", &url)
            .header("Cache-Control", "no-store"),
        None => put_refusal(PutRefused::Unavailable),
    }
}

fn not_found() -> Response {
    Response::error(
        404,
        "file_not_found",
        "no file with this id (or its upload has not finished)",
    )
}

/// `GET /api/files/{id}/content?expires=&sig=`: the bytes, for a URL this server signed.
pub(crate) async fn content(ctx: &Context, head: &Head, id: &str) -> Response {
    let files = match files(ctx) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (expires, sig) = (query(head, "expires"), query(head, "sig"));
    if let Err(e) = files.verify("GET", id, expires.as_deref(), sig.as_deref(), now_secs()) {
        return url_refusal(e);
    }
    match files.read(id).await {
        Ok(Some((record, bytes))) => Response {
            status: 200,
            content_type: record.content_type.clone().into(),
            headers: String::new(),
            body: bytes.into(),
        }
        .header("Content-Disposition", &hubbub_files::disposition(&record))
        .header("X-Content-Type-Options", "nosniff")
        .header("Content-Security-Policy", "sandbox; default-src 'none'")
        .header("Cache-Control", "private, max-age=300"),
        Ok(None) => not_found(),
        Err(e) => put_refusal(e),
    }
}

/// `PUT /api/files/{id}/content?expires=&sig=`: receives an upload's bytes (`buf` holds
/// what was read past the head). The answer, and whether the connection may go on.
pub(crate) async fn receive(
    ctx: &Context,
    head: &Head,
    id: &str,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> (Response, bool) {
    let files = match files(ctx) {
        Ok(f) => f,
        Err(r) => return (r, false),
    };
    let (expires, sig) = (query(head, "expires"), query(head, "sig"));
    if let Err(e) = files.verify("PUT", id, expires.as_deref(), sig.as_deref(), now_secs()) {
        return (url_refusal(e), false);
    }
    let length = head.content_length as u64;
    if length == 0 {
        let r = Response::error(
            400,
            "incomplete_body",
            "send the file's bytes with a Content-Length",
        );
        return (r, false);
    }
    if length > files.limits().max_file_bytes {
        let e = PutRefused::TooLarge {
            declared: files.limits().max_file_bytes,
        };
        return (put_refusal(e), false);
    }
    let content_type = head.content_type.as_deref().unwrap_or_default();
    let mut upload = match files.begin_put(id, length, content_type).await {
        Ok(u) => u,
        Err(e) => return (put_refusal(e), false),
    };
    let mut left = length as usize;
    let first = buf.len().min(left);
    if first > 0 {
        let chunk: Vec<u8> = buf.drain(..first).collect();
        left -= first;
        if let Err(e) = upload.send(chunk).await {
            return (put_refusal(e), false);
        }
    }
    while left > 0 {
        let read = stream.read(Vec::with_capacity(left.min(CHUNK)));
        let (res, mut chunk) = match monoio::time::timeout(BODY_IDLE, read).await {
            Ok(r) => r,
            Err(_) => return (put_refusal(PutRefused::Incomplete), false),
        };
        match res {
            Ok(0) | Err(_) => return (put_refusal(PutRefused::Incomplete), false),
            Ok(n) => {
                chunk.truncate(n);
                left -= n;
            }
        }
        if let Err(e) = upload.send(chunk).await {
            return (put_refusal(e), false);
        }
    }
    match upload.finish().await {
        Ok(size) => {
            let body = format!(r#"{{"fileId":"{id}","size":{size}}}"#);
            (Response::json(201, body), true)
        }
        Err(e) => (put_refusal(e), false),
    }
}
