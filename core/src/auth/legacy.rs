//! The original system's bearer tokens: `base64url(userId|expiry) "." base64url(HMAC-SHA256)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::TokenError;
use crate::time::UnixMillis;

pub(super) type HmacSha256 = Hmac<Sha256>;

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

pub(super) fn mac(secret: &[u8], payload: &[u8]) -> HmacSha256 {
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
    verify_with_expiry(secret, token, now).map(|(user, _)| user)
}

/// [`verify`], with the token's expiry in Unix seconds.
pub(super) fn verify_with_expiry(
    secret: &[u8],
    token: &str,
    now: UnixMillis,
) -> Result<(String, u64), TokenError> {
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
    Ok((user.to_owned(), expiry))
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
}
