//! The WebSocket upgrade: admitted or refused by the hub; once the 101 is out, the
//! worker's session table takes the connection over (see `worker::sessions`).

use std::rc::Rc;

use hubbub_core::connect::UpgradeRequest;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use crate::http::request::Head;
use crate::http::response::Response;
use crate::worker::Worker;

/// Completes (or refuses) the upgrade, then runs the connection until it closes.
pub async fn upgrade(worker: Rc<Worker>, mut stream: TcpStream, head: Head, rest: Vec<u8>) {
    let request = UpgradeRequest {
        query: &head.query,
        origin: head.origin.as_deref(),
        authorization: head.authorization.as_deref(),
    };
    let key = match (&head.websocket_key, head.websocket_version.as_deref()) {
        (Some(key), Some("13")) => key.clone(),
        _ => {
            let r = Response::error(
                400,
                "bad_upgrade",
                "a WebSocket upgrade needs Sec-WebSocket-Key and version 13",
            )
            .header("Sec-WebSocket-Version", "13");
            let _ = stream.write_all(r.encode(false, false)).await;
            return;
        }
    };
    let admission = worker.with_hub(|hub, now| hub.admit(now, &request));
    let admission = match admission {
        Ok(a) => a,
        Err(refusal) => {
            tracing::debug!(
                status = refusal.status(),
                code = refusal.code(),
                "upgrade refused"
            );
            let r = Response::json(refusal.status(), refusal.body());
            let _ = stream.write_all(r.encode(false, false)).await;
            return;
        }
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nServer: hubbub\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.into_bytes()).await.0.is_err() {
        return;
    }
    let opened = worker.with_hub(|hub, now| {
        let conn = hub.handle_open(now, admission);
        match worker.attach(stream, conn) {
            Ok(()) => Some(conn),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch a new connection; closing it");
                hub.handle_close(now, conn);
                None
            }
        }
    });
    // From here the worker's session table owns the connection; this task (and the
    // request head it holds) ends.
    if let Some(conn) = opened {
        if !rest.is_empty() {
            let mut rest = rest;
            worker.receive_early(conn, &mut rest);
        }
    }
}
