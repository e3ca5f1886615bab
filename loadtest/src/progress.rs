//! The live progress line (indicatif), shown only when stdout is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::LiveTotals;

/// A one-line live view; hidden for `--json` or when stdout is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    last: Option<(Instant, LiveTotals)>,
}

impl Progress {
    /// A progress line, visible when `visible` and stdout is a terminal.
    pub fn new(visible: bool) -> Self {
        let bar = if visible && std::io::stdout().is_terminal() {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                b.set_style(style);
            }
            b.enable_steady_tick(Duration::from_millis(200));
            b
        } else {
            ProgressBar::hidden()
        };
        Self { bar, last: None }
    }

    /// Shows `phase`, connections and the rates since the last update.
    pub fn update(&mut self, phase: &str, open: usize, wanted: usize, t: LiveTotals) {
        if self.bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        let rate = match self.last {
            Some((at, prev)) if now > at => {
                let dt = (now - at).as_secs_f64();
                format!(
                    " | recv {:.0}/s | deliv {:.0}/s",
                    (t.frames - prev.frames.min(t.frames)) as f64 / dt,
                    (t.delivered - prev.delivered.min(t.delivered)) as f64 / dt
                )
            }
            _ => String::new(),
        };
        self.last = Some((now, t));
        let ratio = if t.expected > 0 {
            format!(" | delivery {:.4}", t.delivered as f64 / t.expected as f64)
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "{phase} | conns {open}/{wanted}{rate} | sent {}{ratio} | errors {} | integrity {}",
            t.sent, t.error_frames, t.integrity
        ));
    }

    /// Prints a line above the progress line (or to stderr when hidden).
    pub fn note(&self, msg: &str) {
        if self.bar.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.bar.println(msg);
        }
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
