//! The embedded store: files in a directory, each `{id}` beside `{id}.json` (its
//! record), written as `{id}.part` until the last byte arrived.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::record::FileRecord;

/// A directory of files.
#[derive(Debug, Clone)]
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    /// Uses `dir`, making it if needed.
    pub fn open(dir: &Path) -> std::io::Result<LocalDir> {
        std::fs::create_dir_all(dir)?;
        Ok(LocalDir {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}{ext}"))
    }

    /// Writes `record` beside its file (atomically: a crash leaves the old one or the new).
    pub fn write_record(&self, record: &FileRecord) -> std::io::Result<()> {
        let tmp = self.path(&record.file_id, ".json.tmp");
        let body = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, body)?;
        std::fs::rename(tmp, self.path(&record.file_id, ".json"))
    }

    /// The record of `id`, if it has one.
    pub fn read_record(&self, id: &str) -> Option<FileRecord> {
        let raw = std::fs::read(self.path(id, ".json")).ok()?;
        serde_json::from_slice(&raw).ok()
    }

    /// Starts receiving `id`'s bytes.
    pub fn begin(&self, id: &str) -> std::io::Result<Receiving> {
        let part = self.path(id, ".part");
        let file = std::fs::File::create(&part)?;
        Ok(Receiving {
            file: Some(file),
            part,
            done: self.path(id, ""),
            written: 0,
        })
    }

    /// The bytes of `id`.
    pub fn read(&self, id: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(id, ""))
    }
}

/// A file being written; dropped before [`Receiving::finish`], it leaves nothing.
#[derive(Debug)]
pub struct Receiving {
    file: Option<std::fs::File>,
    part: PathBuf,
    done: PathBuf,
    written: u64,
}

impl Receiving {
    /// Appends `chunk`.
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(chunk)?,
            None => return Err(std::io::Error::other("already finished")),
        }
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the file whole under its name; returns its size.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if let Some(f) = self.file.take() {
            f.sync_data()?;
        }
        std::fs::rename(&self.part, &self.done)?;
        Ok(self.written)
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_whole_or_absent() {
        let tmp = std::env::temp_dir().join(format!("hubbub-files-{}", uuid::Uuid::new_v4()));
        let d = LocalDir::open(&tmp).unwrap();
        let mut r = d.begin("a").unwrap();
        r.write(b"half").unwrap();
        drop(r);
        assert!(d.read("a").is_err());
        assert!(
            !tmp.join("a.part").exists(),
            "an unfinished upload leaves nothing"
        );
        let mut r = d.begin("a").unwrap();
        r.write(b"whole").unwrap();
        assert_eq!(r.finish().unwrap(), 5);
        assert_eq!(d.read("a").unwrap(), b"whole");
        std::fs::remove_dir_all(tmp).unwrap();
    }
}
