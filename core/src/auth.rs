//! The original system's bearer tokens: `base64url(userId|expiry) "." base64url(HMAC-SHA256)`,
//! and the server API's key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::UnixMillis;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. Every variant maps to HTTP 401 at the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token in the query or the `Authorization` header.
    #[error("a token is required")]
    Missing,
    /// Not two base64url parts, or a payload that is not `userId|expiry`.
    #[error("the token is malformed")]
    Malformed,
    /// The MAC does not match the payload under the server's secret.
    #[error("the token signature is invalid")]
    BadSignature,
    /// `now` is past the token's expiry.
    #[error("the token has expired")]
    Expired,
}

/// Signs a token for `user_id` that expires at `expiry_unix_secs` (for tests, tools and
/// the load generator; production issuers use the same format).
///
/// ```
/// use hubbub_core::{auth, UnixMillis};
/// let token = auth::sign(b"secret", "alice", 2_000_000_000);
/// assert_eq!(auth::verify(b"secret", &token, UnixMillis(1_000)).unwrap(), "alice");
/// ```
pub fn sign(secret: &[u8], user_id: &str, expiry_unix_secs: u64) -> String {
    let payload = format!("{user_id}|{expiry_unix_secs}");
    let mut out = URL_SAFE_NO_PAD.encode(payload.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(mac(secret, payload.as_bytes()).finalize().into_bytes()));
    out
}

fn mac(secret: &[u8], payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(payload);
    m
}

/// Verifies `token` under `secret` at `now` and returns the user id it names.
///
/// The MAC is compared in constant time; a token is expired when `now` (in whole seconds)
/// is past its expiry.
pub fn verify(secret: &[u8], token: &str, now: UnixMillis) -> Result<String, TokenError> {
    let (payload_b64, mac_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| TokenError::Malformed)?;
    mac(secret, &payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
    let (user, expiry) = payload.rsplit_once('|').ok_or(TokenError::Malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    if user.is_empty() {
        return Err(TokenError::Malformed);
    }
    if now.as_secs() > expiry {
        return Err(TokenError::Expired);
    }
    Ok(user.to_owned())
}

/// The shortest `API_KEY` accepted: a key a person can guess is no key.
pub const MIN_API_KEY_BYTES: usize = 16;

/// The server API's key (`API_KEY`), presented as `Authorization: apikey <key>`.
///
/// Only an HMAC of the key is kept, and a presented key is checked by comparing its HMAC
/// in constant time: how long a refusal takes says nothing about how much of a guess was
/// right.
///
/// ```
/// use hubbub_core::auth::ApiKey;
/// let key = ApiKey::new("0123456789abcdef-ops").unwrap();
/// assert!(key.authorizes(Some("apikey 0123456789abcdef-ops")));
/// assert!(key.authorizes(Some("ApiKey 0123456789abcdef-ops")));
/// assert!(!key.authorizes(Some("apikey 0123456789abcdef-opt")));
/// assert!(!key.authorizes(Some("Bearer 0123456789abcdef-ops")));
/// assert!(!key.authorizes(None));
/// assert!(ApiKey::new("short").is_err());
/// ```
#[derive(Clone)]
pub struct ApiKey {
    tag: [u8; 32],
}

/// An `API_KEY` shorter than [`MIN_API_KEY_BYTES`] or with spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("API_KEY must be at least 16 bytes with no spaces or control characters")]
pub struct WeakApiKey;

const API_KEY_DOMAIN: &[u8] = b"hubbub api key";

impl ApiKey {
    /// Keeps `key`'s HMAC; refuses a key too short or one a header cannot carry.
    pub fn new(key: &str) -> Result<ApiKey, WeakApiKey> {
        if key.len() < MIN_API_KEY_BYTES || key.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(WeakApiKey);
        }
        Ok(ApiKey {
            tag: mac(API_KEY_DOMAIN, key.as_bytes())
                .finalize()
                .into_bytes()
                .into(),
        })
    }

    /// Whether an `Authorization` header value presents this key (scheme `apikey`, any
    /// case).
    pub fn authorizes(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, key)) = authorization.and_then(|h| h.trim().split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("apikey")
            && mac(API_KEY_DOMAIN, key.trim().as_bytes())
                .verify_slice(&self.tag)
                .is_ok()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_original_format() {
        // payload "alice|2000000000", secret "s3cret": computed independently with
        // `printf 'alice|2000000000' | openssl dgst -sha256 -hmac s3cret -binary | basenc --base64url`.
        let token = sign(b"s3cret", "alice", 2_000_000_000);
        assert_eq!(
            token,
            "YWxpY2V8MjAwMDAwMDAwMA.6r8Tgd28v7MHpqXqeRgHRexMAk7RIT6fc9ebXYtL63s"
        );
        assert!(!token.contains('='));
    }

    #[test]
    fn expiry_boundary() {
        let t = sign(b"k", "bob", 100);
        assert_eq!(verify(b"k", &t, UnixMillis(100_999)).as_deref(), Ok("bob"));
        assert_eq!(
            verify(b"k", &t, UnixMillis(101_000)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn refusals() {
        let t = sign(b"k", "bob", 100);
        assert_eq!(
            verify(b"other", &t, UnixMillis(0)),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"k", "nodot", UnixMillis(0)),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(b"k", "!!.!!", UnixMillis(0)),
            Err(TokenError::Malformed)
        );
        let mut tampered = t.clone();
        tampered.insert(1, 'A');
        assert!(verify(b"k", &tampered, UnixMillis(0)).is_err());
        // A user id containing '|' survives: the expiry is the last field.
        let t = sign(b"k", "a|b", 100);
        assert_eq!(verify(b"k", &t, UnixMillis(0)).as_deref(), Ok("a|b"));
    }

    #[test]
    fn api_key_rules() {
        assert_eq!(ApiKey::new(&"k".repeat(15)).err(), Some(WeakApiKey));
        assert!(ApiKey::new(&"k".repeat(16)).is_ok());
        assert!(ApiKey::new("0123456789 abcdef").is_err());
        assert!(ApiKey::new("0123456789abcdef\n").is_err());
        let key = ApiKey::new("0123456789abcdef").unwrap();
        assert!(key.authorizes(Some("  APIKEY   0123456789abcdef ")));
        for bad in [
            "apikey",
            "apikey ",
            "0123456789abcdef",
            "apikey 0123456789abcde",
            "apikey 0123456789abcdefg",
        ] {
            assert!(!key.authorizes(Some(bad)), "{bad}");
        }
        assert!(!format!("{key:?}").contains("0123"));
    }
}
