//! Who a connection or a request is: the original system's HMAC tokens, JWTs (HS256,
//! RS256), and the server API's key. Every check takes the time it is given.

mod api_key;
mod jwt;
mod legacy;

pub use api_key::{ApiKey, WeakApiKey, MIN_API_KEY_BYTES};
pub use jwt::{JwtConfig, JwtVerifier, MAX_TOKEN_ROOMS};
pub use legacy::{sign, verify};

use crate::time::UnixMillis;

/// The shortest `AUTH_SECRET` or `JWT_HS256_SECRET` accepted: 256 bits, the size of the
/// HMAC-SHA256 key (RFC 7518 §3.2 requires at least that for HS256).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was refused. At the upgrade every variant is HTTP 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token in the query or the `Authorization` header.
    #[error("a token is required")]
    Missing,
    /// Not a token of a configured kind, or not decodable.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match under the server's key.
    #[error("the token signature is invalid")]
    BadSignature,
    /// `now` is past the token's expiry (and the leeway).
    #[error("the token has expired")]
    Expired,
    /// `now` is before the token's `nbf` (less the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A JWT signed with an algorithm the server is not configured for (`none`, HS256
    /// without `JWT_HS256_SECRET`, RS256 without a public key, any other).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// `iss` missing or not `JWT_ISSUER`.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// `aud` missing or without `JWT_AUDIENCE`.
    #[error("the token's audience is not accepted")]
    Audience,
    /// A claim breaks its rule.
    #[error("the token's claims are invalid: {0}")]
    Claim(&'static str),
}

impl TokenError {
    /// The `error` code of a refused `refresh` (docs/PROTOCOL.md §7.2).
    pub const fn code(&self) -> &'static str {
        match self {
            TokenError::Expired => "token_expired",
            _ => "invalid_token",
        }
    }
}

/// A settings error that stops the server at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// A secret shorter than [`MIN_SECRET_BYTES`].
    #[error(
        "{0} must be at least 32 bytes (256 bits): generate one with `openssl rand -base64 48`"
    )]
    ShortSecret(&'static str),
    /// The RS256 key is not an RSA public key in PEM.
    #[error("JWT_RS256_PUBLIC_KEY_FILE is not an RSA public key in PEM: {0}")]
    BadPublicKey(String),
    /// JWT settings without a key to verify with.
    #[error(
        "JWT_ISSUER or JWT_AUDIENCE is set without JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY_FILE"
    )]
    NoJwtKey,
}

/// Who a verified token says the bearer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id (`sub`, or the legacy token's user).
    pub user_id: String,
    /// The display name (`name`), trimmed; `None`: the user id is shown.
    pub username: Option<String>,
    /// The token's expiry (`exp`).
    pub expires_at: UnixMillis,
    /// The last instant the token is accepted: `exp` plus the leeway.
    pub valid_until: UnixMillis,
    /// `admin: true`: may read every user's history and who is online.
    pub admin: bool,
    /// The `rooms` claim: a v2 connection subscribes to them at once.
    pub rooms: Vec<String>,
}

/// The token checks the server runs: legacy tokens under `AUTH_SECRET`, JWTs under the
/// JWT settings, either, both, or none (auth off).
///
/// ```
/// use hubbub_core::auth::{self, Authenticator, TokenError};
/// use hubbub_core::UnixMillis;
/// let secret = b"0123456789abcdef0123456789abcdef";
/// let a = Authenticator::new(Some(secret), None).unwrap();
/// let who = a.verify(&auth::sign(secret, "alice", 2_000_000_000), UnixMillis(0)).unwrap();
/// assert_eq!((who.user_id.as_str(), who.admin), ("alice", false));
/// assert_eq!(a.verify("x.y.z", UnixMillis(0)), Err(TokenError::Malformed));
/// assert!(Authenticator::new(Some(b"short"), None).is_err());
/// assert!(!Authenticator::disabled().is_enabled());
/// ```
#[derive(Clone, Default)]
pub struct Authenticator {
    legacy: Option<Box<[u8]>>,
    jwt: Option<JwtVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("legacy", &self.legacy.is_some())
            .field("jwt", &self.jwt)
            .finish()
    }
}

impl Authenticator {
    /// No token checks: every connection names itself.
    pub fn disabled() -> Authenticator {
        Authenticator::default()
    }

    /// Legacy tokens under `legacy_secret` (at least [`MIN_SECRET_BYTES`]) and/or JWTs.
    pub fn new(
        legacy_secret: Option<&[u8]>,
        jwt: Option<JwtVerifier>,
    ) -> Result<Authenticator, AuthConfigError> {
        if legacy_secret.is_some_and(|s| s.len() < MIN_SECRET_BYTES) {
            return Err(AuthConfigError::ShortSecret("AUTH_SECRET"));
        }
        Ok(Authenticator {
            legacy: legacy_secret.map(Box::from),
            jwt,
        })
    }

    /// Whether any token check is configured.
    pub fn is_enabled(&self) -> bool {
        self.legacy.is_some() || self.jwt.is_some()
    }

    /// Verifies `token` at `now`: three dot-separated parts are a JWT, two a legacy token.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<Identity, TokenError> {
        match (token.matches('.').count(), &self.legacy, &self.jwt) {
            (2, _, Some(jwt)) => jwt.verify(token, now),
            (1, Some(secret), _) => {
                let (user_id, expiry) = legacy::verify_with_expiry(secret, token, now)?;
                if user_id.chars().count() > crate::upgrade::MAX_USER_ID_CHARS {
                    return Err(TokenError::Claim("the user id must be 1 to 128 characters"));
                }
                let expires_at = UnixMillis(expiry.saturating_mul(1000));
                Ok(Identity {
                    user_id,
                    username: None,
                    expires_at,
                    // Valid through the whole second of its expiry.
                    valid_until: UnixMillis(expires_at.0.saturating_add(999)),
                    admin: false,
                    rooms: Vec::new(),
                })
            }
            _ => Err(TokenError::Malformed),
        }
    }
}
