//! The server API's key (`API_KEY`), presented as `Authorization: apikey <key>`.

use hmac::Mac;

use super::legacy::mac;

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
