//! A server's `/metrics`: fetched over plain HTTP/1.1 and parsed generically from the
//! Prometheus text exposition format (0.0.4) into (name, labels, value) series, so any
//! series can be picked by name. Used by `soak`, once per sample (never per frame).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::target::Target;

/// One sample line: `name{label="value",…} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric name.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value (`NaN`, `+Inf` and `-Inf` included).
    pub value: f64,
}

impl Series {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition: its series, and the lines that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample line, in order.
    pub series: Vec<Series>,
    /// `line N: why` for each line skipped as malformed.
    pub errors: Vec<String>,
}

impl Exposition {
    /// The series named `name` (any labels), in order.
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.name == name)
    }

    /// Whether any series is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).next().is_some()
    }
}

/// Parses exposition text. Comments (`# HELP`, `# TYPE`, …) and blank lines are ignored;
/// a malformed line is skipped and reported in [`Exposition::errors`], so one odd line
/// does not hide the rest.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(s) => out.series.push(s),
            Err(e) => out.errors.push(format!("line {}: {e}: {line:?}", n + 1)),
        }
    }
    out
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Parses one sample line (not a comment, not blank).
pub fn parse_line(line: &str) -> Result<Series, String> {
    let b = line.as_bytes();
    let mut i = 0;
    if !b.first().copied().is_some_and(is_name_start) {
        return Err("no metric name".into());
    }
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    let name = line[..i].to_owned();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    let mut labels = Vec::new();
    if b.get(i) == Some(&b'{') {
        i += 1;
        loop {
            skip_ws(&mut i);
            match b.get(i) {
                Some(b'}') => {
                    i += 1;
                    break;
                }
                Some(&c) if is_name_start(c) => {}
                _ => return Err("bad label name".into()),
            }
            let k0 = i;
            while i < b.len() && is_name_char(b[i]) {
                i += 1;
            }
            let key = line[k0..i].to_owned();
            skip_ws(&mut i);
            if b.get(i) != Some(&b'=') {
                return Err(format!("label {key:?} has no '='"));
            }
            i += 1;
            skip_ws(&mut i);
            if b.get(i) != Some(&b'"') {
                return Err(format!("label {key:?} has no quoted value"));
            }
            i += 1;
            let mut value = String::new();
            let mut from = i;
            loop {
                match b.get(i) {
                    None => return Err(format!("label {key:?}: unterminated value")),
                    Some(b'"') => {
                        value.push_str(&line[from..i]);
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        value.push_str(&line[from..i]);
                        match b.get(i + 1) {
                            Some(b'n') => value.push('\n'),
                            Some(b'\\') => value.push('\\'),
                            Some(b'"') => value.push('"'),
                            _ => return Err(format!("label {key:?}: bad escape")),
                        }
                        i += 2;
                        from = i;
                    }
                    Some(_) => i += 1,
                }
            }
            labels.push((key, value));
            skip_ws(&mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' after a label".into()),
            }
        }
        skip_ws(&mut i);
    } else if i < b.len() && i == name.len() {
        return Err("no space after the metric name".into());
    }
    let mut rest = line[i..].split_ascii_whitespace();
    let v = rest.next().ok_or("no value")?;
    let value = parse_value(v).ok_or_else(|| format!("bad value {v:?}"))?;
    if let Some(ts) = rest.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if rest.next().is_some() {
        return Err("unexpected text after the value".into());
    }
    Ok(Series {
        name,
        labels,
        value,
    })
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if v
            .bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) =>
        {
            v.parse().ok()
        }
        _ => None,
    }
}

/// Where `/metrics` is: an `http://host:port/path` URL, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    /// The URL as given (or derived).
    pub url: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// `host[:port]` for the `Host` header.
    pub host_header: String,
    /// Path and query.
    pub path: String,
}

impl MetricsUrl {
    /// Parses and resolves an `http://` URL.
    pub fn resolve(url: &str) -> Result<MetricsUrl> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--metrics-url {url:?} must be http://host:port/path (https is not supported)");
        };
        let t = Target::resolve(&format!("ws://{rest}"))
            .with_context(|| format!("bad --metrics-url {url:?}"))?;
        let path = if t.query.is_empty() {
            t.path
        } else {
            format!("{}?{}", t.path, t.query)
        };
        Ok(MetricsUrl {
            url: url.to_owned(),
            addr: t.addr,
            host_header: t.host_header,
            path,
        })
    }

    /// `http://<the WebSocket URL's host:port>/metrics`, at the address it resolved to.
    pub fn for_target(t: &Target) -> MetricsUrl {
        MetricsUrl {
            url: format!("http://{}/metrics", t.host_header),
            addr: t.addr,
            host_header: t.host_header.clone(),
            path: "/metrics".into(),
        }
    }
}

/// Largest response read.
const MAX_RESPONSE: usize = 16 << 20;

/// GETs the URL and returns the body of a 200 response (within `timeout` in all).
pub fn fetch(url: &MetricsUrl, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&url.addr, timeout)
        .with_context(|| format!("cannot connect to {}", url.url))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n\
         User-Agent: hubbub-loadtest\r\n\r\n",
        url.path, url.host_header
    )?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{} did not answer within {timeout:?}", url.url);
        }
        s.set_read_timeout(Some(left))?;
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!("{} did not answer within {timeout:?}", url.url)
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", url.url)),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            bail!("{} answered more than {MAX_RESPONSE} bytes", url.url);
        }
        if let Some(body) = complete_body(&buf, n == 0)? {
            return Ok(body);
        }
        if n == 0 {
            bail!("{} closed the connection before a whole response", url.url);
        }
    }
}

/// The body once the response in `buf` is complete (`eof`: the server closed), or
/// `None` while more is needed. Non-200 statuses are errors.
pub fn complete_body(buf: &[u8], eof: bool) -> Result<Option<String>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => bail!("not an HTTP response: {e}"),
    };
    let status = resp.code.unwrap_or(0);
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let rest = &buf[head..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(b) => b,
            None if eof => bail!("the chunked body ended early"),
            None => return Ok(None),
        }
    } else if let Some(len) = length {
        if rest.len() < len {
            if eof {
                bail!("the body ended after {} of {len} bytes", rest.len());
            }
            return Ok(None);
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    if status != 200 {
        let start: String = body.chars().take(200).collect();
        bail!("HTTP {status}: {}", start.trim());
    }
    Ok(Some(body))
}

/// Decodes a whole chunked body, or `None` when it is not complete yet.
fn dechunk(mut b: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_values_and_skips_comments() {
        let text = "# HELP hubbub_connections Open WebSocket connections.\n\
                    # TYPE hubbub_connections gauge\n\
                    hubbub_connections 15000\n\
                    \n\
                    hubbub_worker_queued_bytes{worker=\"0\"} 1024\n\
                    hubbub_worker_queued_bytes{worker=\"1\"} 0 1700000000000\n\
                    hubbub_fanout_latency_ms{quantile=\"0.99\",} 2.5e-1\n\
                    odd{a=\"x\\\"y\\\\z\\nw\", b = \"\"} -Inf\n\
                    hubbub_up NaN\n\
                    ns:rule_total +Inf\n";
        let e = parse(text);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.series.len(), 7);
        assert_eq!(e.series[0].name, "hubbub_connections");
        assert!(e.series[0].labels.is_empty());
        assert_eq!(e.series[0].value, 15000.0);
        let w: Vec<(Option<&str>, f64)> = e
            .get("hubbub_worker_queued_bytes")
            .map(|s| (s.label("worker"), s.value))
            .collect();
        assert_eq!(w, [(Some("0"), 1024.0), (Some("1"), 0.0)]);
        assert_eq!(e.series[3].value, 0.25);
        assert_eq!(e.series[3].label("quantile"), Some("0.99"));
        let odd = &e.series[4];
        assert_eq!(
            odd.labels,
            [
                ("a".to_string(), "x\"y\\z\nw".to_string()),
                ("b".to_string(), String::new())
            ]
        );
        assert_eq!(odd.value, f64::NEG_INFINITY);
        assert!(e.series[5].value.is_nan());
        assert_eq!(e.series[6].name, "ns:rule_total");
        assert!(e.has("hubbub_up") && !e.has("hubbub_worker_mesh_backlog"));
        assert_eq!(e.get("hubbub_worker_mesh_backlog").count(), 0);
    }

    #[test]
    fn malformed_lines_are_reported_and_skipped() {
        let text = "good 1\n\
                    9bad 1\n\
                    novalue\n\
                    x{a=\"1\" 2\n\
                    x{a=1} 2\n\
                    x{a=\"unterminated} 2\n\
                    x{a=\"\\q\"} 2\n\
                    x 1 2 3\n\
                    x one\n\
                    x 1 notatime\n\
                    x{=\"v\"} 1\n\
                    also_good{k=\"v\"} 2\n";
        let e = parse(text);
        let names: Vec<&str> = e.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["good", "also_good"], "{:?}", e.errors);
        assert_eq!(e.errors.len(), 10, "{:?}", e.errors);
        assert!(e.errors[0].starts_with("line 2:"), "{:?}", e.errors);
        assert!(parse_line("x 0x10").is_err() && parse_line("x 1e3").is_ok());
    }

    #[test]
    fn parses_what_hubbub_renders() {
        // The shape of server/src/http/prometheus.rs's output.
        let text = "# HELP hubbub_worker_connections Connections per worker.\n\
                    # TYPE hubbub_worker_connections gauge\n\
                    hubbub_worker_connections{worker=\"0\"} 7500\n\
                    hubbub_worker_connections{worker=\"1\"} 7499\n\
                    # HELP hubbub_persist_queue_depth Records waiting.\n\
                    # TYPE hubbub_persist_queue_depth gauge\n\
                    hubbub_persist_queue_depth 0\n";
        let e = parse(text);
        assert!(e.errors.is_empty());
        let total: f64 = e.get("hubbub_worker_connections").map(|s| s.value).sum();
        assert_eq!(total, 14999.0);
    }

    #[test]
    fn http_bodies_by_length_chunks_or_close() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nx 1\n";
        assert_eq!(complete_body(&ok[..ok.len() - 1], false).unwrap(), None);
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nx 1\n";
        assert_eq!(
            complete_body(full, false).unwrap().as_deref(),
            Some("x 1\n")
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nx \r\n2;e=1\r\n1\n\r\n0\r\n\r\n";
        assert_eq!(
            complete_body(chunked, false).unwrap().as_deref(),
            Some("x 1\n")
        );
        assert_eq!(complete_body(&chunked[..60], false).unwrap(), None);
        assert!(complete_body(&chunked[..60], true).is_err());
        let close = b"HTTP/1.1 200 OK\r\n\r\nx 1\n";
        assert_eq!(complete_body(close, false).unwrap(), None);
        assert_eq!(
            complete_body(close, true).unwrap().as_deref(),
            Some("x 1\n")
        );
        let e = complete_body(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("404") && e.contains("not found"), "{e}");
        assert!(complete_body(b"SSH-2.0\r\n\r\n", false).is_err());
    }

    #[test]
    fn urls() {
        let m = MetricsUrl::resolve("http://127.0.0.1:9100/metrics?x=1").unwrap();
        assert_eq!(m.addr, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(
            (m.host_header.as_str(), m.path.as_str()),
            ("127.0.0.1:9100", "/metrics?x=1")
        );
        assert!(MetricsUrl::resolve("https://h/metrics").is_err());
        assert!(MetricsUrl::resolve("ws://h/metrics").is_err());
        let t = Target::resolve("ws://127.0.0.1:8080/ws").unwrap();
        let m = MetricsUrl::for_target(&t);
        assert_eq!(m.url, "http://127.0.0.1:8080/metrics");
        assert_eq!(m.path, "/metrics");
    }

    #[test]
    fn fetches_from_a_server_and_times_out() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            assert!(req[..n].starts_with(b"GET /metrics HTTP/1.1\r\n"));
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhubbub_connections 3\n",
            )
            .unwrap();
            // Closing ends the body (no Content-Length).
            drop(s);
            let (_silent, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(600));
        });
        let url = MetricsUrl::resolve(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
        let body = fetch(&url, Duration::from_secs(2)).unwrap();
        assert_eq!(parse(&body).series[0].value, 3.0);
        let e = fetch(&url, Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not answer"), "{e}");
        h.join().unwrap();
    }
}
