//! The pure parts of `compare`, the side-by-side harness (`src/bin/compare.rs`): the
//! scenario table, the figures taken from `hubbub-loadtest --json`, medians and ratios,
//! the result model and its Markdown rendering. The binary runs the processes.

pub mod extract;
pub mod markdown;
pub mod report;
pub mod scenario;
pub mod stats;
