//! v2 sends with files: held on the sender's worker while the embedder's file store is
//! asked about them ([`Output::CheckFiles`]), then sent in the order the connection sent
//! them — a plain send made after one with files waits behind it, so a caption never
//! overtakes its picture.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::output::{ConnId, Output};
use super::{owner_of, peer, Hub, PeerMsg};
use crate::protocol::{Attachment, ErrorCode};
use crate::time::{Mono, Now};

/// Most sends one connection may have waiting for their files to be checked; one more is
/// refused with `rate_limited`.
pub const MAX_HELD_SENDS: usize = 8;

/// What the embedder's file store knows of one file a message names. The hub decides
/// from it ([`FileFacts::decide`]): a file of another room, or one whose bytes have not
/// arrived, is `file_not_found`; stored bytes beyond the declared size are
/// `file_too_large`.
///
/// ```
/// use hubbub_core::{FileFacts, protocol::ErrorCode};
/// let facts = FileFacts {
///     room: "dev".into(),
///     name: "cat.png".into(),
///     content_type: "image/png".into(),
///     declared: 100,
///     stored: Some(100),
/// };
/// assert_eq!(facts.clone().decide("f1", "dev").unwrap().size, 100);
/// assert_eq!(facts.clone().decide("f1", "ops"), Err(ErrorCode::FileNotFound));
/// let lying = FileFacts { stored: Some(101), ..facts };
/// assert_eq!(lying.decide("f1", "dev"), Err(ErrorCode::FileTooLarge));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// The room it was uploaded to.
    pub room: String,
    /// Its name, as the uploader gave it.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// The size its upload declared.
    pub declared: u64,
    /// The size of what was stored, or `None` while nothing was.
    pub stored: Option<u64>,
}

impl FileFacts {
    /// The attachment a message in `room` may carry as `file_id`, or why not.
    pub fn decide(self, file_id: &str, room: &str) -> Result<Attachment, ErrorCode> {
        let Some(size) = self.stored.filter(|_| self.room == room) else {
            return Err(ErrorCode::FileNotFound);
        };
        if size > self.declared {
            return Err(ErrorCode::FileTooLarge);
        }
        Ok(Attachment {
            file_id: file_id.to_owned(),
            name: self.name,
            content_type: self.content_type,
            size,
        })
    }
}

/// One v2 send waiting on this worker.
#[derive(Debug)]
struct Held {
    /// The file check it waits for; `None` once answered (or for a plain send behind one).
    check: Option<u64>,
    id: Option<u32>,
    room: Arc<str>,
    content: Box<str>,
    client_msg_id: Option<Box<str>>,
    files: Vec<Box<str>>,
    attachments: Vec<Attachment>,
    received: Mono,
}

/// The held sends of a worker's connections (only connections that sent files have an
/// entry: nothing per idle connection).
#[derive(Debug, Default)]
pub(crate) struct HeldSends {
    by_conn: HashMap<ConnId, VecDeque<Held>>,
    checks: HashMap<u64, ConnId>,
    next_check: u64,
}

impl HeldSends {
    /// Nothing is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty() && self.checks.is_empty()
    }

    /// Forgets what `conn` had waiting (it closed).
    pub fn forget(&mut self, conn: ConnId) {
        if let Some(queue) = self.by_conn.remove(&conn) {
            for held in queue {
                if let Some(check) = held.check {
                    self.checks.remove(&check);
                }
            }
        }
    }
}

/// A v2 chat send as the connection's worker read it.
pub(crate) struct ChatSend<'a> {
    pub id: Option<u32>,
    pub room: Arc<str>,
    pub content: &'a str,
    pub client_msg_id: Option<&'a str>,
    pub files: Vec<Box<str>>,
}

impl Hub {
    /// Sends `chat` from `conn` to its room's owner, or holds it while its files are
    /// checked (or while an earlier send of `conn` is held).
    pub(super) fn send_chat_v2(&mut self, now: Now, conn: ConnId, chat: ChatSend<'_>) {
        // Almost always nothing is held anywhere: no lookup then.
        let waiting = if self.held.by_conn.is_empty() {
            0
        } else {
            self.held.by_conn.get(&conn).map_or(0, VecDeque::len)
        };
        if chat.files.is_empty() && waiting == 0 {
            let submit_v2 = peer::SubmitV2 {
                id: chat.id,
                client_msg_id: chat.client_msg_id.map(Into::into),
                attachments: Vec::new(),
            };
            return self.submit_v2(
                now,
                conn,
                &chat.room,
                chat.content.into(),
                submit_v2,
                now.mono,
            );
        }
        if waiting >= MAX_HELD_SENDS {
            self.counters.rate_limited += 1;
            return self.send_error_v2(conn, ErrorCode::RateLimited, chat.id, Some(&chat.room));
        }
        let check = (!chat.files.is_empty()).then(|| {
            self.held.next_check += 1;
            self.held.next_check
        });
        if let Some(check) = check {
            self.held.checks.insert(check, conn);
            self.out.push_back(Output::CheckFiles {
                id: check,
                room: chat.room.clone(),
                files: chat.files.clone(),
            });
        }
        self.held.by_conn.entry(conn).or_default().push_back(Held {
            check,
            id: chat.id,
            room: chat.room,
            content: chat.content.into(),
            client_msg_id: chat.client_msg_id.map(Into::into),
            files: chat.files,
            attachments: Vec::new(),
            received: now.mono,
        });
    }

    /// The answer to [`Output::CheckFiles`] `id`: for each file it named, in order, what
    /// the file store knows of it (`None`: nothing), or `None` if the store could not
    /// answer. The send is refused (`file_not_found`, `file_too_large`,
    /// `files_unavailable`) or goes to the room, after the sends held before it.
    pub fn handle_files_checked(
        &mut self,
        now: Now,
        id: u64,
        facts: Option<Vec<Option<FileFacts>>>,
    ) {
        let Some(conn) = self.held.checks.remove(&id) else {
            return;
        };
        let Some(queue) = self.held.by_conn.get_mut(&conn) else {
            return;
        };
        let Some(at) = queue.iter().position(|h| h.check == Some(id)) else {
            return;
        };
        let held = &mut queue[at];
        let decided = match facts {
            Some(facts) if facts.len() == held.files.len() => held
                .files
                .iter()
                .zip(facts)
                .map(|(file, facts)| match facts {
                    Some(facts) => facts.decide(file, &held.room),
                    None => Err(ErrorCode::FileNotFound),
                })
                .collect::<Result<Vec<_>, _>>(),
            _ => Err(ErrorCode::FilesUnavailable),
        };
        match decided {
            Ok(attachments) => {
                held.check = None;
                held.attachments = attachments;
            }
            Err(code) => {
                let (room, request) = (held.room.clone(), held.id);
                queue.remove(at);
                self.counters.rejected += 1;
                self.send_error_v2(conn, code, request, Some(&room));
            }
        }
        self.release_held(now, conn);
    }

    /// Sends `conn`'s held sends whose files are checked, in order, up to the first
    /// still waiting.
    fn release_held(&mut self, now: Now, conn: ConnId) {
        loop {
            let Some(queue) = self.held.by_conn.get_mut(&conn) else {
                return;
            };
            if queue.front().is_none_or(|h| h.check.is_some()) {
                if queue.is_empty() {
                    self.held.by_conn.remove(&conn);
                }
                return;
            }
            let Some(held) = queue.pop_front() else {
                return;
            };
            // It may have left the room while its files were checked.
            if self.sub_room(conn, &held.room).is_none() {
                self.send_error_v2(conn, ErrorCode::NotSubscribed, held.id, Some(&held.room));
                continue;
            }
            let submit_v2 = peer::SubmitV2 {
                id: held.id,
                client_msg_id: held.client_msg_id,
                attachments: held.attachments,
            };
            self.submit_v2(
                now,
                conn,
                &held.room,
                held.content,
                submit_v2,
                held.received,
            );
        }
    }

    /// Hands a v2 send to its room's owner.
    fn submit_v2(
        &mut self,
        now: Now,
        conn: ConnId,
        room: &Arc<str>,
        content: Box<str>,
        v2: peer::SubmitV2,
        received: Mono,
    ) {
        let Some(c) = self.conn_mut(conn) else { return };
        let member = c.member(room);
        let submit = peer::Submit {
            from: self.cfg.worker,
            conn,
            member,
            content,
            received,
            v2: Some(v2),
        };
        let owner = owner_of(room, self.cfg.workers);
        self.dispatch(now, owner, PeerMsg::Submit(submit));
    }
}
