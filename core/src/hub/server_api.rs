//! The server API's actions (`POST /api/server/…`): a message a backend publishes, and a
//! user's connections or subscriptions it ends. Each is an [`Ask`] of the query machinery,
//! so the HTTP client hears the outcome: a publish goes to the room's owner (through the
//! durable gate, like a client's chat message); disconnect and unsubscribe go to every
//! worker, each acting on its own connections.

use super::peer::Part;
use super::*;

/// The close code of a connection the server API disconnected.
pub const CLOSE_DISCONNECTED: u16 = 4002;
/// The close code of a v1 connection whose one room the server API unsubscribed it from.
pub const CLOSE_UNSUBSCRIBED: u16 = 4003;
/// The `reason` of an `unsubscribed` frame the server API caused.
pub const UNSUBSCRIBED_BY_SERVER: &str = "server";

/// Why a publish was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishRefused {
    /// The persistence queue is full and `PERSIST_OVERFLOW=reject`: nothing was broadcast.
    #[error("the persistence queue is full: nothing was broadcast")]
    Overloaded,
    /// The room is shared with other nodes and their sequencer (Redis) could not be
    /// reached: nothing was broadcast.
    #[error("the broker is unreachable: nothing was broadcast")]
    Unavailable,
}

impl Hub {
    /// At the room's owner: sequences, stores and broadcasts a published message.
    pub(super) fn publish(&mut self, now: Now, p: &protocol::PublishRequest) -> Part {
        let member = Member {
            room: Arc::from(p.room_id.as_str()),
            user: Arc::from(p.user_id.as_str()),
            username: Arc::from(p.username.as_str()),
        };
        let content: Box<str> = p.content.as_str().into();
        match self.accept_message(now, &member, content, Vec::new(), p.kind, None) {
            Ok((_, frame)) => {
                self.counters.published += 1;
                Part::Published(Ok(frame))
            }
            Err(refused) => Part::Published(Err(refused)),
        }
    }

    /// Closes every connection of `user` on this worker; how many.
    pub(super) fn disconnect_user(&mut self, user: &str) -> Part {
        let doomed = self.conns_of(user, |_| true);
        for &conn in &doomed {
            self.close(conn, CLOSE_DISCONNECTED, "disconnected");
        }
        Part::Affected(doomed.len())
    }

    /// Ends every subscription of `user` to `room` on this worker; how many. A v2
    /// subscription ends as if the client had unsubscribed (`unsubscribed` with reason
    /// `server`); a v1 connection, whose room is its only one, is closed.
    pub(super) fn unsubscribe_user(&mut self, now: Now, user: &str, room: &str) -> Part {
        let n = self.end_subscriptions(
            now,
            room,
            Some(user),
            UNSUBSCRIBED_BY_SERVER,
            "unsubscribed",
        );
        Part::Affected(n)
    }

    /// This worker's open connections of `user` that `pick` chooses. A scan of the
    /// worker's connections: these are operator actions, not the chat path, and nothing
    /// is kept per connection for them.
    pub(super) fn conns_of(&self, user: &str, pick: impl Fn(&Conn) -> bool) -> Vec<ConnId> {
        if !self.users.contains_key(user) {
            return Vec::new();
        }
        self.conns_where(|c| *c.user == *user && pick(c))
    }

    /// This worker's open connections that `pick` chooses (a scan, as above).
    pub(super) fn conns_where(&self, pick: impl Fn(&Conn) -> bool) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let c = s.conn.as_ref()?;
                (!c.closing && pick(c)).then_some(ConnId {
                    index: i as u32,
                    generation: s.generation,
                })
            })
            .collect()
    }
}

/// The owner's answer to a publish.
pub(super) fn merge_published(parts: Vec<Part>) -> Answer {
    let published = parts.into_iter().find_map(|p| match p {
        Part::Published(r) => Some(r),
        _ => None,
    });
    // The owner always answers with a `Published` part.
    Answer::Published(published.unwrap_or(Err(PublishRefused::Overloaded)))
}

/// Every worker's count, summed.
pub(super) fn merge_affected(parts: &[Part]) -> Answer {
    let n = parts
        .iter()
        .map(|p| match p {
            Part::Affected(n) => *n,
            _ => 0,
        })
        .sum();
    Answer::Affected(n)
}
