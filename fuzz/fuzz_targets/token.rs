//! Bearer tokens (`hubbub_core::auth`): verifying any string never panics; a token that
//! `auth::sign` made for any user id and expiry names that user until it expires and is
//! refused after; so is a token signed by hand over any payload bytes, exactly when the
//! payload is `userId|expiry` (PROTOCOL.md §1); another secret, and any single-byte
//! replacement, insertion or deletion in a valid token, are refused as malformed or badly
//! signed.
//!
//! Input, everything derived from it:
//! - byte 0: bits 0–5 the secret's length; bit 6: `now` is the expiry plus a signed
//!   offset in milliseconds (bytes 0–1 of the `now` field, i16) rather than absolute;
//!   bit 7: the secret is repeated three times (keys longer than HMAC's 64-byte block);
//! - the secret;
//! - 8 bytes: the expiry in Unix seconds (little-endian);
//! - 8 bytes: `now` in Unix milliseconds (little-endian) or the offset;
//! - 4 × 3 bytes: mutations, each a little-endian u16 (bits 14–15: replace, replace,
//!   insert, delete; the rest: the position, modulo the token's length) and a byte (its
//!   low 7 bits, ASCII so the token stays a string);
//! - the rest: the user id (UTF-8, lossily), the hand-signed payload (as is) and a
//!   token to verify (UTF-8, lossily).
#![no_main]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hubbub_core::auth::{sign, verify, TokenError};
use hubbub_core::UnixMillis;
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const MUTATIONS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    let mut secret = input.take(usize::from(flags & 0x3f)).to_vec();
    if flags & 0x80 != 0 {
        secret = secret.repeat(3);
    }
    let expiry = u64::from_le_bytes(input.array());
    let now_field: [u8; 8] = input.array();
    let now = if flags & 0x40 != 0 {
        let offset = i16::from_le_bytes([now_field[0], now_field[1]]);
        UnixMillis(
            expiry
                .saturating_mul(1000)
                .saturating_add_signed(offset.into()),
        )
    } else {
        UnixMillis(u64::from_le_bytes(now_field))
    };
    let mutations: Vec<[u8; 3]> = (0..MUTATIONS).map(|_| input.array()).collect();
    let rest = input.0;
    // Differs from `secret` as an HMAC key: not only by zero bytes appended (a key shorter
    // than the block is padded with zeros, so "k" and "k\0" are the same key).
    let other_secret: Vec<u8> = match secret.split_first() {
        Some((first, tail)) => [&[first ^ 1], tail].concat(),
        None => vec![1],
    };

    // Any string.
    let token = String::from_utf8_lossy(rest);
    if let Ok(user) = verify(&secret, &token, now) {
        assert!(!user.is_empty());
        let payload = token
            .split('.')
            .next()
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
        let payload = payload.expect("an accepted token's payload decodes");
        let prefix = format!("{user}|");
        assert!(payload.starts_with(prefix.as_bytes()));
        assert_eq!(
            verify(&other_secret, &token, now),
            Err(TokenError::BadSignature)
        );
    }

    // A token the crate signs.
    let user = String::from_utf8_lossy(rest);
    let token = sign(&secret, &user, expiry);
    assert_eq!(token.matches('.').count(), 1);
    assert!(token
        .bytes()
        .all(|b| b == b'.' || b == b'-' || b == b'_' || b.is_ascii_alphanumeric()));
    let want = if user.is_empty() {
        Err(TokenError::Malformed)
    } else if now.as_secs() > expiry {
        Err(TokenError::Expired)
    } else {
        Ok(user.clone().into_owned())
    };
    assert_eq!(verify(&secret, &token, now), want);
    check_refusals(&secret, &other_secret, &token, now, &mutations);

    // A token signed by hand over any payload bytes.
    let payload = rest;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("any key length");
    mac.update(payload);
    let token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let fields = std::str::from_utf8(payload)
        .ok()
        .and_then(|p| p.rsplit_once('|'))
        .and_then(|(user, e)| Some((user, e.parse::<u64>().ok()?)));
    let want = match fields {
        None => Err(TokenError::Malformed),
        Some(("", _)) => Err(TokenError::Malformed),
        Some((_, e)) if now.as_secs() > e => Err(TokenError::Expired),
        Some((user, _)) => Ok(user.to_owned()),
    };
    assert_eq!(verify(&secret, &token, now), want);
    if let Some((user, e)) = fields {
        if payload == format!("{user}|{e}").as_bytes() {
            assert_eq!(
                token,
                sign(&secret, user, e),
                "the hand-made token is sign's"
            );
        }
    }
    check_refusals(&secret, &other_secret, &token, now, &mutations);
});

/// Another secret is a bad signature (or a malformed token, which it stays), and a
/// changed token is refused before its expiry is looked at.
fn check_refusals(secret: &[u8], other: &[u8], token: &str, now: UnixMillis, muts: &[[u8; 3]]) {
    let refused = |r: &Result<String, TokenError>| {
        matches!(
            r,
            Err(TokenError::Malformed) | Err(TokenError::BadSignature)
        )
    };
    let theirs = verify(other, token, now);
    assert!(refused(&theirs), "another secret: {theirs:?}");
    for &[lo, hi, b] in muts {
        let code = u16::from_le_bytes([lo, hi]);
        let mut bytes = token.as_bytes().to_vec();
        let b = b & 0x7f;
        match code >> 14 {
            0 | 1 => {
                let at = usize::from(code & 0x3fff) % bytes.len();
                bytes[at] = if bytes[at] == b { b ^ 1 } else { b };
            }
            2 => bytes.insert(usize::from(code & 0x3fff) % (bytes.len() + 1), b),
            _ => {
                bytes.remove(usize::from(code & 0x3fff) % bytes.len());
            }
        }
        let Ok(changed) = String::from_utf8(bytes) else {
            panic!("an ASCII change of an ASCII token is a string");
        };
        let r = verify(secret, &changed, now);
        assert!(refused(&r), "{token:?} -> {changed:?}: {r:?}");
    }
}

/// The fuzz input, read front to back; past its end every byte is zero.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let got = self.take(N);
        out[..got.len()].copy_from_slice(got);
        out
    }
}
