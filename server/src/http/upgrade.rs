//! The WebSocket upgrade: admitted or refused by the hub; once the 101 is out, the
//! engine takes the connection over.

use hubbub_core::upgrade::UpgradeRequest;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::request::Head;
use super::response::Response;
use super::Context;

/// Completes (or refuses) the upgrade and hands the connection to the engine.
pub(crate) async fn upgrade(ctx: Context, mut stream: TcpStream, head: Head, rest: Vec<u8>) {
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
    let admission = ctx.engine.admit(&request);
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
    // From here the engine owns the connection; this task (and the request head it
    // holds) ends.
    ctx.engine.open(admission, stream, rest);
}
