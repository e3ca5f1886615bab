//! Failed logins per username and per address, in one-minute windows: past the limit an
//! attempt is refused (429) before any hashing, so an attack costs the server a map
//! lookup, not an argon2 hash.

use std::collections::HashMap;
use std::net::IpAddr;

/// Failures per username within a window.
pub const PER_USER: u32 = 5;
/// Failures (and signups) per address within a window.
pub const PER_ADDRESS: u32 = 20;
/// The window, in ms.
pub const WINDOW_MS: u64 = 60_000;
/// Keys kept per map at most: beyond it, expired windows are dropped, then the map is
/// cleared (a flood of distinct keys then starts afresh rather than grow memory).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    count: u32,
}

/// The two maps of windows.
#[derive(Debug, Default)]
pub struct Throttle {
    users: HashMap<String, Window>,
    addresses: HashMap<IpAddr, Window>,
}

fn live(w: Option<&Window>, now: u64) -> u32 {
    w.filter(|w| now.saturating_sub(w.start) < WINDOW_MS)
        .map_or(0, |w| w.count)
}

fn retry_after(w: Option<&Window>, now: u64) -> u64 {
    w.map_or(1, |w| {
        (w.start + WINDOW_MS)
            .saturating_sub(now)
            .div_ceil(1000)
            .max(1)
    })
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Window>, key: K, now: u64) {
    if map.len() >= MAX_KEYS {
        map.retain(|_, w| now.saturating_sub(w.start) < WINDOW_MS);
        if map.len() >= MAX_KEYS {
            map.clear();
        }
    }
    let w = map.entry(key).or_insert(Window {
        start: now,
        count: 0,
    });
    if now.saturating_sub(w.start) >= WINDOW_MS {
        *w = Window {
            start: now,
            count: 0,
        };
    }
    w.count += 1;
}

impl Throttle {
    /// `Err(seconds to wait)` when `user` (if given) or `address` is over its limit at
    /// `now` (ms).
    pub fn check(&self, user: Option<&str>, address: IpAddr, now: u64) -> Result<(), u64> {
        let a = self.addresses.get(&address);
        if live(a, now) >= PER_ADDRESS {
            return Err(retry_after(a, now));
        }
        if let Some(user) = user {
            let u = self.users.get(user);
            if live(u, now) >= PER_USER {
                return Err(retry_after(u, now));
            }
        }
        Ok(())
    }

    /// A failed login (or any signup: `user` `None`) counts against both.
    pub fn count(&mut self, user: Option<&str>, address: IpAddr, now: u64) {
        bump(&mut self.addresses, address, now);
        if let Some(user) = user {
            bump(&mut self.users, user.to_owned(), now);
        }
    }

    /// A successful login clears the username's failures.
    pub fn succeeded(&mut self, user: &str) {
        self.users.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn five_failures_per_user_then_a_minute_apart() {
        let mut t = Throttle::default();
        for i in 0..PER_USER {
            assert!(t.check(Some("ann"), A, 1000 + u64::from(i)).is_ok());
            t.count(Some("ann"), A, 1000 + u64::from(i));
        }
        assert_eq!(
            t.check(Some("ann"), B, 2000),
            Err(59),
            "another address too"
        );
        assert!(t.check(Some("bob"), A, 2000).is_ok(), "another user is not");
        assert!(
            t.check(Some("ann"), A, 1000 + WINDOW_MS).is_ok(),
            "the next window"
        );
        t.count(Some("ann"), A, 1000 + WINDOW_MS);
        assert!(
            t.check(Some("ann"), A, 1001 + WINDOW_MS).is_ok(),
            "counted afresh"
        );
        t.succeeded("ann");
        assert!(t.users.is_empty());
    }

    #[test]
    fn twenty_per_address_over_any_users() {
        let mut t = Throttle::default();
        for i in 0..PER_ADDRESS {
            let user = format!("u{i}");
            assert!(t.check(Some(&user), A, 0).is_ok());
            t.count(Some(&user), A, 0);
        }
        assert_eq!(t.check(Some("fresh"), A, 30_000), Err(30));
        assert_eq!(t.check(None, A, 30_000), Err(30));
        assert!(t.check(Some("fresh"), B, 30_000).is_ok());
    }

    #[test]
    fn a_flood_of_keys_stays_bounded() {
        let mut t = Throttle::default();
        for i in 0..(MAX_KEYS as u64 + 10) {
            t.count(Some(&i.to_string()), A, 0);
        }
        assert!(t.users.len() <= MAX_KEYS);
    }
}
