//! SIGKILL at varied moments: the next run converges, leaves no stray files,
//! and a site's live release never points at an asset that is not there.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{assert_success, files_below, Sample};
use crate::local_aws::{aws_env, boto, bucket};

/// Moments to kill at, from before the first request to near the end; with
/// `ARTIFACT_KILL_TRIALS=N` (scripts/kill-trials), N moments spread over 0–400 ms.
fn delays() -> Vec<u64> {
    match std::env::var("ARTIFACT_KILL_TRIALS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(n) if n > 0 => (0..n).map(|i| i * 400 / n).collect(),
        _ => vec![0, 5, 15, 30, 60, 100, 180, 300],
    }
}

/// Starts artifact in `dir` (against the local server), kills it after
/// `delay`, and waits for it.
fn kill_after(dir: &Path, args: &[&str], env: &[(&str, &str)], delay: Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
    aws_env(&mut cmd)
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

fn strays(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .filter(|f| f.contains(".artifact-") && f.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_killed_pack_is_finished_by_the_next_with_the_same_bytes() {
    let reference = Sample::new();
    reference.pack(&["--no-cache"]);
    for delay in delays() {
        let s = Sample::new();
        kill_after(s.dir.path(), &["pack"], &[], Duration::from_millis(delay));
        s.pack(&[]);
        assert!(
            strays(&s.path("build/lambda")).is_empty(),
            "after {delay} ms"
        );
        assert!(
            strays(&s.path(".artifact-cache")).is_empty(),
            "after {delay} ms: {:?}",
            strays(&s.path(".artifact-cache"))
        );
        for f in crate::common::FUNCTIONS {
            let zip = format!("build/lambda/{f}.zip");
            assert_eq!(
                std::fs::read(s.path(&zip)).unwrap(),
                std::fs::read(reference.path(&zip)).unwrap(),
                "{zip} after a kill at {delay} ms"
            );
        }
        // A rebuild killed at the same moment (zips swapped, records written).
        s.edit("lambda/index.py", |t| format!("{t}\n# after {delay}\n"));
        kill_after(s.dir.path(), &["pack"], &[], Duration::from_millis(delay));
        let r = s.pack(&[]);
        assert!(
            strays(&s.path("build/lambda")).is_empty(),
            "after {delay} ms"
        );
        for m in r.manifest.functions.values() {
            let bytes = std::fs::read(s.path(&format!("build/lambda/{}", m.zip))).unwrap();
            let sha = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
            assert_eq!(
                artifact::util::hex(&sha),
                m.sha256,
                "{} after {delay} ms",
                m.zip
            );
        }
    }
}

#[test]
fn a_killed_sync_is_finished_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    for i in 0..150 {
        std::fs::write(
            site.join(format!("f{i}.js")),
            format!("// {i}\n").repeat(50),
        )
        .unwrap();
    }
    // One file goes up in three parts: a kill may leave its upload open.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(site.join("model.bin"), big).unwrap();
    std::fs::write(
        dir.path().join("artifact.toml"),
        "[project]\nname = \"kills\"\n\n[sync]\nmultipart_threshold = 5242880\npart_size = 5242880\n",
    )
    .unwrap();
    for delay in delays() {
        let b = bucket("kill");
        let dest = format!("s3://{b}");
        kill_after(
            dir.path(),
            &["sync", "site", &dest],
            &[],
            Duration::from_millis(delay),
        );
        let out = crate::local_aws::artifact_aws(dir.path(), &["sync", "site", &dest, "--json"]);
        assert_success(&out);
        let keys = boto(
            "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []))))",
            &[&b],
        );
        assert_eq!(
            keys.as_array().unwrap().len(),
            152,
            "after a kill at {delay} ms"
        );
        let uploads = boto(
            "print(json.dumps(len(s3.list_multipart_uploads(Bucket=sys.argv[1]).get('Uploads', []))))",
            &[&b],
        );
        assert_eq!(uploads, 0);
    }
}

#[test]
fn a_killed_frontend_deploy_never_breaks_the_live_release_and_the_next_finishes() {
    for delay in delays() {
        let s = crate::deploy_frontend::Site::new();
        let env = [("PROJECT_NAME", s.name.as_str())];
        s.deploy(&[]);
        s.release(2);
        kill_after(
            s.sample.dir.path(),
            &["deploy-frontend"],
            &env,
            Duration::from_millis(delay),
        );
        // Whatever index.html the bucket serves, the chunk it loads is there.
        let live = boto(
            "print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key='index.html')['Body'].read().decode()))",
            &[&s.bucket],
        );
        let html = live.as_str().unwrap();
        let start = html.find("/assets/").unwrap() + 1;
        let end = start + html[start..].find(".js").unwrap() + 3;
        let keys = s.keys();
        assert!(
            keys.contains(&html[start..end].to_string()),
            "after a kill at {delay} ms: {html}"
        );
        // The next run finishes the release and keeps the previous one's chunk.
        let r = s.deploy(&[]);
        assert_eq!(r.deleted.files, 0, "after a kill at {delay} ms");
        let keys = s.keys();
        assert!(keys.contains(&"assets/index-r2.js".to_string()));
        assert!(
            keys.contains(&"assets/index-4f2a9c1e.js".to_string()),
            "the previous release stays"
        );
        assert!(strays(s.sample.dir.path()).is_empty());
    }
}
