//! `hubbub-loadtest`: see `hubbub-loadtest --help`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use hubbub_loadtest::cli::{Cli, Mode};
use hubbub_loadtest::{modes, report, selftest};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status when a threshold or an integrity check failed.
const CHECK_FAILED: u8 = 3;

fn emit<T: serde::Serialize>(
    json: bool,
    r: &T,
    text: impl Fn(&T) -> String,
    pass: bool,
) -> ExitCode {
    if json {
        println!("{}", report::to_json(r));
    } else {
        print!("{}", text(r));
    }
    if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECK_FAILED)
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    Ok(match &cli.mode {
        Mode::Fanout(a) => {
            let r = modes::fanout::run(a).context("fanout failed")?;
            emit(a.common.json, &r, report::fanout_text, r.pass)
        }
        Mode::Steps(a) => {
            let r = modes::steps::run(a).context("steps failed")?;
            emit(a.fanout.common.json, &r, report::steps_text, r.pass)
        }
        Mode::Idle(a) => {
            let r = modes::idle::run(a).context("idle failed")?;
            emit(a.common.json, &r, report::conns_text, r.pass)
        }
        Mode::Connect(a) => {
            let r = modes::connect::run(a).context("connect failed")?;
            emit(a.common.json, &r, report::conns_text, r.pass)
        }
        Mode::Soak(a) => {
            let r = modes::soak::run(a).context("soak failed")?;
            emit(a.common.json, &r, report::soak_text, r.pass)
        }
        Mode::Rooms(a) => match modes::v2::run_rooms(a).context("rooms failed")? {
            modes::v2::RoomsOutcome::Fixed(r) => {
                emit(a.v2.common.json, &*r, report::fanout_text, r.pass)
            }
            modes::v2::RoomsOutcome::Steps(r) => {
                emit(a.v2.common.json, &r, report::steps_text, r.pass)
            }
        },
        Mode::Typing(a) => {
            let r = modes::v2::run_typing(a).context("typing failed")?;
            emit(a.v2.common.json, &r, report::fanout_text, r.pass)
        }
        Mode::SelfTest(a) => {
            let r = selftest::run(a).context("self-test failed")?;
            emit(a.json, &r, selftest::text, r.pass)
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
