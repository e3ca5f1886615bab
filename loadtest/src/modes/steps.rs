//! `steps`: fan-out at rising rates until delivery or p99 fails; the knee is the last
//! step that met both.

use anyhow::Result;

use super::fanout::measure;
use crate::cli::StepsArgs;
use crate::progress::Progress;
use crate::report::{FanoutReport, StepsReport};

/// Runs the steps.
pub fn run(a: &StepsArgs) -> Result<StepsReport> {
    let mut f = a.fanout.clone();
    let max_p99 = *f.max_p99.get_or_insert(10.0);
    let min_delivery = *f.min_delivery.get_or_insert(0.999);
    // Integrity is judged over all steps below, not as a stepping criterion.
    f.allow_loss = true;
    let mut progress = Progress::new(!f.common.json);
    let r = run_steps(
        &Stepping {
            mode: "steps",
            first_rate: f.rate,
            factor: a.factor,
            max_steps: a.max_steps,
            pause: a.pause,
            max_p99,
            min_delivery,
            allow_loss: a.fanout.allow_loss,
        },
        &mut progress,
        |rate, progress| measure(&f, rate, progress),
    );
    progress.finish();
    r
}

/// How to step.
#[derive(Debug, Clone, Copy)]
pub struct Stepping {
    /// The report's `mode`.
    pub mode: &'static str,
    /// The first step's rate per sender.
    pub first_rate: f64,
    /// Each step's rate is the previous one's times this.
    pub factor: f64,
    /// Give up after this many steps.
    pub max_steps: u32,
    /// Pause between steps.
    pub pause: std::time::Duration,
    /// A step fails over this p99, ms.
    pub max_p99: f64,
    /// A step fails under this delivery ratio.
    pub min_delivery: f64,
    /// Do not fail the whole run on gaps, duplicates or order violations.
    pub allow_loss: bool,
}

/// Measures with `measure(rate)` at rising rates until a step fails (p99 over
/// `max_p99`, delivery under `min_delivery`), the generator saturates or `max_steps`
/// ran; the knee is the last step that met both.
pub fn run_steps(
    st: &Stepping,
    progress: &mut Progress,
    mut measure: impl FnMut(f64, &mut Progress) -> Result<FanoutReport>,
) -> Result<StepsReport> {
    let (max_p99, min_delivery) = (st.max_p99, st.min_delivery);
    let mut report = StepsReport {
        mode: st.mode,
        ..Default::default()
    };
    let mut rate = st.first_rate;
    let mut integrity = 0;
    for n in 0..st.max_steps {
        progress.note(&format!("step {}: {rate:.1} msg/s per sender", n + 1));
        let step = match measure(rate, progress) {
            Ok(s) => s,
            Err(e) if report.steps.is_empty() => return Err(e),
            Err(e) => {
                report.stopped_because = format!("step {} could not run: {e:#}", n + 1);
                break;
            }
        };
        integrity +=
            step.integrity.gaps + step.integrity.duplicates + step.integrity.order_violations;
        let ok = step.latency_ms.p99 <= max_p99
            && step.latency_ms.count > 0
            && step.delivery_ratio >= min_delivery;
        let saturated = step.generator.saturated;
        report.steps.push(step);
        if !ok {
            let s = report
                .steps
                .last()
                .map(|s| (s.delivery_ratio, s.latency_ms.p99))
                .unwrap_or_default();
            report.stopped_because = format!(
                "step {} failed: delivery {:.5} (min {min_delivery}), p99 {:.3} ms (max {max_p99})",
                n + 1,
                s.0,
                s.1
            );
            break;
        }
        report.knee_step = Some(report.steps.len() - 1);
        if saturated {
            report.stopped_because = format!(
                "the generator saturated at step {}: the knee is a lower bound (use more --threads)",
                n + 1
            );
            break;
        }
        rate *= st.factor;
        if n + 1 == st.max_steps {
            report.stopped_because = "--max-steps reached without failing".into();
        } else {
            std::thread::sleep(st.pause);
        }
    }
    if let Some(k) = report.knee_step {
        report.knee_rate_per_sender = Some(report.steps[k].rate_per_sender);
        report.knee_delivered_per_sec = Some(report.steps[k].delivered_per_sec);
    }
    if integrity > 0 {
        report.warnings.push(format!(
            "{integrity} gaps, duplicates or order violations over the steps"
        ));
    }
    for s in &report.steps {
        for w in &s.warnings {
            if !report.warnings.contains(w) {
                report.warnings.push(w.clone());
            }
        }
    }
    report.pass = report.knee_step.is_some() && (st.allow_loss || integrity == 0);
    Ok(report)
}
