//! A one-line progress indicator on stderr, rewritten with `\r`: only when stderr is a
//! terminal (logs and pipes get nothing) and only once the run has taken a couple of seconds.
//! A bar crate (`indicatif`) would add a terminal-handling dependency tree for one line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How long a run goes before the line appears.
const QUIET_FOR: Duration = Duration::from_secs(2);

pub struct Progress {
    enabled: bool,
    start: Instant,
    benches: usize,
    width: usize,
}

impl Progress {
    pub fn new(benches: usize) -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            start: Instant::now(),
            benches,
            width: 0,
        }
    }

    /// Says which bench (`index` of the selected ones), step and variant runs next.
    pub fn show(&mut self, index: usize, bench: &str, step: &str, v: super::Variant) {
        let elapsed = self.start.elapsed();
        if !self.enabled || elapsed < QUIET_FOR {
            return;
        }
        let line = format!(
            "bench {}/{} {bench}: {step}, {} ({:.0} s)",
            index + 1,
            self.benches,
            v.name(),
            elapsed.as_secs_f64()
        );
        let pad = self.width.saturating_sub(line.len());
        self.width = line.len();
        let _ = write!(std::io::stderr(), "\r{line}{:pad$}", "");
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{:w$}\r", "", w = self.width);
            self.width = 0;
        }
    }
}
