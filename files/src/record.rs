//! What hubbub knows of one file, and the bounded memory of those it has seen.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// One upload: asked for, then (once its bytes landed) stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    /// Its id (a UUID).
    pub file_id: String,
    /// The room it was uploaded to.
    pub room: String,
    /// Who uploaded it (a user id, or the address of a caller without a token).
    pub uploader: String,
    /// Its name.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// The size its upload declared.
    pub declared: u64,
    /// The size of what was stored, once it was.
    pub stored: Option<u64>,
}

impl FileRecord {
    /// What the hub decides a message's attachment from.
    pub fn facts(&self) -> hubbub_core::FileFacts {
        hubbub_core::FileFacts {
            room: self.room.clone(),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            declared: self.declared,
            stored: self.stored,
        }
    }
}

/// The newest records, by id, at most `cap` (older ones are read again from the store).
#[derive(Debug)]
pub(crate) struct Catalog {
    by_id: HashMap<String, FileRecord>,
    order: VecDeque<String>,
    cap: usize,
}

impl Catalog {
    pub fn new(cap: usize) -> Catalog {
        Catalog {
            by_id: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub fn get(&self, id: &str) -> Option<&FileRecord> {
        self.by_id.get(id)
    }

    pub fn insert(&mut self, record: FileRecord) {
        let id = record.file_id.clone();
        if self.by_id.insert(id.clone(), record).is_none() {
            self.order.push_back(id);
        }
        while self.by_id.len() > self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(&old);
        }
    }
}

/// Is `id` one the server made (a hyphenated UUID)? Nothing else reaches a path or a key.
pub fn valid_file_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> FileRecord {
        FileRecord {
            file_id: id.into(),
            room: "r".into(),
            uploader: "u".into(),
            name: "n".into(),
            content_type: "text/plain".into(),
            declared: 1,
            stored: None,
        }
    }

    #[test]
    fn the_catalog_keeps_the_newest() {
        let mut c = Catalog::new(2);
        for id in ["a", "b", "c"] {
            c.insert(record(id));
        }
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some() && c.get("c").is_some());
        c.insert(record("c"));
        assert!(
            c.get("b").is_some(),
            "a record updated in place keeps its place"
        );
    }

    #[test]
    fn ids() {
        assert!(valid_file_id(&uuid::Uuid::new_v4().to_string()));
        for bad in [
            "",
            "../../etc/passwd",
            "0195d0c6-0000-7000-8000-00000000000/",
        ] {
            assert!(!valid_file_id(bad), "{bad}");
        }
    }
}
