//! The server under test: a `ws://host:port/path?query` URL, resolved once.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context, Result};

/// A parsed and resolved WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// `host[:port]` for the `Host` header.
    pub host_header: String,
    /// Path, e.g. `/ws`.
    pub path: String,
    /// The URL's own query (without `?`), kept before the generator's parameters.
    pub query: String,
    /// The resolved address.
    pub addr: SocketAddr,
}

/// The parts of a `ws://` URL, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// `host[:port]` as written.
    pub authority: String,
    /// Path (`/` when absent).
    pub path: String,
    /// Query without `?`.
    pub query: String,
}

/// Splits a `ws://` URL; `wss://` and anything else are refused with a reason.
pub fn parse_url(url: &str) -> Result<UrlParts> {
    let rest = match url.split_once("://") {
        Some(("ws", rest)) => rest,
        Some(("wss", _)) => bail!("wss:// (TLS) is not supported: measure the server over ws://"),
        Some((scheme, _)) => bail!("unsupported scheme {scheme:?}: expected ws://host:port/path"),
        None => bail!("not a URL: expected ws://host:port/path"),
    };
    let (authority, path_query) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_query, ""),
    };
    let path = if path.is_empty() { "/" } else { path };
    if authority.is_empty() || authority.contains('@') {
        bail!("the URL needs a host (and no user info): ws://host:port/path");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .context("unterminated [IPv6] address in the URL")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().with_context(|| format!("bad port {p:?}"))?,
            None if after.is_empty() => 80,
            None => bail!("unexpected {after:?} after the IPv6 address"),
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse()
                    .with_context(|| format!("bad port {p:?} in the URL"))?,
            ),
            None => (authority.to_owned(), 80),
        }
    };
    if host.is_empty() {
        bail!("the URL has an empty host");
    }
    Ok(UrlParts {
        host,
        port,
        authority: authority.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
    })
}

impl Target {
    /// Parses and resolves `url` (blocking DNS, once).
    pub fn resolve(url: &str) -> Result<Target> {
        let parts = parse_url(url).with_context(|| format!("bad --url {url:?}"))?;
        let addr = (parts.host.as_str(), parts.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {:?}", parts.host))?
            .next()
            .with_context(|| format!("{:?} resolves to no address", parts.host))?;
        Ok(Target {
            url: url.to_owned(),
            host_header: parts.authority,
            path: parts.path,
            query: parts.query,
            addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_and_refuses_the_rest() {
        let p = parse_url("ws://127.0.0.1:8080/ws?x=1").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str(), p.query.as_str()),
            ("127.0.0.1", 8080, "/ws", "x=1")
        );
        let p = parse_url("ws://localhost").unwrap();
        assert_eq!((p.port, p.path.as_str()), (80, "/"));
        let p = parse_url("ws://[::1]:9/ws").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 9));
        let p = parse_url("ws://h:1?room=a").unwrap();
        assert_eq!((p.path.as_str(), p.query.as_str()), ("/", "room=a"));
        for bad in [
            "http://h/ws",
            "wss://h/ws",
            "h:80/ws",
            "ws://",
            "ws://h:99999/",
            "ws://h:x/",
            "ws://:80/",
            "ws://[::1/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(Target::resolve("ws://127.0.0.1:1/ws").is_ok());
        assert!(Target::resolve("ws://no-such-host.invalid:1/ws").is_err());
    }
}
