//! JWTs (`hubbub_core::auth::Authenticator` with HS256, RS256 and legacy tokens all
//! configured): verifying any string never panics, and neither does a token whose header
//! and claims are any bytes, correctly signed with HS256 by hand. Whatever is accepted
//! obeys the claim rules of docs/PROTOCOL.md §1: a user id of 1 to 128 characters, a valid
//! display name, valid room ids, and a `now` no later than the last valid instant.
//!
//! Input: byte 0 picks the split point of the rest (header bytes | claims bytes); bytes
//! 1–8 are `now` in Unix milliseconds (little-endian); the whole rest is also tried as a
//! token string (UTF-8, lossily).
#![no_main]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hubbub_core::auth::{Authenticator, Identity, JwtConfig, JwtVerifier};
use hubbub_core::upgrade::{valid_room, valid_username, MAX_USER_ID_CHARS};
use hubbub_core::UnixMillis;
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const HS: &[u8] = b"fuzz-hs256-secret-of-32-bytes-or-more";
const LEGACY: &[u8] = b"fuzz-legacy-secret-of-32-bytes-or-more";
const RSA_PUBLIC: &[u8] = include_bytes!("../../core/src/auth/testdata/rsa_public.pem");

fn check(who: &Identity, now: UnixMillis) {
    let chars = who.user_id.chars().count();
    assert!(chars > 0 && chars <= MAX_USER_ID_CHARS);
    if let Some(name) = &who.username {
        assert_eq!(valid_username(name), Some(name.as_str()));
    }
    assert!(who.rooms.iter().all(|r| valid_room(r)));
    assert!(who.expires_at <= who.valid_until && now <= who.valid_until);
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (now, rest) = rest.split_at(rest.len().min(8));
    let mut ms = [0u8; 8];
    ms[..now.len()].copy_from_slice(now);
    let now = UnixMillis(u64::from_le_bytes(ms));
    let jwt = JwtVerifier::new(JwtConfig {
        hs256_secret: Some(HS.to_vec()),
        rs256_public_pem: Some(RSA_PUBLIC.to_vec()),
        issuer: None,
        audience: None,
        leeway_secs: 30,
    })
    .expect("the fuzz keys are valid");
    let auth = Authenticator::new(Some(LEGACY), Some(jwt)).expect("the fuzz secret is long enough");

    if let Ok(who) = auth.verify(&String::from_utf8_lossy(rest), now) {
        check(&who, now);
    }

    let at = usize::from(split) % (rest.len() + 1);
    let (header, claims) = rest.split_at(at);
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(HS).expect("any key length");
    mac.update(signed.as_bytes());
    let token = format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    if let Ok(who) = auth.verify(&token, now) {
        check(&who, now);
    }
});
