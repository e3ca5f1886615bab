//! The local store's URLs: `/api/files/{id}/content?expires=…&sig=…`, signed with
//! HMAC-SHA256 over the method, the file and the expiry, with a key made at start-up
//! (a URL dies with the process; `GET /api/files/{id}` makes a new one).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    /// Past its `expires` (403 `url_expired`).
    #[error("this URL has expired: ask for a new one")]
    Expired,
    /// Missing, malformed or not made by this server for this method and file (403
    /// `bad_signature`).
    #[error("this URL's signature is not valid for this request")]
    BadSignature,
}

/// Signs and checks URLs.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn random() -> Signer {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Signer { key }
    }

    /// A signer with this key (tests).
    pub fn with_key(key: [u8; 32]) -> Signer {
        Signer { key }
    }

    fn mac(&self, method: &str, file: &str, expires: u64) -> HmacSha256 {
        // A key of any length is accepted by HMAC: this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(file.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string of a URL for `method` on `file` valid until `expires` (Unix s).
    ///
    /// ```
    /// use hubbub_files::{Signer, UrlRefused};
    /// let s = Signer::with_key([7; 32]);
    /// let q = s.query("GET", "f", 100);
    /// let sig = q.split("sig=").nth(1).unwrap();
    /// assert_eq!(s.verify("GET", "f", Some("100"), Some(sig), 99), Ok(()));
    /// assert_eq!(s.verify("PUT", "f", Some("100"), Some(sig), 99), Err(UrlRefused::BadSignature));
    /// assert_eq!(s.verify("GET", "f", Some("100"), Some(sig), 101), Err(UrlRefused::Expired));
    /// ```
    pub fn query(&self, method: &str, file: &str, expires: u64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(method, file, expires).finalize().into_bytes());
        format!("expires={expires}&sig={sig}")
    }

    /// Checks a URL's `expires` and `sig` for `method` on `file` at `now` (Unix s). The
    /// signature is checked first and in constant time, so a forged URL learns nothing.
    pub fn verify(
        &self,
        method: &str,
        file: &str,
        expires: Option<&str>,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), UrlRefused> {
        let expires: u64 = expires
            .and_then(|e| e.parse().ok())
            .ok_or(UrlRefused::BadSignature)?;
        let sig = sig
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .ok_or(UrlRefused::BadSignature)?;
        self.mac(method, file, expires)
            .verify_slice(&sig)
            .map_err(|_| UrlRefused::BadSignature)?;
        if now > expires {
            return Err(UrlRefused::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_bound_to_its_key_file_and_expiry() {
        let s = Signer::random();
        let q = s.query("PUT", "a", 50);
        let sig = q.split("sig=").nth(1).unwrap();
        assert_eq!(s.verify("PUT", "a", Some("50"), Some(sig), 50), Ok(()));
        assert_eq!(
            s.verify("PUT", "b", Some("50"), Some(sig), 0),
            Err(UrlRefused::BadSignature)
        );
        assert_eq!(
            s.verify("PUT", "a", Some("51"), Some(sig), 0),
            Err(UrlRefused::BadSignature)
        );
        assert_eq!(
            s.verify("PUT", "a", None, Some(sig), 0),
            Err(UrlRefused::BadSignature)
        );
        assert_eq!(
            s.verify("PUT", "a", Some("50"), Some("!!"), 0),
            Err(UrlRefused::BadSignature)
        );
        assert_eq!(
            Signer::random().verify("PUT", "a", Some("50"), Some(sig), 0),
            Err(UrlRefused::BadSignature),
            "another process's key"
        );
    }
}
