//! HS256 tokens for the servers the tests start with `JWT_HS256_SECRET` = [`HS_SECRET`].

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The `JWT_HS256_SECRET` of the tests' servers.
pub const HS_SECRET: &str = "jwt-hs256-secret-for-the-tests-0123456789";

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `claims` signed under [`HS_SECRET`].
pub fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(HS_SECRET.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// A user's HS256 token valid for an hour.
pub fn token_of(user: &str, admin: bool) -> String {
    hs256(
        &json!({"sub": user, "name": format!("{user} (token)"), "admin": admin,
        "exp": now_secs() + 3600}),
    )
}
