//! A connection's token after the upgrade: past its expiry the connection closes, and a
//! v2 `refresh` with a new token for the same user moves the expiry.

use super::*;
use crate::auth::TokenError;

/// The close code of a connection whose token expired (docs/PROTOCOL.md §3).
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;

impl Hub {
    /// A v2 `refresh`: `refreshed` with the new expiry, or an error and no change.
    pub(super) fn refresh(&mut self, now: Now, conn: ConnId, id: Option<u32>, token: &str) {
        if !self.cfg.auth.is_enabled() {
            return self.send_error_v2(conn, ErrorCode::AuthDisabled, id, None);
        }
        let who = match self.cfg.auth.verify(token, now.wall) {
            Ok(who) => who,
            Err(e) => {
                self.counters.refreshes_refused += 1;
                let code = match e {
                    TokenError::Expired => ErrorCode::TokenExpired,
                    _ => ErrorCode::InvalidToken,
                };
                return self.send_error_v2(conn, code, id, None);
            }
        };
        let Some(c) = self.conn_mut(conn) else { return };
        if *c.user != *who.user_id {
            self.counters.refreshes_refused += 1;
            return self.send_error_v2(conn, ErrorCode::Forbidden, id, None);
        }
        c.valid_until = who.valid_until;
        self.counters.refreshes += 1;
        self.scratch.clear();
        protocol::encode_refreshed(&mut self.scratch, id, who.expires_at.to_rfc3339().as_str());
        let frame = Bytes::copy_from_slice(&self.scratch);
        self.out.push_back(Output::Send { conn, frame });
    }
}
