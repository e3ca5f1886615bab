//! Benchmarks and comparison tools for hubbub; see `benches/` and the README.

pub mod compare;
pub mod tokio_broadcast;
