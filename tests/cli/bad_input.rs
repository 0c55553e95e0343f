//! Bad input: each case is a clear error naming what is at fault, a non-zero
//! exit, and nothing written.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use crate::common::*;

/// Runs pack, expects failure, checks nothing was written, returns stderr.
fn fails(s: &Sample) -> String {
    let err = assert_failure(&s.run(&["pack"]));
    assert!(!s.path("build").exists(), "output written despite: {err}");
    err
}

#[test]
fn missing_project_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = assert_failure(&artifact(dir.path(), &["pack"]));
    assert!(err.contains("artifact.toml"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn malformed_project_file_names_line_and_key() {
    let s = Sample::new();
    s.edit("artifact.toml", |t| t.replace("out = ", "output = "));
    let err = fails(&s);
    assert!(err.contains("line 11"), "{err}");
    assert!(err.contains("output"), "{err}");
    s.edit("artifact.toml", |t| {
        t.replace("output = \"build/lambda\"", "out = \"build/lambda")
    });
    let err = fails(&s);
    assert!(err.contains("artifact.toml"), "{err}");
    assert!(err.contains("line 11"), "{err}");
}

#[test]
fn missing_source_file() {
    let s = Sample::new();
    std::fs::remove_file(s.path("lambda/rbac_middleware.py")).unwrap();
    let err = fails(&s);
    assert!(err.contains("api-handler"), "{err}");
    assert!(err.contains("lambda/rbac_middleware.py"), "{err}");
}

#[test]
fn two_files_landing_on_one_path_name_both_sources() {
    let s = Sample::new();
    s.edit("artifact.toml", |t| {
        t.replace(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            "files = [\"index.py\", \"rbac_middleware.py\", { path = \"poller/execution_finder.py\", as = \"index.py\" }]",
        )
    });
    let err = fails(&s);
    assert!(err.contains("`index.py`"), "{err}");
    assert!(err.contains("lambda/index.py"), "{err}");
    assert!(err.contains("lambda/poller/execution_finder.py"), "{err}");
}

#[test]
fn a_handler_colliding_with_the_shared_folder_names_both() {
    let s = Sample::new();
    std::fs::write(s.path("lambda/package/index.py"), "x = 1\n").unwrap();
    let err = fails(&s);
    assert!(err.contains("lambda/package/index.py"), "{err}");
    assert!(err.contains("lambda/index.py"), "{err}");
}

#[test]
fn a_symlink_leading_outside_the_project() {
    let s = Sample::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.py"), "x = 1\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.py"),
        s.path("lambda/package/secret.py"),
    )
    .unwrap();
    let err = fails(&s);
    assert!(err.contains("lambda/package/secret.py"), "{err}");
    assert!(err.contains("outside the project"), "{err}");
}

#[test]
fn a_symlink_inside_the_project_is_followed() {
    let s = Sample::new().without_bytecode();
    std::os::unix::fs::symlink("../index.py", s.path("lambda/package/linked.py")).unwrap();
    let report = s.pack(&[]);
    assert_eq!(
        report.manifest.functions["execution-finder"].file_count, 7,
        "the link is packed as a regular file"
    );
}

#[test]
fn an_unreadable_file() {
    let s = Sample::new();
    // A dangling link cannot be read by anyone, root included.
    std::os::unix::fs::symlink("gone.py", s.path("lambda/package/dangling.py")).unwrap();
    let err = fails(&s);
    assert!(err.contains("lambda/package/dangling.py"), "{err}");

    // Permission bits only stop a user that is not root.
    let s = Sample::new();
    let p = s.path("lambda/index.py");
    std::fs::set_permissions(&p, PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read(&p).is_err() {
        let err = fails(&s);
        assert!(err.contains("lambda/index.py"), "{err}");
        assert!(err.contains("ermission denied"), "{err}");
    }
}

#[test]
fn a_special_file_is_refused_not_read() {
    let s = Sample::new();
    let fifo = s.path("lambda/package/pipe");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let err = fails(&s);
    assert!(err.contains("lambda/package/pipe"), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_file_name_that_is_not_utf8() {
    let s = Sample::new();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.py");
    std::fs::write(s.path("lambda/package").join(name), "x = 1\n").unwrap();
    let err = fails(&s);
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(err.contains("lambda/package/caf"), "{err}");
}

#[test]
fn a_function_name_too_long_for_lambda() {
    let s = Sample::new();
    // aws-elasticdrs-orchestrator-dev- is 32 characters: 32 + 33 = 65.
    let long = "f".repeat(33);
    s.edit("artifact.toml", |t| t.replace("frontend-builder", &long));
    let err = fails(&s);
    assert!(err.contains(&long), "{err}");
    assert!(err.contains("65 characters"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    let s = Sample::new();
    s.edit("artifact.toml", |t| {
        t.replace("frontend-builder", &"f".repeat(32))
    });
    s.pack(&[]);
}

#[test]
fn a_function_name_with_characters_lambda_refuses() {
    let s = Sample::new();
    s.edit("artifact.toml", |t| {
        t.replace(
            "[functions.frontend-builder]",
            "[functions.\"frontend.builder\"]",
        )
    });
    let err = fails(&s);
    assert!(err.contains("frontend.builder"), "{err}");
    assert!(err.contains("'.'"), "{err}");
}

#[test]
fn an_environment_override_that_breaks_a_name() {
    let s = Sample::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"))
        .arg("pack")
        .current_dir(s.dir.path())
        .env("ENVIRONMENT", "x".repeat(40))
        .output()
        .unwrap();
    let err = assert_failure(&out);
    assert!(err.contains("at most 64"), "{err}");
}

#[test]
fn the_shared_folder_missing() {
    let s = Sample::new();
    std::fs::remove_dir_all(s.path("lambda/package")).unwrap();
    let err = fails(&s);
    assert!(err.contains("lambda/package"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn over_lambdas_unzipped_limit_names_the_largest_folders() {
    let s = Sample::new();
    std::fs::create_dir_all(s.path("lambda/package/bigdata")).unwrap();
    // Sparse: the limit is checked from sizes before anything is read.
    let f = std::fs::File::create(s.path("lambda/package/bigdata/blob.bin")).unwrap();
    f.set_len(262_144_001).unwrap();
    let err = fails(&s);
    assert!(err.contains("262144000"), "{err}");
    assert!(err.contains("bigdata/"), "{err}");
}

/// Limits and hostile values on the command line and in the project file:
/// each is refused with a message naming it, never a panic (exit 101), and
/// nothing is written or sent.
#[test]
fn out_of_range_values_are_refused_without_a_panic() {
    let s = Sample::new();
    std::fs::write(s.path("frontend/dist/.artifact-sync.json"), "{}").unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["pack", "--jobs", "0"], "", "1 to 256 worker threads"),
        (&["pack", "--jobs", "100000"], "", "1 to 256 worker threads"),
        (
            &["deploy-infra", "--timeout", "99999999999999999h"],
            "",
            "longer than 12 hours",
        ),
        (
            &["deploy-infra", "--timeout", "5000000000000000h"],
            "",
            "longer than 12 hours",
        ),
        (
            &["deploy-frontend", "--timeout", "13h"],
            "",
            "longer than 12 hours",
        ),
        (
            &["deploy-frontend", "--keep-previous", "18446744073709551615"],
            "",
            "keep 0 to 100",
        ),
        (
            &[
                "sync",
                "frontend/dist",
                "s3://some-bucket",
                "--max-delete",
                "5",
            ],
            "",
            "--delete",
        ),
        (
            &["deploy-infra"],
            "[infra]\ntimeout_minutes = 999999999999999999\n",
            "infra.timeout_minutes",
        ),
        (
            &["deploy-frontend"],
            "[infra]\ntimeout_minutes = 0\n",
            "infra.timeout_minutes",
        ),
        (
            &["deploy-frontend", "--dist", "artifact.toml"],
            "",
            "is a file, not a folder",
        ),
        (
            &["sync", "frontend/dist", "s3://some-bucket"],
            "",
            ".artifact-sync.json",
        ),
    ];
    let original = std::fs::read_to_string(s.path("artifact.toml")).unwrap();
    for (args, config, expected) in cases {
        let text = original.replace("[frontend]\n", &format!("{config}[frontend]\n"));
        std::fs::write(s.path("artifact.toml"), text).unwrap();
        let out = crate::local_aws::artifact_aws(s.dir.path(), args);
        let err = assert_failure(&out);
        assert_ne!(out.status.code(), Some(101), "panic on {args:?}:\n{err}");
        assert!(err.contains(expected), "{args:?} {config:?}:\n{err}");
        assert!(!s.path("build").exists(), "{args:?} wrote output");
        assert!(!s.path("deployment-summary.json").exists());
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::write(
        s.path("artifact.toml"),
        original.replace("[frontend]\n", "[frontend]\nkeep_previous = 1000\n"),
    )
    .unwrap();
    let err = assert_failure(&crate::local_aws::artifact_aws(
        s.dir.path(),
        &["deploy-frontend"],
    ));
    assert!(err.contains("frontend.keep_previous"), "{err}");
    assert!(err.contains("hint: keep 0 to 100"), "{err}");
}

#[test]
fn an_output_folder_inside_a_packed_folder_is_refused() {
    let s = Sample::new();
    s.edit("artifact.toml", |t| {
        t.replace("out = \"build/lambda\"", "out = \"lambda/package/zips\"")
    });
    let err = assert_failure(&s.run(&["pack"]));
    assert!(err.contains("lambda/package/zips is inside"), "{err}");
    assert!(err.contains("hint: set pack.out"), "{err}");
    assert!(!s.path("lambda/package/zips").exists(), "nothing written");
}

/// One census case: what to add to artifact.toml, the arguments, what the
/// error must name, more environment.
type Case<'a> = (&'a str, &'a [&'a str], &'a str, &'a [(&'a str, &'a str)]);

/// A census of hostile project files and arguments, end to end: each one
/// fails with a message naming what is at fault, never panics, and writes
/// nothing. (`extra` is added to the sample's artifact.toml; `args` run.)
#[test]
fn a_census_of_hostile_input() {
    let s = Sample::new();
    let original = std::fs::read_to_string(s.path("artifact.toml")).unwrap();
    let cases: &[Case] = &[
        ("", &["pack", "--config", "nope.toml"], "nope.toml", &[]),
        (
            "[pack]\ncompression_level = 12\n",
            &["pack"],
            "pack.compression_level",
            &[],
        ),
        ("", &["pack", "--jobs", "-1"], "-1", &[]),
        (
            "",
            &["deploy-infra", "--timeout", "0"],
            "more than zero",
            &[],
        ),
        (
            "",
            &["deploy-infra", "--timeout", "5 minutes"],
            "duration",
            &[],
        ),
        (
            "",
            &["deploy-frontend", "--invalidate", "sometimes"],
            "sometimes",
            &[],
        ),
        (
            "",
            &["sync", "frontend/dist", "s3://Bad_Bucket"],
            "Bad_Bucket",
            &[],
        ),
        (
            "",
            &["sync", "frontend/dist", "s3://ok-bucket/a/../b"],
            "`..`",
            &[],
        ),
        ("", &["sync", "frontend/dist", "ftp://x"], "s3://", &[]),
        (
            "",
            &["config-js"],
            "AWS_MAX_ATTEMPTS",
            &[("AWS_MAX_ATTEMPTS", "lots")],
        ),
        (
            "",
            &["config-js"],
            "AWS_MAX_ATTEMPTS",
            &[("AWS_MAX_ATTEMPTS", "0")],
        ),
        (
            "",
            &["pack"],
            "project name",
            &[("PROJECT_NAME", "Bad Name!")],
        ),
        ("", &["pack"], "environment", &[("ENVIRONMENT", "prod/eu")]),
        (
            "",
            &["deploy-infra"],
            "bucket",
            &[("DEPLOYMENT_BUCKET", "UPPER_case")],
        ),
        // Endpoints, regions and credentials the SDK would take badly.
        (
            "",
            &["config-js"],
            "AWS_ENDPOINT_URL \"\"",
            &[("AWS_ENDPOINT_URL", "")],
        ),
        (
            "",
            &["deploy-infra", "--dry-run"],
            "AWS_ENDPOINT_URL \"not a url\"",
            &[("AWS_ENDPOINT_URL", "not a url")],
        ),
        (
            "",
            &["sync", "frontend/dist", "s3://ok-bucket"],
            "closing ]",
            &[("AWS_ENDPOINT_URL", "http://[::1")],
        ),
        (
            "",
            &["config-js", "--endpoint-url", "ftp://127.0.0.1:21"],
            "--endpoint-url",
            &[],
        ),
        (
            "",
            &["config-js"],
            "port",
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:0")],
        ),
        ("", &["config-js", "--region", "us east!"], "--region", &[]),
        (
            "",
            &["deploy-frontend", "--dry-run"],
            "AWS_ACCESS_KEY_ID",
            &[("AWS_ACCESS_KEY_ID", "AKIA\nEXAMPLE")],
        ),
        (
            "",
            &["config-js"],
            "AWS_SECRET_ACCESS_KEY",
            &[("AWS_SECRET_ACCESS_KEY", "")],
        ),
        (
            "",
            &["config-js"],
            "AWS_SESSION_TOKEN",
            &[("AWS_SESSION_TOKEN", "tok en")],
        ),
    ];
    let toml_cases: &[(&str, &str)] = &[
        ("[sync]\nconcurrency = 0\n", "sync.concurrency"),
        ("[sync]\npart_size = 1\n", "sync.part_size"),
        (
            "[sync]\nmultipart_threshold = 10\n",
            "sync.multipart_threshold",
        ),
        ("[[sync.rules]]\nmatch = []\n", "sync.rules[0].match"),
        ("[[sync.rules]]\nmatch = [\"[\"]\n", "not a valid glob"),
        (
            "[[sync.rules]]\nmatch = [\"*\"]\ncache_control = \"a\\u0007b\"\n",
            "not a valid header value",
        ),
        (
            "[infra]\ncapabilities = [\"CAPABILITY_ROOT\"]\n",
            "infra.capabilities",
        ),
        ("[infra]\nstack_name = \"{nope}-x\"\n", "{nope}"),
        ("[infra]\nstack_name = \"{project\"\n", "unclosed"),
        (
            "[infra]\nmaster_template = \"a/b.yaml\"\n",
            "infra.master_template",
        ),
        (
            "[infra.parameters]\nA = \"{bogus}\"\n",
            "infra.parameters.A",
        ),
        ("[infra.tags]\nteam = \"{who}\"\n", "infra.tags.team"),
        (
            "[frontend]\ntimeout_minutes = 100000\n",
            "frontend.timeout_minutes",
        ),
        (
            "[functions.evil]\nfiles = [{ path = \"index.py\", as = \"../x.py\" }]\n",
            "functions.evil.files",
        ),
        (
            "[functions.abs]\nfiles = [\"/etc/passwd\"]\n",
            "not a relative path",
        ),
        ("[functions.empty]\nfiles = []\n", "functions.empty.files"),
        (
            "[functions.\"bad name\"]\nfiles = [\"index.py\"]\n",
            "function key",
        ),
        (
            "[functions.x]\nfiles = [\"index.py\"]\nexclude = [\"[\"]\n",
            "functions.x.exclude",
        ),
        (
            "[functions.x]\nfiles = [\"index.py\"]\nsurprise = 1\n",
            "surprise",
        ),
        ("[unknown_table]\nx = 1\n", "unknown_table"),
        ("[pack]\nruntime = \"python2.7\"\n", "pack.runtime"),
        ("[pack]\narchitecture = \"aarch64\"\n", "pack.architecture"),
        ("[pack]\ninstaller = \"conda\"\n", "pack.installer"),
        ("[layers.deps]\nruntime = \"python3.12\"\n", "layers.deps"),
        (
            "[layers.deps]\ndependencies = \"lambda/package\"\nparameter = \"Deps-Arn\"\n",
            "layers.deps.parameter",
        ),
        (
            "[functions.x]\nfiles = [\"index.py\"]\nlayers = [\"nope\"]\n",
            "functions.x.layers",
        ),
        (
            "[functions.x]\nfiles = [\"index.py\"]\nruntime = \"nodejs20.x\"\n",
            "functions.x.runtime",
        ),
    ];
    let mut n = 0;
    let all = cases
        .iter()
        .map(|(extra, args, expected, env)| (*extra, *args, *expected, *env))
        .chain(
            toml_cases
                .iter()
                .map(|(extra, expected)| (*extra, &["pack"][..], *expected, &[][..])),
        );
    for (extra, args, expected, env) in all {
        // Keys of a table the sample has go under its header; new tables at the end.
        let header = extra.lines().next().unwrap_or("");
        let text = if !header.is_empty() && original.contains(&format!("{header}\n")) {
            original.replace(&format!("{header}\n"), extra)
        } else {
            format!("{original}\n{extra}")
        };
        std::fs::write(s.path("artifact.toml"), text).unwrap();
        let out = crate::local_aws::artifact_aws_env(s.dir.path(), args, env);
        let err = assert_failure(&out);
        assert_ne!(
            out.status.code(),
            Some(101),
            "panic on {args:?} {extra:?}:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        // Project-file and environment errors carry a hint; clap's say the allowed values and point at --help.
        assert!(err.contains("hint:") || err.contains("--help"), "{err}");
        assert!(
            err.contains(expected),
            "{args:?} {extra:?} {env:?}: no {expected:?} in:\n{err}"
        );
        assert!(!s.path("build").exists(), "{args:?} {extra:?} wrote output");
        n += 1;
    }
    assert!(n >= 50, "{n} cases");
}

/// A folder outside the project holding a secret, and the sample with
/// `files` of `api-handler` set to `files` (TOML).
fn escaping(files: &str) -> (Sample, tempfile::TempDir) {
    let s = Sample::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "AWS_SECRET=planted\n").unwrap();
    s.edit("artifact.toml", |t| {
        t.replace(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            &format!("files = [\"index.py\", \"rbac_middleware.py\", {files}]"),
        )
    });
    (s, outside)
}

/// Pack refuses, naming `entry`, and writes nothing.
fn refused(s: &Sample, entry: &str) -> String {
    let err = fails(s);
    assert!(err.contains(entry), "{err}");
    assert!(err.contains("outside the project"), "{err}");
    err
}

#[test]
fn a_folder_entry_through_a_link_out_of_the_project_is_refused() {
    for spec in ["\"ext/\"", "\"ext/.\"", "\"ext\""] {
        let (s, outside) = escaping(spec);
        std::os::unix::fs::symlink(outside.path(), s.path("lambda/ext")).unwrap();
        refused(&s, "lambda/ext");
    }
}

#[test]
fn a_file_through_a_linked_folder_out_of_the_project_is_refused() {
    let (s, outside) = escaping("\"ext/secret.txt\"");
    std::os::unix::fs::symlink(outside.path(), s.path("lambda/ext")).unwrap();
    let err = refused(&s, "lambda/ext/secret.txt");
    assert!(
        err.contains(&outside.path().canonicalize().unwrap().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_dependency_folder_that_links_out_of_the_project_is_refused() {
    let s = Sample::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.py"), "x = 1\n").unwrap();
    std::fs::remove_dir_all(s.path("lambda/package")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.path("lambda/package")).unwrap();
    refused(&s, "lambda/package");
    // An absolute path named in the project file is refused too.
    let s = Sample::new();
    let abs = outside.path().display().to_string();
    s.edit("artifact.toml", |t| {
        t.replace(
            "dependencies = \"lambda/package\"",
            &format!("dependencies = {abs:?}"),
        )
    });
    let err = fails(&s);
    assert!(err.contains(&abs) || err.contains("outside"), "{err}");
}

#[test]
fn a_renamed_entry_climbing_out_of_the_project_is_refused() {
    let (s, outside) = escaping("");
    let rel = format!(
        "../../../../../../../../..{}/secret.txt",
        outside.path().display()
    );
    s.edit("artifact.toml", |t| {
        t.replace(
            "\"rbac_middleware.py\", ]",
            &format!("\"rbac_middleware.py\", {{ path = {rel:?}, as = \"s.txt\" }}]"),
        )
    });
    let err = fails(&s);
    assert!(err.contains("secret.txt"), "{err}");
    assert!(
        err.contains("outside") || err.contains("inside the project"),
        "{err}"
    );
}

#[test]
fn the_builders_environment_through_a_link_to_proc_is_refused() {
    let (s, _outside) = escaping("{ path = \"p/self/environ\", as = \"env.txt\" }");
    std::os::unix::fs::symlink("/proc", s.path("lambda/p")).unwrap();
    let err = refused(&s, "lambda/p/self/environ");
    assert!(err.contains("/proc/"), "{err}");
}
