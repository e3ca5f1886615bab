//! Password hashing off the worker threads: argon2id costs tens of milliseconds by design,
//! so it runs on a thread of its own behind a bounded queue; a worker sends a job and
//! awaits the answer, serving its other connections meanwhile.

use std::sync::mpsc::{self, SyncSender, TrySendError};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use futures_channel::oneshot;
use password_hash::rand_core::OsRng;
use password_hash::SaltString;

/// Jobs waiting at most: beyond it a request is answered `503 busy` at once.
pub const QUEUE: usize = 64;

/// argon2id with OWASP's first recommended setting: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    // Constant, valid parameters: the fallback is never taken.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

enum Job {
    Hash(String, oneshot::Sender<Option<String>>),
    /// `None`: no such account; the password is checked against a dummy hash, so that
    /// the answer takes as long as for a wrong password.
    Verify(String, Option<String>, oneshot::Sender<bool>),
}

/// The queue to the hashing thread.
pub struct Hasher {
    jobs: SyncSender<Job>,
}

/// The hashing thread's queue is full, or it is gone.
#[derive(Debug)]
pub struct Busy;

impl Hasher {
    /// Starts the hashing thread.
    pub fn start() -> std::io::Result<Hasher> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("hubbub-accounts".into())
            .spawn(move || {
                let argon2 = argon2();
                let dummy = hash_with(&argon2, "hubbub: no such account").unwrap_or_default();
                for job in rx {
                    match job {
                        Job::Hash(password, reply) => {
                            let _ = reply.send(hash_with(&argon2, &password));
                        }
                        Job::Verify(password, stored, reply) => {
                            let known = stored.is_some();
                            let phc = stored.unwrap_or_else(|| dummy.clone());
                            let ok = PasswordHash::new(&phc).is_ok_and(|h| {
                                argon2.verify_password(password.as_bytes(), &h).is_ok()
                            });
                            let _ = reply.send(ok && known);
                        }
                    }
                }
            })?;
        Ok(Hasher { jobs })
    }

    /// The PHC string of a new salted hash of `password` (`None` if hashing failed).
    pub async fn hash(&self, password: String) -> Result<Option<String>, Busy> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Hash(password, tx))?;
        rx.await.map_err(|_| Busy)
    }

    /// Whether `password` matches `stored` (always `false` for `None`, after as long).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Verify(password, stored, tx))?;
        rx.await.map_err(|_| Busy)
    }

    fn send(&self, job: Job) -> Result<(), Busy> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) | TrySendError::Disconnected(_) => Busy,
        })
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Option<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let h = Hasher::start().unwrap();
        let (a, b) = block_on(async {
            (
                h.hash("correct horse".into()).await.unwrap().unwrap(),
                h.hash("correct horse".into()).await.unwrap().unwrap(),
            )
        });
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(block_on(h.verify("correct horse".into(), Some(a.clone()))).unwrap());
        assert!(!block_on(h.verify("correct hors".into(), Some(a))).unwrap());
        assert!(!block_on(h.verify("anything".into(), None)).unwrap());
        assert!(!block_on(h.verify("x".into(), Some("not a phc string".into()))).unwrap());
    }
}
