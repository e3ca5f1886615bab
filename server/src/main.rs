//! `hubbub`: the thread-per-core WebSocket chat and analytics server.

use std::process::ExitCode;

use clap::Parser;
use hubbub_server::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = config.validate() {
        eprintln!("hubbub: {e:#}");
        return ExitCode::from(2);
    }
    hubbub_server::logging::init(&config);
    match hubbub_server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hubbub: {e:#}");
            ExitCode::FAILURE
        }
    }
}
