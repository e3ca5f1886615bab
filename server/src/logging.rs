//! Logs: `tracing` with `LOG_LEVEL`, human or JSON lines on stderr.

use tracing_subscriber::filter::LevelFilter;

use crate::config::{Config, LogFormat, LogLevel};

/// Installs the global subscriber.
pub fn init(config: &Config) {
    let level = match config.log_level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    };
    // The search engine's own records (segment saves and merges, every commit) are its
    // business: only its warnings and errors reach the log.
    let engine = level.min(LevelFilter::WARN);
    let filter = tracing_subscriber::EnvFilter::new(format!("{level},tantivy={engine}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
        LogFormat::Human => builder.with_target(false).try_init(),
    };
}
