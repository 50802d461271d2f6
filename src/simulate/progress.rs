//! `Progress`: the live display on stderr — one line rewritten in place on a terminal, a line per
//! interval otherwise (logs, CI) — with collectors up, calls per second of the last interval, errors,
//! and the GetConfig p50/p99 of the last interval.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{CallKind, Counts, Latency, Stats};

/// What a progress line shows.
pub struct ProgressLine<'a> {
    pub phase: &'a str,
    pub elapsed: Duration,
    pub collectors_up: u64,
    pub collectors: usize,
    /// (label, calls in the interval) for every call kind that has been used.
    pub rates: Vec<(&'static str, f64)>,
    pub errors: u64,
    pub poll_latency: Option<Latency>,
}

impl ProgressLine<'_> {
    pub fn render(&self) -> String {
        let mut line = format!("[{:>5.0}s] {}", self.elapsed.as_secs_f64(), self.phase);
        if self.collectors > 0 {
            line.push_str(&format!(" | up {}/{}", self.collectors_up, self.collectors));
        }
        for (label, rate) in &self.rates {
            line.push_str(&format!(" | {label} {rate:.0}/s"));
        }
        line.push_str(&format!(" | errors {}", self.errors));
        if let Some(latency) = &self.poll_latency {
            line.push_str(&format!(" | poll p50 {:.2}ms p99 {:.2}ms", latency.p50_ms, latency.p99_ms));
        }
        line
    }
}

fn label(kind: CallKind) -> &'static str {
    match kind {
        CallKind::Register => "registers",
        CallKind::Unregister => "unregisters",
        CallKind::GetConfig => "polls",
        CallKind::OwnMetrics => "pushes",
        CallKind::CreateCollector => "creates",
        CallKind::FindCollector => "lookups",
        CallKind::MintToken => "mints",
        CallKind::CreateBatch => "batches",
        CallKind::SignIn => "sign-ins",
        CallKind::Decode => "decodes",
    }
}

/// A running progress display; [`ProgressHandle::finish`] stops it.
pub struct ProgressHandle {
    task: tokio::task::JoinHandle<()>,
    /// Set once a line was drawn in place on a terminal, which then needs ending.
    line_open: Arc<AtomicBool>,
}

impl ProgressHandle {
    pub fn finish(self) {
        self.task.abort();
        if self.line_open.load(Ordering::Relaxed) {
            eprintln!();
        }
    }
}

/// Starts printing the progress of `stats` every `interval` (default: 1 s on a terminal, 5 s otherwise).
pub fn start(
    phase: &'static str,
    stats: Arc<Stats>,
    collectors: usize,
    interval: Option<Duration>,
    quiet: bool,
) -> ProgressHandle {
    let terminal = std::io::stderr().is_terminal() && !quiet;
    let interval = interval.unwrap_or(if terminal { Duration::from_secs(1) } else { Duration::from_secs(5) });
    let line_open = Arc::new(AtomicBool::new(false));
    let drawn = line_open.clone();
    let task = tokio::spawn(async move {
        if quiet {
            return;
        }
        let started = Instant::now();
        let mut previous: Vec<Counts> = CallKind::ALL.iter().map(|kind| stats.counts(*kind)).collect();
        let mut last = Instant::now();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            ticker.tick().await;
            let seconds = last.elapsed().as_secs_f64().max(1e-3);
            last = Instant::now();
            let current: Vec<Counts> = CallKind::ALL.iter().map(|kind| stats.counts(*kind)).collect();
            let rates = CallKind::ALL
                .iter()
                .zip(current.iter().zip(&previous))
                .filter(|(_, (now, _))| now.requests > 0)
                .map(|(kind, (now, before))| (label(*kind), (now.ok - before.ok) as f64 / seconds))
                .collect();
            previous = current;
            let line = ProgressLine {
                phase,
                elapsed: started.elapsed(),
                collectors_up: stats.collectors_up(),
                collectors,
                rates,
                errors: stats.total_errors(),
                poll_latency: stats.take_interval_latency(CallKind::GetConfig),
            }
            .render();
            let mut stderr = std::io::stderr().lock();
            let _ = if terminal {
                drawn.store(true, Ordering::Relaxed);
                write!(stderr, "\r\x1b[2K{line}")
            } else {
                writeln!(stderr, "{line}")
            };
            let _ = stderr.flush();
        }
    });
    ProgressHandle { task, line_open }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_collectors_rates_errors_and_latency() {
        let line = ProgressLine {
            phase: "running",
            elapsed: Duration::from_secs(12),
            collectors_up: 9_990,
            collectors: 10_000,
            rates: vec![("polls", 166.4), ("pushes", 333.2)],
            errors: 3,
            poll_latency: Some(Latency {
                p50_ms: 0.41,
                p90_ms: 1.0,
                p99_ms: 2.3,
                p999_ms: 5.0,
                max_ms: 9.0,
                mean_ms: 0.5,
            }),
        }
        .render();
        assert_eq!(
            line,
            "[   12s] running | up 9990/10000 | polls 166/s | pushes 333/s | errors 3 | poll p50 0.41ms p99 2.30ms"
        );
    }
}
