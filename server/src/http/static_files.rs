//! The dashboard's files: from a directory on disk, with content types and cache headers.

use std::path::{Path, PathBuf};

use super::response::Response;

/// Where the dashboard's files come from.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: Option<PathBuf>,
}

impl StaticFiles {
    /// Serve from `root` (`None`: no dashboard; `/` answers 404 with a hint).
    pub fn new(root: Option<PathBuf>) -> StaticFiles {
        StaticFiles { root }
    }

    /// Whether a dashboard is available.
    pub fn available(&self) -> bool {
        self.root.is_some()
    }

    /// The response for a GET of `path` (percent-encoded), or `None` when no file matches.
    pub fn get(&self, path: &str) -> Option<Response> {
        let root = self.root.as_ref()?;
        let rel = safe_relative(path)?;
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from("index.html")
        } else {
            rel
        };
        let full = root.join(&rel);
        let body = std::fs::read(&full).ok()?;
        let cache = if rel.starts_with("assets") {
            // Vite puts a content hash in every asset's name.
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        Some(
            Response {
                status: 200,
                content_type: content_type(&full),
                headers: String::new(),
                body: body.into(),
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
        let files = StaticFiles::new(Some(dir.clone()));
        let index = files.get("/").unwrap();
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert_eq!(&index.body[..], b"<html>");
        let js = files.get("/assets/app.js").unwrap();
        assert!(js.headers.contains("immutable"));
        assert!(files.get("/missing.css").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
