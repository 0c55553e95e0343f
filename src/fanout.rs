//! A deploy across `[[targets]]`: which targets a run selects (pure), and
//! the waves run in order, each wave's targets in parallel up to
//! `[deploy] max_parallel`, with `failure_tolerance` failures allowed per
//! wave. Past the tolerance, the wave starts no more targets and later waves
//! never start.

use std::future::Future;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};

use crate::config::{Fanout, Target};

/// Which targets a run deploys: `--all-targets`, `--target NAME…`, `--wave N`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub all: bool,
    pub names: Vec<String>,
    pub wave: Option<u32>,
}

impl Selection {
    /// Whether the command line asked for targets at all.
    pub fn any(&self) -> bool {
        self.all || !self.names.is_empty() || self.wave.is_some()
    }
}

/// The selected targets, wave by wave (waves in order, targets in file
/// order); an error names what does not match the project file.
pub fn select(targets: &[Target], sel: &Selection) -> Result<Vec<Vec<Target>>, String> {
    if targets.is_empty() {
        return Err(
            "artifact.toml has no [[targets]]: add one per account and region, or run without --all-targets, --target and --wave".into(),
        );
    }
    if let Some(unknown) = sel
        .names
        .iter()
        .find(|n| !targets.iter().any(|t| &t.name == *n))
    {
        let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        return Err(format!(
            "--target {unknown}: no such target in artifact.toml (targets: {})",
            known.join(", ")
        ));
    }
    if let Some(w) = sel.wave {
        if !targets.iter().any(|t| t.wave == w) {
            let last = targets.iter().map(|t| t.wave).max().unwrap_or(1);
            return Err(format!(
                "--wave {w}: no target is in wave {w} (waves 1 to {last})"
            ));
        }
    }
    let chosen = |t: &&Target| {
        (sel.all || sel.names.is_empty() || sel.names.contains(&t.name))
            && sel.wave.is_none_or(|w| t.wave == w)
    };
    let mut waves: Vec<u32> = targets.iter().filter(chosen).map(|t| t.wave).collect();
    waves.sort_unstable();
    waves.dedup();
    Ok(waves
        .into_iter()
        .map(|w| {
            targets
                .iter()
                .filter(chosen)
                .filter(|t| t.wave == w)
                .cloned()
                .collect()
        })
        .collect())
}

/// What one target's deploy came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRow {
    pub target: String,
    pub account: String,
    pub region: String,
    pub wave: u32,
    /// `changed`, `unchanged`, `failed` or `not started`.
    pub result: String,
    pub seconds: f64,
    /// What it changed, in a few words (or why it failed).
    pub detail: String,
}

/// What a deploy across targets did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanoutReport {
    pub targets: Vec<TargetRow>,
    /// Whether every wave stayed within `failure_tolerance`.
    pub tolerance_held: bool,
}

/// One target's deploy, as the runner sees it: `(result, detail)` or the error.
pub type Outcome = Result<(String, String), String>;

/// Runs the waves in order. `deploy` is called once per started target.
pub async fn run<F, Fut>(waves: Vec<Vec<Target>>, fanout: Fanout, deploy: F) -> FanoutReport
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let mut rows = Vec::new();
    let mut held = true;
    for wave in waves {
        if !held {
            rows.extend(
                wave.iter()
                    .map(|t| not_started(t, "an earlier wave failed")),
            );
            continue;
        }
        let (wave_rows, wave_held) = run_wave(wave, fanout, &deploy).await;
        rows.extend(wave_rows);
        held = wave_held;
    }
    FanoutReport {
        targets: rows,
        tolerance_held: held,
    }
}

/// One wave: targets started in order, at most `max_parallel` at once; none
/// started once its failures pass the tolerance.
async fn run_wave<F, Fut>(wave: Vec<Target>, fanout: Fanout, deploy: &F) -> (Vec<TargetRow>, bool)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let allowed = fanout.failure_tolerance.allowed(wave.len());
    let mut rows: Vec<Option<TargetRow>> = vec![None; wave.len()];
    let mut failed = 0usize;
    let mut running = FuturesUnordered::new();
    let mut next = 0usize;
    loop {
        while next < wave.len() && running.len() < fanout.max_parallel && failed <= allowed {
            let t = wave[next].clone();
            let i = next;
            next += 1;
            running.push(async move {
                let started = Instant::now();
                let outcome = deploy(t.clone()).await;
                (i, t, outcome, started.elapsed().as_secs_f64())
            });
        }
        let Some((i, t, outcome, seconds)) = running.next().await else {
            break;
        };
        let (result, detail) = match outcome {
            Ok(done) => done,
            Err(e) => {
                failed += 1;
                ("failed".to_string(), e)
            }
        };
        rows[i] = Some(row(&t, result, seconds, detail));
    }
    let rows = rows
        .into_iter()
        .zip(&wave)
        .map(|(r, t)| {
            r.unwrap_or_else(|| not_started(t, "the wave's failures passed the tolerance"))
        })
        .collect();
    (rows, failed <= allowed)
}

fn row(t: &Target, result: String, seconds: f64, detail: String) -> TargetRow {
    TargetRow {
        target: t.name.clone(),
        account: t.account.clone(),
        region: t.region.clone(),
        wave: t.wave,
        result,
        seconds,
        detail,
    }
}

fn not_started(t: &Target, why: &str) -> TargetRow {
    row(t, "not started".into(), 0.0, why.into())
}

/// The summary table, one line per target, then the verdict.
pub fn render(r: &FanoutReport) -> Vec<String> {
    let mut lines = vec![format!(
        "  {:<20} {:<12} {:<14} {:>4}  {:<11} {:>7}  {}",
        "target", "account", "region", "wave", "result", "seconds", "detail"
    )];
    for t in &r.targets {
        lines.push(format!(
            "  {:<20} {:<12} {:<14} {:>4}  {:<11} {:>7.1}  {}",
            t.target, t.account, t.region, t.wave, t.result, t.seconds, t.detail
        ));
    }
    let failed = r.targets.iter().filter(|t| t.result == "failed").count();
    let skipped = r
        .targets
        .iter()
        .filter(|t| t.result == "not started")
        .count();
    lines.push(format!(
        "targets: {} deployed, {failed} failed, {skipped} not started; failure tolerance {}",
        r.targets.len() - failed - skipped,
        if r.tolerance_held { "held" } else { "exceeded" }
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tolerance;

    fn target(name: &str, wave: u32) -> Target {
        Target {
            name: name.into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            environment: None,
            role_arn: None,
            external_id: None,
            wave,
        }
    }

    fn names(waves: &[Vec<Target>]) -> Vec<Vec<&str>> {
        waves
            .iter()
            .map(|w| w.iter().map(|t| t.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn selection_by_all_name_and_wave() {
        let ts = [target("a", 2), target("b", 1), target("c", 2)];
        let all = Selection {
            all: true,
            ..Selection::default()
        };
        assert_eq!(
            names(&select(&ts, &all).unwrap()),
            [vec!["b"], vec!["a", "c"]]
        );
        let one = Selection {
            names: vec!["c".into()],
            ..Selection::default()
        };
        assert_eq!(names(&select(&ts, &one).unwrap()), [vec!["c"]]);
        let wave = Selection {
            wave: Some(2),
            ..Selection::default()
        };
        assert_eq!(names(&select(&ts, &wave).unwrap()), [vec!["a", "c"]]);
        let unknown = Selection {
            names: vec!["d".into()],
            ..Selection::default()
        };
        assert!(select(&ts, &unknown).unwrap_err().contains("--target d"));
        let empty = Selection {
            wave: Some(3),
            ..Selection::default()
        };
        assert!(select(&ts, &empty).unwrap_err().contains("--wave 3"));
        assert!(select(&[], &all).unwrap_err().contains("no [[targets]]"));
    }

    fn fanout(parallel: usize, tolerance: Tolerance) -> Fanout {
        Fanout {
            max_parallel: parallel,
            failure_tolerance: tolerance,
        }
    }

    async fn deploy(t: Target) -> Outcome {
        if t.name.starts_with("bad") {
            Err(format!("{} failed", t.name))
        } else {
            Ok(("changed".into(), String::new()))
        }
    }

    fn results(r: &FanoutReport) -> Vec<(&str, &str)> {
        r.targets
            .iter()
            .map(|t| (t.target.as_str(), t.result.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn a_failure_within_the_tolerance_lets_every_wave_run() {
        let waves = vec![
            vec![target("a", 1), target("bad1", 1)],
            vec![target("c", 2)],
        ];
        let r = run(waves, fanout(4, Tolerance::Count(1)), deploy).await;
        assert!(r.tolerance_held);
        assert_eq!(
            results(&r),
            [("a", "changed"), ("bad1", "failed"), ("c", "changed")]
        );
    }

    #[tokio::test]
    async fn past_the_tolerance_the_wave_starts_no_more_and_later_waves_never_start() {
        // One at a time: the first failure stops the wave before its third target.
        let waves = vec![
            vec![target("a", 1), target("bad1", 1), target("b", 1)],
            vec![target("c", 2)],
        ];
        let r = run(waves, fanout(1, Tolerance::Count(0)), deploy).await;
        assert!(!r.tolerance_held);
        assert_eq!(
            results(&r),
            [
                ("a", "changed"),
                ("bad1", "failed"),
                ("b", "not started"),
                ("c", "not started")
            ]
        );
        let lines = render(&r);
        assert!(lines
            .last()
            .unwrap()
            .contains("1 deployed, 1 failed, 2 not started"));
        assert!(lines.last().unwrap().ends_with("exceeded"));
    }

    #[tokio::test]
    async fn targets_of_a_wave_run_in_parallel_up_to_max_parallel() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let waves = vec![(0..6).map(|i| target(&format!("t{i}"), 1)).collect()];
        let r = run(waves, fanout(3, Tolerance::Count(0)), |_t| async {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(("unchanged".into(), String::new()))
        })
        .await;
        assert_eq!(r.targets.len(), 6);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
