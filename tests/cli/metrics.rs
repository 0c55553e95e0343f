//! Figures published to CloudWatch on the local AWS server: names,
//! dimensions and values; a failing PutMetricData never fails a command.

use std::process::Command;

use crate::common::{assert_failure, assert_success};
use crate::deploy_infra::Project;
use crate::local_aws::boto;

/// Each metric of `namespace` for `command` of project `name`: (metric, sum, samples).
fn published(namespace: &str, name: &str, command: &str) -> Vec<(String, f64, u64)> {
    let script = r#"
import datetime
cw = boto3.client('cloudwatch')
ns, project, command = sys.argv[1], sys.argv[2], sys.argv[3]
dims = [{'Name': 'Project', 'Value': project}, {'Name': 'Environment', 'Value': 'dev'}, {'Name': 'Command', 'Value': command}]
now = datetime.datetime.now(datetime.timezone.utc)
out = []
for m in sorted({m['MetricName'] for m in cw.list_metrics(Namespace=ns, Dimensions=dims)['Metrics']}):
    st = cw.get_metric_statistics(Namespace=ns, MetricName=m, Dimensions=dims, StartTime=now - datetime.timedelta(hours=1),
                                  EndTime=now + datetime.timedelta(hours=1), Period=7200, Statistics=['Sum', 'SampleCount'])
    out.append([m, sum(p['Sum'] for p in st['Datapoints']), int(sum(p['SampleCount'] for p in st['Datapoints']))])
print(json.dumps(out))
"#;
    serde_json::from_value(boto(script, &[namespace, name, command])).unwrap()
}

fn value(figures: &[(String, f64, u64)], metric: &str) -> (f64, u64) {
    figures
        .iter()
        .find(|(m, _, _)| m == metric)
        .map(|(_, sum, n)| (*sum, *n))
        .unwrap_or_else(|| panic!("no {metric} in {figures:?}"))
}

#[test]
fn pack_and_deploys_publish_their_figures_and_an_unchanged_deploy_is_no_deployment() {
    let p = Project::new();
    let ns = format!("Artifact/{}", p.name);
    // pack (again: the project was packed without metrics) writes nothing new.
    assert_success(&p.run(&["pack", "-q", "--metrics", &ns]));
    let pack = published(&ns, &p.name, "pack");
    assert_eq!(value(&pack, "ZipsWritten"), (0.0, 1));
    let zip_bytes: u64 = p.manifest().functions.values().map(|m| m.zip_size).sum();
    assert_eq!(value(&pack, "ZipBytes"), (zip_bytes as f64, 1));
    assert_eq!(value(&pack, "CacheHits").1, 1);

    // The namespace from the project file this time.
    p.sample.edit("artifact.toml", |t| {
        format!("{t}\n[metrics]\nnamespace = \"{ns}\"\n")
    });
    p.deploy(&[]);
    p.deploy(&[]);
    let infra = published(&ns, &p.name, "deploy-infra");
    // Two deploys, one of which changed something.
    assert_eq!(value(&infra, "Deployments"), (1.0, 2));
    assert_eq!(value(&infra, "ChangeFailures"), (0.0, 2));
    // The template, five zips and their SBOMs.
    assert_eq!(value(&infra, "ObjectsUploaded"), (11.0, 2));
    assert_eq!(value(&infra, "Duration").1, 2);
    // No git history in the copy: no lead time.
    assert!(!infra.iter().any(|(m, _, _)| m == "LeadTime"), "{infra:?}");
}

#[test]
fn a_refusal_before_anything_changed_is_no_change_failure() {
    let p = Project::unpacked();
    p.pack();
    let ns = format!("Artifact/{}", p.name);
    // No deployment bucket: deploy-infra refuses before it changes anything.
    let out = p.run(&["deploy-infra", "--metrics", &ns, "--timeout", "60s"]);
    assert_failure(&out);
    let infra = published(&ns, &p.name, "deploy-infra");
    assert!(
        !infra
            .iter()
            .any(|(m, _, _)| m == "ChangeFailures" || m == "Deployments"),
        "{infra:?}"
    );
}

#[test]
fn a_deploy_from_a_git_checkout_reports_its_lead_time() {
    let p = Project::new();
    let dir = p.sample.dir.path();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "sample"]);
    let head = git(&["rev-parse", "HEAD"]);
    let ns = format!("Artifact/{}", p.name);
    let out = crate::local_aws::artifact_aws_env(
        dir,
        &["deploy-infra", "--metrics", &ns, "--timeout", "120s"],
        &[
            ("PROJECT_NAME", &p.name),
            ("CODEBUILD_RESOLVED_SOURCE_VERSION", &head),
        ],
    );
    assert_success(&out);
    let infra = published(&ns, &p.name, "deploy-infra");
    // Committed just now: a lead time of seconds.
    let (lead, n) = value(&infra, "LeadTime");
    assert_eq!(n, 1);
    assert!((0.0..600.0).contains(&lead), "{lead}");
}

#[test]
fn a_failing_put_metric_data_is_a_warning_not_a_failed_deploy() {
    let p = Project::new();
    let ns = format!("Artifact/{}", p.name);
    // CloudWatch alone points at a closed port.
    let out = crate::local_aws::artifact_aws_env(
        p.sample.dir.path(),
        &["deploy-infra", "--metrics", &ns, "--timeout", "120s"],
        &[
            ("PROJECT_NAME", &p.name),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:1"),
        ],
    );
    assert_success(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: metrics were not published: PutMetricData"),
        "{err}"
    );
    assert_eq!(p.stack_status(), "CREATE_COMPLETE");
    assert!(published(&ns, &p.name, "deploy-infra").is_empty());
    // A namespace CloudWatch would refuse is refused before anything is done.
    let out = p.run(&["deploy-infra", "--metrics", "AWS/Lambda"]);
    let err = assert_failure(&out);
    assert!(err.contains("AWS/"), "{err}");
}

#[test]
fn a_frontend_deploy_publishes_what_it_changed() {
    let s = crate::deploy_frontend::Site::new();
    let ns = format!("Artifact/{}", s.name);
    let first = s.deploy(&["--metrics", &ns]);
    s.deploy(&["--metrics", &ns]);
    let figures = published(&ns, &s.name, "deploy-frontend");
    assert_eq!(
        value(&figures, "BytesUploaded"),
        (first.uploaded.bytes as f64, 2)
    );
    let changed = first.uploaded.files + first.headers_updated.files;
    assert_eq!(value(&figures, "ObjectsChanged"), (changed as f64, 2));
    // The second deploy changed nothing: one deployment in two runs.
    assert_eq!(value(&figures, "Deployments"), (1.0, 2));
    let paths = first.invalidation.map_or(0, |i| i.paths.len());
    assert_eq!(value(&figures, "InvalidationPaths"), (paths as f64, 2));
}

#[test]
fn a_success_after_failed_deploys_publishes_the_time_to_restore() {
    let p = Project::unpacked();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    let ns = format!("Artifact/{}", p.name);
    // A role of the stack's name made by hand: the server refuses to create
    // the stack's, the stack fails, and the history lists the failure (a
    // refusal before any change would not be one).
    p.pack();
    let role = format!("{}-dev-lambda", p.name);
    boto(
        "boto3.client('iam').create_role(RoleName=sys.argv[1], AssumeRolePolicyDocument='{}')",
        &[&role],
    );
    assert_failure(&p.run(&["deploy-infra", "--metrics", &ns, "--timeout", "120s"]));
    boto(
        "boto3.client('iam').delete_role(RoleName=sys.argv[1])",
        &[&role],
    );
    let out = p.run(&[
        "deploy-infra",
        "--metrics",
        &ns,
        "--timeout",
        "120s",
        "--replace-failed-stack",
    ]);
    assert_success(&out);
    let out = p.run(&["history", "--json"]);
    assert_success(&out);
    let h: Vec<artifact::history::Entry> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[1].outcome, "failed");
    assert!(!h[1].summary.is_empty(), "{h:?}");
    let infra = published(&ns, &p.name, "deploy-infra");
    let (restore, n) = value(&infra, "TimeToRestore");
    assert_eq!(n, 1);
    assert!((0.0..600.0).contains(&restore), "{restore}");
    assert_eq!(value(&infra, "ChangeFailures"), (1.0, 2));
    // A failed deploy is no rollback target: there is none before the success.
    let err = assert_failure(&p.run(&["rollback", "--infra"]));
    assert!(err.contains("holds 1 deployment"), "{err}");
}
