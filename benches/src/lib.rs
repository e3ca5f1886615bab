//! Criterion benchmarks of hubbub-core's per-message costs; they are in
//! `benches/core.rs` (`cargo bench -p hubbub-benches --bench core`). This library is
//! empty: Cargo needs a target besides the benches. The reference server is in
//! `reference-server/`, the side-by-side harness in `compare/`.
