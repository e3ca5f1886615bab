//! The server's modules form layers: each top-level module uses only modules below it
//! (docs/ARCHITECTURE.md, "The folder tree"). Read from the sources, so a new `use`
//! that points upward, or a cycle, fails here rather than in review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top to bottom; a module may use only those after it in this list.
const LAYERS: &[&str] = &[
    "serve", "http", "accounts", "search", "files", "store", "engine", "logging", "figures",
    "config",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("server/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`None` for the crate root files).
fn top_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_owned()),
    }
}

/// Every `crate::<module>` a file names.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `hubbub_crate::`, not ours
        }
        let name: String = text[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            used.insert(name);
        }
    }
    used
}

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|m| *m == module)
        .unwrap_or_else(|| panic!("{module}: a new top-level module; give it a layer here"))
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 10, "found the sources in {}", src.display());
    let mut upward = Vec::new();
    for file in &files {
        let Some(top) = top_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file is UTF-8");
        for used in used_modules(&text) {
            if used == top {
                continue;
            }
            if rank(&used) <= rank(&top) {
                upward.push(format!("{} uses crate::{used}", file.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "uses against the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_finds_uses_and_ignores_lookalikes() {
    let text = "use crate::engine::Handle;\nlet x = hubbub_crate::y; crate::figures::F";
    let used: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(used, ["engine", "figures"]);
}
