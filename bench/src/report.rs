//! The figures a run collects, the process measurements they come from (resident memory, open
//! file descriptors), and percentiles. Every figure ends up as one `BENCH <name> <value>
//! <unit>` line at the end of the run.

use std::time::Duration;

/// One figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// `snake_case` name, e.g. `book_rps`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// `ms`, `1/s`, `MiB`, `ratio`, ...
    pub unit: &'static str,
}

/// The figures of a run, in the order they were measured.
#[derive(Debug, Default)]
pub struct Report {
    figures: Vec<Figure>,
}

impl Report {
    /// Records a figure and prints it at once (a long run shows progress).
    pub fn add(&mut self, name: &str, value: f64, unit: &'static str) {
        eprintln!("  {name} = {} {unit}", fmt(value));
        self.figures.push(Figure {
            name: name.to_owned(),
            value,
            unit,
        });
    }

    /// p50, p95 and p99 of `samples` in milliseconds under `prefix` (e.g. `create_offer`).
    pub fn latencies(&mut self, prefix: &str, samples: &[Duration], which: &[u8]) {
        let ms = millis(samples);
        for p in which {
            self.add(
                &format!("{prefix}_p{p}_ms"),
                percentile(&ms, f64::from(*p)),
                "ms",
            );
        }
    }

    /// The closing lines.
    pub fn lines(&self) -> Vec<String> {
        self.figures
            .iter()
            .map(|f| format!("BENCH {} {} {}", f.name, fmt(f.value), f.unit))
            .collect()
    }
}

/// A value with as many decimals as it deserves.
fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Durations as milliseconds.
pub fn millis(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// The `p`-th percentile (nearest rank) of `values`; 0 for none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of this process now, KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// This process' soft limit on open file descriptors (`ulimit -n`), if it can be read.
pub fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// OS threads of this process.
pub fn threads() -> u64 {
    status_kib("Threads:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
