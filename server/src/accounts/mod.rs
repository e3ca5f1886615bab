//! Accounts (docs/PROTOCOL.md §4.4): `POST /auth/signup` and `POST /auth/login` answer a
//! JWT signed with `JWT_HS256_SECRET`, which every check of `hubbub_core::auth` then
//! accepts like any other. Passwords are argon2id hashes, made and checked on a thread of
//! their own; failures are throttled per username and per address before any hashing;
//! an unknown user and a wrong password get the same answer after the same work.

pub mod hasher;
mod store;
pub mod throttle;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hubbub_core::UnixMillis;
use hubbub_persist_bridge::StoredAccount;
use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};

use hasher::Hasher;
pub use store::AccountStore;
use throttle::Throttle;

/// An answer, for the HTTP layer to send: its status, JSON body and `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Seconds for `Retry-After`, on a 429 or 503.
    pub retry_after: Option<u64>,
}

impl Reply {
    fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        let mut body = Vec::new();
        hubbub_core::protocol::encode_http_error(&mut body, code, message);
        Reply::json(status, body)
    }

    fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }
}

/// The two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `POST /auth/signup`.
    Signup,
    /// `POST /auth/login`.
    Login,
}

/// What `/metrics` shows of accounts.
#[derive(Debug, Default)]
pub struct AccountFigures {
    /// Accounts created.
    pub signups: AtomicU64,
    /// Successful logins.
    pub logins: AtomicU64,
    /// Logins refused with `bad_credentials`.
    pub login_failures: AtomicU64,
    /// Attempts refused with 429 before any hashing.
    pub throttled: AtomicU64,
}

/// The accounts service, shared by every worker.
pub struct Accounts {
    hasher: Hasher,
    throttle: Mutex<Throttle>,
    store: AccountStore,
    signing: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
    ttl_secs: u64,
    epoch: Instant,
    /// Counters for `/metrics`.
    pub figures: AccountFigures,
}

/// How tokens are made.
pub struct Issuing<'a> {
    /// `JWT_HS256_SECRET`.
    pub secret: &'a [u8],
    /// `JWT_ISSUER`, put in `iss`.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`, put in `aud`.
    pub audience: Option<String>,
    /// `ACCOUNT_TOKEN_TTL_SECS`.
    pub ttl_secs: u64,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    name: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Signed<'a> {
    user_id: &'a str,
    username: &'a str,
    token: &'a str,
    expires_at: &'a str,
}

/// Most characters in a password (more is refused rather than hashed).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A username: 3 to 32 of `A-Z a-z 0-9 _ . -`; its user id is its lower case, so names
/// that differ only in case are one account.
fn user_id_of(username: &str) -> Option<String> {
    let ok = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    ok.then(|| username.to_ascii_lowercase())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Accounts {
    /// Starts the hashing thread.
    pub fn start(issuing: Issuing<'_>, store: AccountStore) -> std::io::Result<Accounts> {
        Ok(Accounts {
            hasher: Hasher::start()?,
            throttle: Mutex::new(Throttle::default()),
            store,
            signing: EncodingKey::from_secret(issuing.secret)
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            issuer: issuing.issuer,
            audience: issuing.audience,
            ttl_secs: issuing.ttl_secs,
            epoch: Instant::now(),
            figures: AccountFigures::default(),
        })
    }

    fn mono_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Answers one request from `peer`.
    pub async fn handle(&self, action: Action, body: &[u8], peer: Option<IpAddr>) -> Reply {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let Ok(c) = sonic_rs::from_slice::<Credentials>(body) else {
            return Reply::error(
                400,
                "invalid_body",
                "the body must be {\"username\":\"…\",\"password\":\"…\"}",
            );
        };
        match action {
            Action::Signup => self.signup(c, peer).await,
            Action::Login => self.login(c, peer).await,
        }
    }

    fn throttled(&self, user: Option<&str>, peer: IpAddr) -> Option<Reply> {
        let now = self.mono_ms();
        let verdict = self
            .throttle
            .lock()
            .map_or(Ok(()), |t| t.check(user, peer, now));
        let wait = verdict.err()?;
        self.figures.throttled.fetch_add(1, Relaxed);
        Some(
            Reply::error(
                429,
                "too_many_attempts",
                &format!("too many attempts: try again in {wait} s"),
            )
            .retry_after(wait),
        )
    }

    fn count(&self, user: Option<&str>, peer: IpAddr) {
        let now = self.mono_ms();
        if let Ok(mut t) = self.throttle.lock() {
            t.count(user, peer, now);
        }
    }

    async fn signup(&self, c: Credentials, peer: IpAddr) -> Reply {
        let Some(user_id) = user_id_of(&c.username) else {
            return Reply::error(
                400,
                "invalid_username",
                "username must be 3 to 32 of the characters A-Z a-z 0-9 _ . -",
            );
        };
        let chars = c.password.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
            return Reply::error(
                400,
                "invalid_password",
                "password must be 8 to 256 characters",
            );
        }
        if let Some(refused) = self.throttled(None, peer) {
            return refused;
        }
        self.count(None, peer);
        match self.store.get(&user_id).await {
            Ok(Some(_)) => return taken(),
            Ok(None) => {}
            Err(_) => return unavailable(),
        }
        let hash = match self.hasher.hash(c.password).await {
            Ok(Some(hash)) => hash,
            Ok(None) => return unavailable(),
            Err(_) => return busy(),
        };
        let account = StoredAccount {
            user_id: user_id.clone(),
            username: c.username.clone(),
            hash,
            created_at: now_ms(),
        };
        match self.store.create(account).await {
            Ok(true) => {
                self.figures.signups.fetch_add(1, Relaxed);
                self.signed(201, &user_id, &c.username)
            }
            Ok(false) => taken(),
            Err(_) => unavailable(),
        }
    }

    async fn login(&self, c: Credentials, peer: IpAddr) -> Reply {
        // An id that cannot exist is looked up as one that does not: the same answer.
        let user_id = user_id_of(&c.username).unwrap_or_default();
        if let Some(refused) = self.throttled(Some(&user_id), peer) {
            return refused;
        }
        let stored = if user_id.is_empty() || c.password.chars().count() > MAX_PASSWORD_CHARS {
            None
        } else {
            match self.store.get(&user_id).await {
                Ok(found) => found,
                Err(_) => return unavailable(),
            }
        };
        let username = stored.as_ref().map(|a| a.username.clone());
        let ok = match self.hasher.verify(c.password, stored.map(|a| a.hash)).await {
            Ok(ok) => ok,
            Err(_) => return busy(),
        };
        match (ok, username) {
            (true, Some(username)) => {
                if let Ok(mut t) = self.throttle.lock() {
                    t.succeeded(&user_id);
                }
                self.figures.logins.fetch_add(1, Relaxed);
                self.signed(200, &user_id, &username)
            }
            _ => {
                self.count(Some(&user_id), peer);
                self.figures.login_failures.fetch_add(1, Relaxed);
                Reply::error(
                    401,
                    "bad_credentials",
                    "the username or the password is wrong",
                )
            }
        }
    }

    /// `{"userId","username","token","expiresAt"}` with a new token.
    fn signed(&self, status: u16, user_id: &str, username: &str) -> Reply {
        let iat = now_ms() / 1000;
        let exp = iat + self.ttl_secs;
        let claims = Claims {
            sub: user_id,
            name: username,
            iat,
            exp,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        let Ok(token) = jsonwebtoken::encode(&Header::default(), &claims, &self.signing) else {
            return unavailable();
        };
        let expires_at = UnixMillis(exp * 1000).to_rfc3339();
        let body = Signed {
            user_id,
            username,
            token: &token,
            expires_at: expires_at.as_str(),
        };
        match sonic_rs::to_string(&body) {
            Ok(json) => Reply::json(status, json),
            Err(_) => unavailable(),
        }
    }
}

/// The accounts service, when `JWT_HS256_SECRET` is set: in the state table with a
/// DynamoDB store, else in memory.
pub fn start(
    config: &crate::config::Config,
    bridge: Option<&std::sync::Arc<hubbub_persist_bridge::Bridge>>,
) -> anyhow::Result<Option<std::sync::Arc<Accounts>>> {
    use anyhow::Context as _;
    let Some(secret) = &config.jwt_hs256_secret else {
        return Ok(None);
    };
    let store = match bridge {
        Some(b) => AccountStore::Dynamo(b.clone()),
        None => AccountStore::Memory(Mutex::default()),
    };
    let issuing = Issuing {
        secret: secret.as_bytes(),
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        ttl_secs: config.account_token_ttl_secs,
    };
    let accounts = Accounts::start(issuing, store).context("cannot start the accounts thread")?;
    Ok(Some(std::sync::Arc::new(accounts)))
}

fn taken() -> Reply {
    Reply::error(409, "username_taken", "that username is taken")
}

fn busy() -> Reply {
    Reply::error(
        503,
        "busy",
        "too many sign-ins at once: try again in a moment",
    )
    .retry_after(1)
}

fn unavailable() -> Reply {
    Reply::error(503, "unavailable", "the account store does not answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_their_ids() {
        assert_eq!(user_id_of("Ada_L.-1").as_deref(), Some("ada_l.-1"));
        for bad in ["ab", &"a".repeat(33), "a b", "ä12", "a/b", ""] {
            assert_eq!(user_id_of(bad), None, "{bad}");
        }
    }
}
