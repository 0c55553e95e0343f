//! `[metrics] namespace` (or `--metrics NAMESPACE`): each command's figures
//! to CloudWatch in one batched PutMetricData, with the dimensions Project,
//! Environment and Command. What is published is decided here from the
//! command's report, by pure functions; failing to publish is a warning,
//! never a failed command.

use std::path::Path;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::cfn::{InfraReport, Outcome};
use crate::frontend::FrontendReport;
use crate::lambda::CodeAction;
use crate::pack::PackReport;

/// One figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: StandardUnit,
}

fn metric(name: &'static str, value: f64, unit: StandardUnit) -> Metric {
    Metric { name, value, unit }
}

fn count(name: &'static str, n: u64) -> Metric {
    metric(name, n as f64, StandardUnit::Count)
}

fn bytes(name: &'static str, n: u64) -> Metric {
    metric(name, n as f64, StandardUnit::Bytes)
}

fn seconds(name: &'static str, s: f64) -> Metric {
    metric(name, s, StandardUnit::Seconds)
}

/// `pack`: how long, how big, how much was compressed and how much came from a cache.
pub fn of_pack(r: &PackReport, took: f64) -> Vec<Metric> {
    let zips = r
        .manifest
        .functions
        .values()
        .chain(r.manifest.layers.values());
    let (zip, unzipped) = zips.fold((0u64, 0u64), |(z, u), m| {
        (
            z.saturating_add(m.zip_size),
            u.saturating_add(m.unzipped_size),
        )
    });
    let run = &r.run;
    let hits = run.from_cache + run.from_previous_zip + run.from_remote;
    vec![
        seconds("Duration", took),
        bytes("ZipBytes", zip),
        bytes("UnzippedBytes", unzipped),
        count("ZipsWritten", run.written.len() as u64),
        count("FilesCompressed", run.compressed as u64),
        count("CacheHits", hits as u64),
    ]
}

/// The DORA figures of a deploy that changed something (or failed).
fn dora(changed: bool, failed: bool, lead_time: Option<f64>) -> Vec<Metric> {
    let mut m = vec![
        count("Deployments", u64::from(changed || failed)),
        count("ChangeFailures", u64::from(failed)),
    ];
    if let (true, Some(lead)) = (changed && !failed, lead_time) {
        m.push(seconds("LeadTime", lead));
    }
    m
}

/// `deploy-infra`: uploads, functions updated, and the DORA figures.
pub fn of_infra(r: &InfraReport, lead_time: Option<f64>) -> Vec<Metric> {
    let updated = r
        .functions
        .iter()
        .filter(|f| f.action == CodeAction::Updated)
        .count() as u64;
    let changed = r.outcome == Outcome::Changed;
    let mut m = vec![
        seconds("Duration", r.seconds),
        count("ObjectsUploaded", r.templates.uploaded + r.zips.uploaded),
        count("FunctionsUpdated", updated),
    ];
    m.extend(dora(changed, r.outcome == Outcome::Failed, lead_time));
    m
}

/// `deploy-frontend`: bytes and objects changed, invalidation paths, DORA.
pub fn of_frontend(r: &FrontendReport, lead_time: Option<f64>) -> Vec<Metric> {
    let objects = r.uploaded.files + r.headers_updated.files + r.deleted.files;
    let paths = r.invalidation.as_ref().map_or(0, |i| i.paths.len()) as u64;
    let mut m = vec![
        seconds("Duration", r.seconds),
        bytes("BytesUploaded", r.uploaded.bytes),
        count("ObjectsChanged", objects),
        count("InvalidationPaths", paths),
    ];
    m.extend(dora(objects > 0, false, lead_time));
    m
}

/// `TimeToRestore`: seconds from the first failed deploy to this success.
/// A rollback: one deployment (of old bytes), its duration, and whether it failed.
pub fn of_rollback(took: f64, failed: bool) -> Vec<Metric> {
    let mut m = vec![seconds("Duration", took), count("Rollbacks", 1)];
    m.extend(dora(!failed, failed, None));
    m
}

pub fn time_to_restore(secs: f64) -> Metric {
    seconds("TimeToRestore", secs)
}

/// A deploy that failed: its duration and one change failure.
pub fn of_failed_deploy(took: f64) -> Vec<Metric> {
    let mut m = vec![seconds("Duration", took)];
    m.extend(dora(false, true, None));
    m
}

/// Seconds from the commit's time to `now` (lead time), when git knows the
/// commit (a CodePipeline source artifact has no history: then `None`).
pub fn lead_time(root: &Path, commit: Option<&str>, now_unix: u64) -> Option<f64> {
    let commit = commit?;
    if !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["show", "-s", "--format=%ct", commit])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let at: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(now_unix.saturating_sub(at) as f64)
}

/// Where the figures go.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub namespace: &'a str,
    pub project: &'a str,
    pub environment: &'a str,
    pub command: &'a str,
}

/// Sends the figures in one PutMetricData; the failure, as a warning to show.
pub async fn publish(
    client: &aws_sdk_cloudwatch::Client,
    to: &Target<'_>,
    metrics: &[Metric],
) -> Result<(), String> {
    let dims = [
        ("Project", to.project),
        ("Environment", to.environment),
        ("Command", to.command),
    ]
    .map(|(n, v)| Dimension::builder().name(n).value(v).build());
    let data: Vec<MetricDatum> = metrics
        .iter()
        .map(|m| {
            MetricDatum::builder()
                .metric_name(m.name)
                .value(m.value)
                .unit(m.unit.clone())
                .set_dimensions(Some(dims.to_vec()))
                .build()
        })
        .collect();
    client
        .put_metric_data()
        .namespace(to.namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let f = crate::aws::classify("PutMetricData", to.namespace, &e);
            format!("metrics were not published: {f}")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rollback_is_a_deployment_and_a_failed_one_a_change_failure() {
        let get = |m: &[Metric], name: &str| m.iter().find(|x| x.name == name).map(|x| x.value);
        let ok = of_rollback(3.0, false);
        assert_eq!(get(&ok, "Rollbacks"), Some(1.0));
        assert_eq!(get(&ok, "Deployments"), Some(1.0));
        assert_eq!(get(&ok, "ChangeFailures"), Some(0.0));
        let failed = of_rollback(3.0, true);
        assert_eq!(get(&failed, "ChangeFailures"), Some(1.0));
        assert_eq!(get(&failed, "Duration"), Some(3.0));
    }

    use super::*;

    #[test]
    fn a_deploy_counts_once_and_a_failure_counts_as_a_change_failure() {
        let names = |m: &[Metric]| m.iter().map(|m| (m.name, m.value)).collect::<Vec<_>>();
        assert_eq!(
            names(&dora(true, false, Some(90.0))),
            [
                ("Deployments", 1.0),
                ("ChangeFailures", 0.0),
                ("LeadTime", 90.0)
            ]
        );
        // Nothing changed: no deployment, no lead time.
        assert_eq!(
            names(&dora(false, false, Some(90.0))),
            [("Deployments", 0.0), ("ChangeFailures", 0.0)]
        );
        assert_eq!(
            names(&of_failed_deploy(3.5)),
            [
                ("Duration", 3.5),
                ("Deployments", 1.0),
                ("ChangeFailures", 1.0)
            ]
        );
    }

    #[test]
    fn lead_time_needs_a_commit_git_knows() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lead_time(dir.path(), None, 100), None);
        assert_eq!(lead_time(dir.path(), Some("--help"), 100), None);
        assert_eq!(lead_time(dir.path(), Some("abc123"), 100), None);
    }
}
