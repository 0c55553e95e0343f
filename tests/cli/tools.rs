//! Installing artifact in a stage: the released binary from the deployment
//! bucket, checked against SHA256SUMS, never compiled; and the wheel that puts
//! it on PATH.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{assert_success, repo};
use crate::local_aws::{aws_env, boto, bucket};

const INSTALLING: [&str; 4] = [
    "validate.yml",
    "build.yml",
    "deploy-infra.yml",
    "deploy-frontend.yml",
];

/// The install phase's step that fetches artifact, from `name`.
fn install_step(name: &str) -> String {
    let text = std::fs::read_to_string(repo().join("buildspecs").join(name)).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let cmds = doc["phases"]["install"]["commands"].as_sequence().unwrap();
    cmds.iter()
        .filter_map(|c| c.as_str())
        .find(|c| c.contains("SHA256SUMS"))
        .unwrap_or_else(|| panic!("{name}: no install step with SHA256SUMS"))
        .to_string()
}

#[test]
fn every_stage_installs_the_same_checked_binary_and_compiles_nothing() {
    let first = install_step(INSTALLING[0]);
    for name in INSTALLING {
        let text = std::fs::read_to_string(repo().join("buildspecs").join(name)).unwrap();
        for never in [
            "cargo",
            "rustup",
            "curl",
            "| sh ",
            "| sh\n",
            "| bash",
            "ARTIFACT_VERSION:",
        ] {
            assert!(!text.contains(never), "{name} has {never:?}");
        }
        assert_eq!(
            install_step(name),
            first,
            "{name}: one install step for every stage"
        );
    }
    // The version is set in one place: the pipeline passes it to every project.
    let pipeline = std::fs::read_to_string(repo().join("buildspecs/pipeline.yaml")).unwrap();
    assert_eq!(
        pipeline
            .matches("{ Name: ARTIFACT_VERSION, Value: !Ref ArtifactVersion }")
            .count(),
        5
    );
    assert_eq!(
        pipeline
            .matches("{ Name: TOOLS_BUCKET, Value: !Ref ToolsBucket }")
            .count(),
        5
    );
}

/// Runs the install step with bash against the local server, installing into `bin`.
fn run_step(step: &str, deployment: &str, version: &str, work: &Path) -> Output {
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let step = step
        .replace("/tmp/", &format!("{}/", work.display()))
        .replace("cd /tmp", &format!("cd {}", work.display()))
        .replace("/usr/local/bin", bin.to_str().unwrap());
    let venv_bin = repo().join(".venv/bin");
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    aws_env(&mut cmd)
        .args(["-euo", "pipefail", "-c", &step])
        .env("PATH", path)
        .env("TOOLS_BUCKET", deployment)
        .env("ARTIFACT_VERSION", version)
        .output()
        .unwrap()
}

#[test]
fn the_install_step_takes_a_checked_binary_or_names_the_bootstrap() {
    let deployment = bucket("tools");
    let work = tempfile::tempdir().unwrap();
    let step = install_step("deploy-infra.yml");
    let version = "9.8.7";
    let name = format!(
        "artifact-{version}-{}-unknown-linux-gnu",
        std::env::consts::ARCH
    );
    // Nothing published: the stage stops, naming the object and the bootstrap.
    let out = run_step(&step, &deployment, version, work.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("s3://{deployment}/tools/{version}/"))
            && err.contains("scripts/release"),
        "{err}"
    );
    // Published as scripts/release lays it out: installed, checked, runs.
    let dist = tempfile::tempdir().unwrap();
    let exe = dist.path().join(&name);
    std::fs::copy(env!("CARGO_BIN_EXE_artifact"), &exe).unwrap();
    let sums = Command::new("sha256sum")
        .arg(&name)
        .current_dir(dist.path())
        .output()
        .unwrap();
    std::fs::write(dist.path().join("SHA256SUMS"), &sums.stdout).unwrap();
    let publish = |dir: &Path| {
        let out = crate::local_aws::artifact_aws(
            dir,
            &[
                "sync",
                dir.to_str().unwrap(),
                &format!("s3://{deployment}/tools/{version}/"),
                "-q",
            ],
        );
        assert_success(&out);
    };
    publish(dist.path());
    let out = run_step(&step, &deployment, version, work.path());
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(&format!("artifact {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(work.path().join("bin/artifact").exists());
    // A binary that is not the one SHA256SUMS names: refused.
    boto(
        "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=b'not artifact')",
        &[&deployment, &format!("tools/{version}/{name}")],
    );
    std::fs::remove_file(work.path().join("bin/artifact")).unwrap();
    let out = run_step(&step, &deployment, version, work.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("does not match its line in") && err.contains("SHA256SUMS"),
        "{err}"
    );
    assert!(
        !work.path().join("bin/artifact").exists(),
        "nothing installed"
    );
}

/// Wraps the test's binary in a wheel in `dir` with scripts/wheel.py; its path.
fn make_wheel(dir: &Path) -> String {
    let out = Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("scripts/wheel.py"))
        .args([
            env!("CARGO_BIN_EXE_artifact"),
            env!("CARGO_PKG_VERSION"),
            "manylinux_2_17_x86_64",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The wheel (scripts/wheel.py, as scripts/release makes it) installs into a
/// fresh venv with pip and puts a working `artifact` on its PATH.
#[test]
fn the_wheel_puts_artifact_on_path_in_a_fresh_venv() {
    let work = tempfile::tempdir().unwrap();
    let python = repo().join(".venv/bin/python");
    crate::local_aws::server();
    let wheel = make_wheel(work.path());
    assert!(
        wheel.ends_with(&format!(
            "artifact-{}-py3-none-manylinux_2_17_x86_64.whl",
            env!("CARGO_PKG_VERSION")
        )),
        "{wheel}"
    );
    let venv = work.path().join("venv");
    assert_success(
        &Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap(),
    );
    assert_success(
        &Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--no-index",
                "--disable-pip-version-check",
                &wheel,
            ])
            .output()
            .unwrap(),
    );
    let out = Command::new(venv.join("bin/artifact"))
        .arg("--version")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    // One real command with it.
    let s = crate::common::Sample::of("sample");
    let out = Command::new(venv.join("bin/artifact"))
        .args(["validate", "--offline", "-q"])
        .current_dir(s.dir.path())
        .env_remove("PROJECT_NAME")
        .output()
        .unwrap();
    assert_success(&out);
    // The same binary gives the same wheel bytes.
    let again = tempfile::tempdir().unwrap();
    let second = make_wheel(again.path());
    assert_eq!(
        std::fs::read(&wheel).unwrap(),
        std::fs::read(second).unwrap()
    );
}
