//! The dashboard's files, with content types and cache headers: built into the binary
//! (release builds embed `frontend/dist` at compile time, so the production binary is one
//! file), or from a directory given at run time.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::response::Response;

/// `frontend/dist`, embedded in release builds; debug builds read the same folder from
/// disk, so a rebuilt dashboard shows without recompiling the server.
#[derive(rust_embed::RustEmbed)]
#[folder = "../frontend/dist"]
#[allow_missing = true]
struct Embedded;

/// Where the dashboard's files come from.
#[derive(Debug, Clone)]
pub enum StaticFiles {
    /// A directory on disk (`STATIC_DIR`).
    Dir(PathBuf),
    /// The copy built into the binary.
    Embedded,
    /// No dashboard: `/` answers 404 with a hint.
    None,
}

impl StaticFiles {
    /// Serve from `root` if given, else from the embedded copy if the build has one.
    pub fn new(root: Option<PathBuf>) -> StaticFiles {
        match root {
            Some(dir) => StaticFiles::Dir(dir),
            None if Embedded::get("index.html").is_some() => StaticFiles::Embedded,
            None => StaticFiles::None,
        }
    }

    /// Where the files come from, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            StaticFiles::Dir(d) => d.display().to_string(),
            StaticFiles::Embedded => "built-in".to_owned(),
            StaticFiles::None => "none (build frontend/ to get one)".to_owned(),
        }
    }

    fn read(&self, rel: &Path) -> Option<Cow<'static, [u8]>> {
        match self {
            StaticFiles::Dir(root) => std::fs::read(root.join(rel)).ok().map(Cow::Owned),
            StaticFiles::Embedded => Embedded::get(rel.to_str()?).map(|f| f.data),
            StaticFiles::None => None,
        }
    }

    /// The response for a GET of `path` (percent-encoded), or `None` when no file matches.
    pub fn get(&self, path: &str) -> Option<Response> {
        let rel = safe_relative(path)?;
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from("index.html")
        } else {
            rel
        };
        let body = match self.read(&rel)? {
            Cow::Borrowed(b) => bytes::Bytes::from_static(b),
            Cow::Owned(v) => bytes::Bytes::from(v),
        };
        let cache = if rel.starts_with("assets") {
            // Vite puts a content hash in every asset's name.
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        Some(
            Response {
                status: 200,
                content_type: content_type(&rel).into(),
                headers: String::new(),
                body,
            }
            .header("Cache-Control", cache)
            .header("X-Content-Type-Options", "nosniff"),
        )
    }
}

/// The decoded relative path, or `None` if it tries to leave the root.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let decoded: String =
        form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
    let mut out = PathBuf::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s if s.contains('\\') || s.contains('\0') => return None,
            s => out.push(s),
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused() {
        assert_eq!(safe_relative("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(safe_relative("/"), Some(PathBuf::new()));
        assert_eq!(safe_relative("/../etc/passwd"), None);
        assert_eq!(safe_relative("/a/%2e%2e/%2e%2e/x"), None);
    }

    #[test]
    fn serves_files_with_types() {
        let dir = std::env::temp_dir().join(format!("hubbub-static-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "<html>").unwrap();
        std::fs::write(dir.join("assets/app.js"), "x").unwrap();
        let files = StaticFiles::Dir(dir.clone());
        let index = files.get("/").unwrap();
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert_eq!(&index.body[..], b"<html>");
        let js = files.get("/assets/app.js").unwrap();
        assert!(js.headers.contains("immutable"));
        assert!(files.get("/missing.css").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
