//! `tokio-broadcast`: the reference chat server hubbub is benchmarked against. See
//! [`hubbub_reference_server`] for the design and the environment variables.

use std::io::Write;
use std::process::ExitCode;

use hubbub_reference_server::{bind, serve, Config};

// The same allocator as hubbub, so a comparison measures the servers, not the allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tokio-broadcast: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio-broadcast: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = bind(config.addr)?;
        let addr = listener.local_addr()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}")?;
        stdout.flush()?;
        drop(stdout);
        eprintln!("tokio-broadcast: {} worker threads", config.workers);
        // Accept on a worker thread rather than on this (non-worker) thread, so that with
        // WORKERS=1 everything runs on the one worker.
        tokio::spawn(serve(listener))
            .await
            .map_err(std::io::Error::other)?
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-broadcast: {e}");
            ExitCode::FAILURE
        }
    }
}
