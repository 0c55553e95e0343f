//! The deploying commands through the fault proxy at 20%: each run must exit
//! 0 and leave the server exactly as a fault-free run would. (The tests run a
//! few rounds; `scripts/fault-soak` runs many.)

use std::path::Path;
use std::process::Output;

use crate::common::assert_success;
use crate::fault_proxy::{self, FaultProxy};
use crate::local_aws::{artifact_aws_env, boto, bucket, server};

/// The rate of the tests' fault schedule.
const PERCENT: u64 = 20;

/// A proxy with the test's own seed, moved by `ARTIFACT_FAULT_SEED` (the
/// soak script gives each run another schedule).
fn proxy(seed: u64) -> FaultProxy {
    let offset: u64 = std::env::var("ARTIFACT_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    fault_proxy::start(&server().endpoint, PERCENT, seed.wrapping_add(offset))
}

/// Rounds per test: `default`, or `ARTIFACT_FAULT_ROUNDS` (scripts/fault-soak).
fn rounds(default: u32) -> u32 {
    std::env::var("ARTIFACT_FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs artifact through `proxy`, with more environment.
pub(crate) fn through(
    proxy: &FaultProxy,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut all = vec![("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    all.extend_from_slice(env);
    artifact_aws_env(dir, args, &all)
}

/// Key -> MD5 (hex) of every object in the bucket, read straight from the server.
fn bucket_md5s(bucket: &str) -> serde_json::Value {
    boto(
        "import hashlib\nout = {}\nfor o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []):\n    b = s3.get_object(Bucket=sys.argv[1], Key=o['Key'])['Body'].read()\n    out[o['Key']] = hashlib.md5(b).hexdigest()\nprint(json.dumps(out))",
        &[bucket],
    )
}

/// Relative path -> MD5 (hex) of every file below `dir`.
fn local_md5s(dir: &Path) -> serde_json::Value {
    boto(
        "import hashlib, os\nout = {}\nfor root, _, files in os.walk(sys.argv[1]):\n    for f in files:\n        p = os.path.join(root, f)\n        out[os.path.relpath(p, sys.argv[1])] = hashlib.md5(open(p, 'rb').read()).hexdigest()\nprint(json.dumps(out))",
        &[dir.to_str().unwrap()],
    )
}

#[test]
fn sync_through_faults_converges_every_round() {
    let proxy = proxy(0x5eed_0001);
    let bucket = bucket("faults");
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    for i in 0..40 {
        std::fs::write(
            site.join(format!("assets/a{i}.js")),
            format!("console.log({i});\n"),
        )
        .unwrap();
    }
    std::fs::write(site.join("index.html"), "<p>0</p>\n").unwrap();
    let dest = format!("s3://{bucket}");
    for round in 0..rounds(4) {
        if round > 0 {
            std::fs::write(site.join("index.html"), format!("<p>{round}</p>\n")).unwrap();
            std::fs::write(
                site.join(format!("assets/a{round}.js")),
                format!("// r{round}\n"),
            )
            .unwrap();
            let _ = std::fs::remove_file(site.join(format!("assets/a{}.js", 39 - round % 40)));
            std::fs::write(site.join(format!("assets/new{round}.js")), "1;\n").unwrap();
        }
        let out = through(
            &proxy,
            dir.path(),
            &["sync", "site", &dest, "--delete"],
            &[],
        );
        assert_success(&out);
        let mut want = local_md5s(&site);
        let got = bucket_md5s(&bucket);
        let state = got[".artifact-sync.json"].clone();
        assert!(!state.is_null(), "the state object is there");
        want.as_object_mut()
            .unwrap()
            .insert(".artifact-sync.json".into(), state);
        assert_eq!(got, want, "round {round}");
    }
    let (requests, faults) = proxy.counts();
    let injected: u64 = faults.iter().map(|(_, n)| n).sum();
    assert!(injected > 0, "no fault injected in {requests} requests");
    eprintln!("sync: {requests} requests, faults {faults:?}");
}

#[test]
fn deploy_frontend_through_faults_keeps_every_release_whole() {
    let proxy = proxy(0x5eed_0002);
    let s = crate::deploy_frontend::Site::new();
    let dir = s.sample.dir.path();
    for round in 1..=rounds(4) {
        if round > 1 {
            s.release(round);
        }
        let out = through(
            &proxy,
            dir,
            &["deploy-frontend", "--json"],
            &[("PROJECT_NAME", &s.name)],
        );
        assert_success(&out);
        // Every file of this release is there with its bytes; nothing else
        // but the previous release's chunk and artifact's own records.
        let got = bucket_md5s(&s.bucket);
        let dist = local_md5s(&s.sample.path("frontend/dist"));
        for (key, md5) in dist.as_object().unwrap() {
            if key == "aws-config.js" {
                assert!(!got[key].is_null(), "round {round}: aws-config.js");
                continue;
            }
            assert_eq!(&got[key], md5, "round {round}: {key}");
        }
        let extra: Vec<&String> = got
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| {
                dist.get(k.as_str()).is_none()
                    && !k.starts_with(".artifact-")
                    && *k != "aws-config.js"
            })
            .collect();
        assert!(
            extra.len() <= 1,
            "round {round}: more than the previous chunk kept: {extra:?}"
        );
        let pending = boto(
            "h = json.loads(s3.get_object(Bucket=sys.argv[1], Key='.artifact-deployments.json')['Body'].read())\nprint(json.dumps(h.get('pending_invalidation', [])))",
            &[&s.bucket],
        );
        assert_eq!(
            pending,
            serde_json::json!([]),
            "round {round}: the invalidation was made"
        );
    }
    let (requests, faults) = proxy.counts();
    eprintln!("deploy-frontend: {requests} requests, faults {faults:?}");
    assert!(faults.iter().map(|(_, n)| n).sum::<u64>() > 0);
}

#[test]
fn deploy_infra_through_faults_deploys_the_stack_and_the_code() {
    let proxy = proxy(0x5eed_0003);
    let p = crate::deploy_infra::Project::new();
    let dir = p.sample.dir.path();
    let env = [
        ("PROJECT_NAME", p.name.as_str()),
        ("CODEBUILD_RESOLVED_SOURCE_VERSION", "0123456789abcdef0123"),
    ];
    for round in 0..rounds(3) {
        if round > 0 {
            p.sample
                .edit("lambda/index.py", |t| format!("{t}\n# round {round}\n"));
            if round == 2 {
                p.sample.edit("artifact.toml", |t| {
                    t.replace("[pack]", "[infra.tags]\nround = \"2\"\n\n[pack]")
                });
            }
            p.pack();
        }
        let out = through(
            &proxy,
            dir,
            &["deploy-infra", "--json", "--timeout", "5m"],
            &env,
        );
        assert_success(&out);
        let status = p.stack_status();
        assert!(
            status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE",
            "round {round}: {status}"
        );
        let manifest = p.manifest();
        for f in crate::common::FUNCTIONS {
            assert_eq!(
                p.code_sha(f),
                manifest.functions[f].code_sha256,
                "round {round}: {f}"
            );
        }
        let change_sets = boto(
            "print(json.dumps([c['ChangeSetName'] + ': ' + c['ExecutionStatus'] for c in cfn.list_change_sets(StackName=sys.argv[1]).get('Summaries', []) if c['ExecutionStatus'] != 'EXECUTE_COMPLETE' and c.get('StackName') == sys.argv[1]]))",
            &[&p.stack()],
        );
        // Executed change sets stay listed on the local server, and its listing
        // holds every stack's: only this stack's unexecuted ones are left behind.
        assert_eq!(
            change_sets,
            serde_json::json!([]),
            "round {round}: change set left behind"
        );
    }
    let (requests, faults) = proxy.counts();
    eprintln!("deploy-infra: {requests} requests, faults {faults:?}");
    assert!(faults.iter().map(|(_, n)| n).sum::<u64>() > 0);
}
