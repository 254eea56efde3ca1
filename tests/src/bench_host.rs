//! How busy the host was while the per-packet part ran, printed under its
//! table so a reader can tell a quiet run from a loaded one. Ratios to the
//! XDP_DROP baseline cancel a host that is uniformly slower, not one whose
//! other tenants compete for the CPU's caches and memory: the baseline
//! touches no map, while a new connection's first packet misses the cache
//! and the TLB on a random bucket of the connection table, so its ratio
//! rises under such load (measured on this shared host: 3.4-4.4x quiet, 6-11x
//! loaded). The load average does not show it (other tenants are outside
//! this machine); the baseline does: on a quiet host nearly all its calls
//! take the same time, on a loaded one most take longer than its fastest.
//! So the per-packet part measures until it has enough quiet runs (or a
//! cap), and judges the targets on those; the figures over all runs are
//! printed beside the verdicts.

use crate::bench_packet::Case;

/// A run is busy when its baseline's mean is more than this much above the
/// baseline's 5th percentile (its quiet cost): quiet runs here stay within
/// 5%, loaded ones were 25-40% above.
const BUSY_ABOVE_FLOOR: f64 = 1.10;

/// The baseline of one run: its 5th percentile and mean, ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    pub floor_ns: f64,
    pub mean_ns: f64,
}

impl Baseline {
    /// From one run's baseline case; `None` without samples.
    pub fn of(baseline: &Case) -> Option<Baseline> {
        (!baseline.samples_ns.is_empty()).then(|| Baseline {
            floor_ns: baseline.percentile_ns(5),
            mean_ns: baseline.mean_ns(),
        })
    }

    /// Mean over floor.
    pub fn slowdown(&self) -> f64 {
        self.mean_ns / self.floor_ns.max(1.0)
    }

    /// Whether the run was measured on a busy host (`BUSY_ABOVE_FLOOR`).
    pub fn busy(&self) -> bool {
        self.slowdown() > BUSY_ABOVE_FLOOR
    }
}

/// The fewest quiet runs the targets are judged on; with fewer, the host
/// was busy throughout and every run counts.
pub const MIN_QUIET_RUNS: usize = 3;

/// Whether to measure another run: fewer than `wanted` of `runs` were
/// quiet, and fewer than `max_runs` (at least `wanted`) were made.
pub fn needs_another_run(runs: &[Baseline], wanted: usize, max_runs: usize) -> bool {
    let quiet = runs.iter().filter(|b| !b.busy()).count();
    quiet < wanted && runs.len() < max_runs.max(wanted)
}

/// The runs (indices) the targets are judged on: the quiet ones when there
/// are at least `MIN_QUIET_RUNS`, else all of them.
pub fn judged_runs(runs: &[Baseline]) -> Vec<usize> {
    let quiet: Vec<usize> = (0..runs.len()).filter(|&i| !runs[i].busy()).collect();
    if quiet.len() >= MIN_QUIET_RUNS {
        quiet
    } else {
        (0..runs.len()).collect()
    }
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The lines printed under the per-packet table: the load average before
/// and after, each run's baseline mean over its floor, and how many runs
/// were busy.
pub fn report(before: Option<f64>, after: Option<f64>, runs: &[Baseline]) -> String {
    let load = |l: Option<f64>| l.map_or_else(|| "?".to_string(), |l| format!("{l:.2}"));
    let slowdowns: Vec<String> = runs
        .iter()
        .map(|b| format!("{:.2}", b.slowdown()))
        .collect();
    let busy = runs.iter().filter(|b| b.busy()).count();
    let mut out = format!(
        "  Host: load average {} before, {} after; XDP_DROP baseline mean / its 5th percentile, \
         per run: {}.",
        load(before),
        load(after),
        slowdowns.join(", ")
    );
    if busy > 0 {
        let judged = if judged_runs(runs).len() < runs.len() {
            "the table and the verdicts leave them out (each verdict also gives its ratio over \
             all runs)"
        } else {
            "too few runs were quiet, so the table and the verdicts take every run"
        };
        out.push_str(&format!(
            "\n  {busy} of {} run(s) ran on a busy host (baseline mean over {:.0}% above its 5th \
             percentile): other tenants' use of the caches and memory inflates the new-flow \
             ratios far more than the baseline; {judged}.",
            runs.len(),
            (BUSY_ABOVE_FLOOR - 1.0) * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_case(samples_ns: Vec<u64>) -> Case {
        Case {
            name: "XDP_DROP program (baseline)",
            vs_dnat: None,
            samples_ns,
        }
    }

    #[test]
    fn a_run_is_busy_when_its_baseline_mean_is_over_a_tenth_above_its_floor() {
        // Quiet: nearly every call at the floor.
        let mut quiet = vec![80u64; 95];
        quiet.extend([90, 90, 100, 120, 200]);
        let b = Baseline::of(&drop_case(quiet)).unwrap();
        assert_eq!(b.floor_ns, 80.0);
        assert!((b.mean_ns - 82.0).abs() < 1e-9, "{b:?}");
        assert!(!b.busy());
        // Loaded: the floor is still reached, most calls are above it.
        let loaded: Vec<u64> = (0..100).map(|i| 80 + (i % 5) * 10).collect();
        let b = Baseline::of(&drop_case(loaded)).unwrap();
        assert_eq!((b.floor_ns, b.mean_ns), (80.0, 100.0));
        assert!(b.busy());
        assert_eq!(Baseline::of(&drop_case(Vec::new())), None);
    }

    #[test]
    fn the_report_names_the_busy_runs_only_when_there_are_some() {
        let quiet = Baseline {
            floor_ns: 80.0,
            mean_ns: 82.0,
        };
        let busy = Baseline {
            floor_ns: 80.0,
            mean_ns: 104.0,
        };
        assert_eq!(
            report(Some(0.2), Some(0.9), &[quiet, quiet]),
            "  Host: load average 0.20 before, 0.90 after; XDP_DROP baseline mean / its 5th \
             percentile, per run: 1.02, 1.02."
        );
        let loaded = report(None, Some(2.5), &[quiet, busy, quiet]);
        assert!(
            loaded.contains("load average ? before, 2.50 after"),
            "{loaded}"
        );
        assert!(loaded.contains("per run: 1.02, 1.30, 1.02."), "{loaded}");
        assert!(
            loaded.contains("\n  1 of 3 run(s) ran on a busy host"),
            "{loaded}"
        );
        assert!(loaded.contains("every run"), "{loaded}");
        let mostly_quiet = report(None, None, &[quiet, busy, quiet, quiet]);
        assert!(mostly_quiet.contains("leave them out"), "{mostly_quiet}");
    }

    fn runs(busy: &[bool]) -> Vec<Baseline> {
        busy.iter()
            .map(|&b| Baseline {
                floor_ns: 80.0,
                mean_ns: if b { 100.0 } else { 82.0 },
            })
            .collect()
    }

    #[test]
    fn targets_are_judged_on_the_quiet_runs_when_there_are_enough() {
        assert_eq!(
            judged_runs(&runs(&[true, false, false, true, false])),
            vec![1, 2, 4]
        );
        // Two quiet runs are too few: all count.
        assert_eq!(
            judged_runs(&runs(&[true, false, true, false])),
            vec![0, 1, 2, 3]
        );
        assert_eq!(judged_runs(&[]), Vec::<usize>::new());
    }

    #[test]
    fn runs_go_on_until_enough_are_quiet_or_the_cap() {
        // On until 3 are quiet, at most 9.
        let more = |busy: &[bool]| needs_another_run(&runs(busy), 3, 9);
        // At least the minimum, even when all are quiet.
        assert!(more(&[false; 2]));
        assert!(!more(&[false; 3]));
        // Busy runs do not count toward the quiet ones...
        assert!(more(&[false, true, false, true]));
        assert!(!more(&[false, true, false, true, false]));
        // ...up to the cap.
        assert!(more(&[true; 8]));
        assert!(!more(&[true; 9]));
        // A cap below the quiet runs wanted does not cut those short.
        assert!(needs_another_run(&runs(&[false; 2]), 3, 1));
    }
}
