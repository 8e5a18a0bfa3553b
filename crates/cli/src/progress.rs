//! Progress for long work: an indicatif bar with rate and ETA on a terminal,
//! plain progress lines on stderr otherwise (CI logs, `2>file`).
//!
//! Libraries never draw progress; they take a callback (or a
//! `childsafe_core`-level counter) and the binary renders it here.

use std::{
    io::IsTerminal,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A progress reporter, safe to share across threads.
pub(crate) struct Progress {
    label: &'static str,
    unit: &'static str,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
    note: Mutex<String>,
}

impl Progress {
    /// Starts reporting; `total` is the number of items if known.
    pub(crate) fn new(label: &'static str, unit: &'static str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::new_spinner(),
            };
            let template = match total {
                Some(_) => "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ({per_sec}, eta {eta})",
                None => "{prefix} [{elapsed_precise}] {spinner} {pos} {msg} ({per_sec})",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(label);
            bar.set_message(unit);
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar
        });
        Progress {
            label,
            unit,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            bar,
            last_line: Mutex::new(Instant::now()),
            note: Mutex::new(String::new()),
        }
    }

    /// Records `n` more items done.
    pub(crate) fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let Ok(mut last) = self.last_line.try_lock() else {
            return;
        };
        if last.elapsed() >= PLAIN_EVERY {
            *last = Instant::now();
            eprintln!("{}", self.line(done));
        }
    }

    /// Runs `f`, which prints to stderr, with the bar hidden meanwhile, so a
    /// message line never interleaves with the bar.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Ends the bar, leaving a final summary line.
    pub(crate) fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if done > 0 && (self.bar.is_some() || self.started.elapsed() >= PLAIN_EVERY) {
            eprintln!("{}", self.line(done));
        }
    }

    /// Shows a second figure beside the count (e.g. samples/s while the
    /// bar counts bytes), on the bar and at the end of plain lines.
    pub(crate) fn set_note(&self, note: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {note}", self.unit));
        }
        if let Ok(mut slot) = self.note.try_lock() {
            *slot = note;
        }
    }

    fn line(&self, done: u64) -> String {
        let note = self.note.lock().map(|n| n.clone()).unwrap_or_default();
        let note = if note.is_empty() {
            note
        } else {
            format!(", {note}")
        };
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        match self.total {
            Some(total) if rate > 0.0 => {
                let eta = total.saturating_sub(done) as f64 / rate;
                format!(
                    "{}: {done}/{total} {}, {rate:.1}/s, {secs:.1}s elapsed, eta {eta:.0}s{note}",
                    self.label, self.unit
                )
            }
            _ => format!(
                "{}: {done} {}, {rate:.1}/s, {secs:.1}s elapsed{note}",
                self.label, self.unit
            ),
        }
    }
}
