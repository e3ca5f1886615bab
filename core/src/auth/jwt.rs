//! JSON Web Tokens (RFC 7519) signed with HS256 or RS256: only the algorithms configured
//! are accepted, each with its own key, and time claims are checked against the `now`
//! the caller gives (the library's clock is never read).

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{AuthConfigError, Identity, TokenError, MIN_SECRET_BYTES};
use crate::time::UnixMillis;
use crate::upgrade::{valid_room, valid_username, MAX_USER_ID_CHARS};

/// The most rooms a token's `rooms` claim may name.
pub const MAX_TOKEN_ROOMS: usize = 256;

/// The JWT settings: `JWT_HS256_SECRET`, `JWT_RS256_PUBLIC_KEY_FILE` (its bytes),
/// `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_LEEWAY_SECS`.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// The HS256 secret, at least [`MIN_SECRET_BYTES`].
    pub hs256_secret: Option<Vec<u8>>,
    /// An RSA public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub rs256_public_pem: Option<Vec<u8>>,
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
    /// When set, `aud` must contain it.
    pub audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

/// Verifies JWTs under the configured keys.
///
/// ```
/// use hubbub_core::auth::{JwtConfig, JwtVerifier};
/// let v = JwtVerifier::new(JwtConfig {
///     hs256_secret: Some(b"0123456789abcdef0123456789abcdef".to_vec()),
///     ..JwtConfig::default()
/// })
/// .unwrap();
/// assert!(v.accepts_hs256() && !v.accepts_rs256());
/// ```
#[derive(Clone)]
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// The claims hubbub reads; others are ignored. Times are JSON numbers (RFC 7519
/// NumericDate), fractions allowed.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    admin: Option<bool>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

impl JwtVerifier {
    /// Keeps the keys; refuses a short secret or a PEM that is not an RSA public key, and a
    /// configuration with neither.
    pub fn new(cfg: JwtConfig) -> Result<JwtVerifier, AuthConfigError> {
        let hs256 = match &cfg.hs256_secret {
            Some(s) if s.len() < MIN_SECRET_BYTES => {
                return Err(AuthConfigError::ShortSecret("JWT_HS256_SECRET"))
            }
            Some(s) => Some(
                DecodingKey::from_secret(s)
                    .map_err(|_| AuthConfigError::ShortSecret("JWT_HS256_SECRET"))?,
            ),
            None => None,
        };
        let rs256 = match &cfg.rs256_public_pem {
            Some(pem) => Some(
                DecodingKey::from_rsa_pem(pem)
                    .map_err(|e| AuthConfigError::BadPublicKey(e.to_string()))?,
            ),
            None => None,
        };
        if hs256.is_none() && rs256.is_none() {
            return Err(AuthConfigError::NoJwtKey);
        }
        Ok(JwtVerifier {
            hs256,
            rs256,
            issuer: cfg.issuer,
            audience: cfg.audience,
            leeway_secs: cfg.leeway_secs,
        })
    }

    /// Whether HS256 tokens are accepted.
    pub fn accepts_hs256(&self) -> bool {
        self.hs256.is_some()
    }

    /// Whether RS256 tokens are accepted.
    pub fn accepts_rs256(&self) -> bool {
        self.rs256.is_some()
    }

    /// Verifies `token` at `now`: signature under the key of its `alg` (only a configured
    /// one), `iss` and `aud` when configured, `exp` required and `nbf` if present (each
    /// with the leeway), then the claims' own rules.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or(TokenError::Algorithm)?;
        let mut validation = Validation::new(header.alg);
        // Time is checked below against `now`; the library would read the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.validate_aud = self.audience.is_some();
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        if let Some(aud) = &self.audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".to_owned());
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| refusal(e.kind()))?
            .claims;
        let leeway_ms = self.leeway_secs.saturating_mul(1000);
        let exp = claims
            .exp
            .ok_or(TokenError::Claim("exp is required"))
            .and_then(millis)?;
        if now.0 > exp.saturating_add(leeway_ms) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = claims.nbf.map(millis).transpose()? {
            if now.0.saturating_add(leeway_ms) < nbf {
                return Err(TokenError::NotYetValid);
            }
        }
        let user_id = claims.sub.unwrap_or_default();
        if user_id.is_empty() || user_id.chars().count() > MAX_USER_ID_CHARS {
            return Err(TokenError::Claim("sub must be 1 to 128 characters"));
        }
        let username = match claims.name {
            Some(name) => Some(
                valid_username(&name)
                    .ok_or(TokenError::Claim(
                        "name must be 1 to 50 characters after trimming, with no control characters",
                    ))?
                    .to_owned(),
            ),
            None => None,
        };
        let rooms = claims.rooms.unwrap_or_default();
        if rooms.len() > MAX_TOKEN_ROOMS || !rooms.iter().all(|r| valid_room(r)) {
            return Err(TokenError::Claim(
                "rooms must be at most 256 room ids of 1 to 128 of A-Z a-z 0-9 - _ . : @",
            ));
        }
        Ok(Identity {
            user_id,
            username,
            expires_at: UnixMillis(exp),
            valid_until: UnixMillis(exp.saturating_add(leeway_ms)),
            admin: claims.admin == Some(true),
            rooms,
        })
    }
}

/// A NumericDate in milliseconds; a negative, fractional-beyond-ms or absurd one is
/// refused rather than wrapped.
fn millis(secs: f64) -> Result<u64, TokenError> {
    if secs.is_finite() && (0.0..1e13).contains(&secs) {
        Ok((secs * 1000.0) as u64)
    } else {
        Err(TokenError::Claim(
            "exp and nbf must be Unix times in seconds",
        ))
    }
}

fn refusal(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => TokenError::Algorithm,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::Audience,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::{json, Value};

    const HS: &[u8] = b"hs256-secret-of-at-least-32-bytes!";
    // A 2048-bit pair made once with `openssl genpkey -algorithm RSA`; the black-box tests
    // generate their own.
    const RSA_PRIVATE: &[u8] = include_bytes!("testdata/rsa_private.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("testdata/rsa_public.pem");
    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

    fn verifier(hs: bool, rs: bool) -> JwtVerifier {
        JwtVerifier::new(JwtConfig {
            hs256_secret: hs.then(|| HS.to_vec()),
            rs256_public_pem: rs.then(|| RSA_PUBLIC.to_vec()),
            issuer: None,
            audience: None,
            leeway_secs: 30,
        })
        .unwrap()
    }

    fn hs(claims: &Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(HS).unwrap(),
        )
        .unwrap()
    }

    fn rs(claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn claims_become_the_identity() {
        let t = hs(
            &json!({"sub": "alice", "name": "  Alice ", "exp": 1_800_000_060,
            "admin": true, "rooms": ["dev", "ops"], "extra": {"ignored": 1}}),
        );
        let who = verifier(true, false).verify(&t, NOW).unwrap();
        assert_eq!(who.user_id, "alice");
        assert_eq!(who.username.as_deref(), Some("Alice"));
        assert_eq!(who.expires_at, UnixMillis(1_800_000_060_000));
        assert_eq!(who.valid_until, UnixMillis(1_800_000_090_000));
        assert!(who.admin);
        assert_eq!(who.rooms, ["dev", "ops"]);
        let plain = hs(&json!({"sub": "bob", "exp": 1_800_000_060, "admin": "yes"}));
        assert_eq!(
            verifier(true, false).verify(&plain, NOW),
            Err(TokenError::Malformed),
            "admin must be a boolean"
        );
        let plain = hs(&json!({"sub": "bob", "exp": 1_800_000_060}));
        let who = verifier(true, false).verify(&plain, NOW).unwrap();
        assert!(!who.admin && who.username.is_none() && who.rooms.is_empty());
    }

    #[test]
    fn expiry_and_not_before_with_the_leeway() {
        let v = verifier(true, false);
        let t = hs(&json!({"sub": "a", "exp": 1_800_000_000}));
        assert!(v.verify(&t, UnixMillis(1_800_000_030_000)).is_ok());
        assert_eq!(
            v.verify(&t, UnixMillis(1_800_000_030_001)),
            Err(TokenError::Expired)
        );
        let t = hs(&json!({"sub": "a", "exp": 1_900_000_000, "nbf": 1_800_000_100}));
        assert_eq!(v.verify(&t, NOW), Err(TokenError::NotYetValid));
        assert!(v.verify(&t, UnixMillis(1_800_000_070_000)).is_ok());
        let t = hs(&json!({"sub": "a"}));
        assert_eq!(v.verify(&t, NOW), Err(TokenError::Claim("exp is required")));
        let t = hs(&json!({"sub": "a", "exp": -5}));
        assert!(matches!(v.verify(&t, NOW), Err(TokenError::Claim(_))));
    }

    #[test]
    fn claim_rules() {
        let v = verifier(true, false);
        for bad in [
            json!({"exp": 1_900_000_000}),
            json!({"sub": "", "exp": 1_900_000_000}),
            json!({"sub": "u".repeat(129), "exp": 1_900_000_000}),
            json!({"sub": "a", "name": " ", "exp": 1_900_000_000}),
            json!({"sub": "a", "name": "n".repeat(51), "exp": 1_900_000_000}),
            json!({"sub": "a", "rooms": ["a/b"], "exp": 1_900_000_000}),
            json!({"sub": "a", "rooms": vec!["r"; MAX_TOKEN_ROOMS + 1], "exp": 1_900_000_000}),
        ] {
            assert!(
                matches!(v.verify(&hs(&bad), NOW), Err(TokenError::Claim(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rs256_verifies_under_the_public_key() {
        let t = rs(&json!({"sub": "carol", "exp": 1_900_000_000}));
        assert_eq!(
            verifier(false, true).verify(&t, NOW).unwrap().user_id,
            "carol"
        );
        assert_eq!(
            verifier(true, true).verify(&t, NOW).unwrap().user_id,
            "carol"
        );
        assert_eq!(
            verifier(true, false).verify(&t, NOW),
            Err(TokenError::Algorithm),
            "RS256 without a public key"
        );
        let mut forged = t.clone();
        forged.replace_range(forged.len() - 6.., "AAAAAA");
        assert_eq!(
            verifier(false, true).verify(&forged, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn only_configured_algorithms_with_their_own_keys() {
        let claims = json!({"sub": "mallory", "exp": 1_900_000_000});
        // `alg: none` with no signature.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        );
        for v in [
            verifier(true, false),
            verifier(false, true),
            verifier(true, true),
        ] {
            assert!(v.verify(&none, NOW).is_err());
        }
        // HS/RS confusion: HS256 signed with the RSA public key as the HMAC secret.
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(RSA_PUBLIC).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier(false, true).verify(&confused, NOW),
            Err(TokenError::Algorithm)
        );
        assert_eq!(
            verifier(true, true).verify(&confused, NOW),
            Err(TokenError::BadSignature)
        );
        // Other HMAC sizes are not configured.
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(HS).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier(true, true).verify(&hs512, NOW),
            Err(TokenError::Algorithm)
        );
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let v = JwtVerifier::new(JwtConfig {
            hs256_secret: Some(HS.to_vec()),
            issuer: Some("https://id.example".into()),
            audience: Some("hubbub".into()),
            ..JwtConfig::default()
        })
        .unwrap();
        let ok = json!({"sub": "a", "exp": 1_900_000_000, "iss": "https://id.example",
            "aud": ["other", "hubbub"]});
        assert!(v.verify(&hs(&ok), NOW).is_ok());
        let mut wrong = ok.clone();
        wrong["iss"] = json!("https://evil.example");
        assert_eq!(v.verify(&hs(&wrong), NOW), Err(TokenError::Issuer));
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("iss");
        assert_eq!(v.verify(&hs(&missing), NOW), Err(TokenError::Issuer));
        let mut aud = ok.clone();
        aud["aud"] = json!("other");
        assert_eq!(v.verify(&hs(&aud), NOW), Err(TokenError::Audience));
        // Without JWT_AUDIENCE a token's `aud` is not checked.
        assert!(verifier(true, false).verify(&hs(&aud), NOW).is_ok());
    }

    #[test]
    fn settings_are_checked_at_start() {
        let short = JwtConfig {
            hs256_secret: Some(vec![b'k'; MIN_SECRET_BYTES - 1]),
            ..JwtConfig::default()
        };
        assert_eq!(
            JwtVerifier::new(short).err(),
            Some(AuthConfigError::ShortSecret("JWT_HS256_SECRET"))
        );
        let pem = JwtConfig {
            rs256_public_pem: Some(
                b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n".to_vec(),
            ),
            ..JwtConfig::default()
        };
        assert!(matches!(
            JwtVerifier::new(pem),
            Err(AuthConfigError::BadPublicKey(_))
        ));
        assert_eq!(
            JwtVerifier::new(JwtConfig::default()).err(),
            Some(AuthConfigError::NoJwtKey)
        );
    }
}
