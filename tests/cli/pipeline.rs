//! The pipeline: buildspecs that call only what exists, and templates that lint clean.

use std::process::Command;

use crate::common::repo;

const BUILDSPECS: [&str; 5] = [
    "validate.yml",
    "build.yml",
    "test.yml",
    "deploy-infra.yml",
    "deploy-frontend.yml",
];

/// Every `artifact …` line in a buildspec's phase commands: (subcommand, flags).
fn artifact_calls(doc: &serde_norway::Value) -> Vec<(String, Vec<String>)> {
    let mut calls = Vec::new();
    let Some(phases) = doc.get("phases").and_then(|p| p.as_mapping()) else {
        return calls;
    };
    for phase in phases.values() {
        let Some(cmds) = phase.get("commands").and_then(|c| c.as_sequence()) else {
            continue;
        };
        for cmd in cmds.iter().filter_map(|c| c.as_str()) {
            for line in cmd.lines() {
                let mut words = line.split_whitespace();
                if words.next() != Some("artifact") {
                    continue;
                }
                let Some(sub) = words.next() else { continue };
                let flags = words
                    .filter(|w| w.starts_with("--"))
                    .map(|w| w.split('=').next().unwrap().to_string())
                    .collect();
                calls.push((sub.to_string(), flags));
            }
        }
    }
    calls
}

#[test]
fn buildspecs_parse_and_call_only_subcommands_and_flags_that_exist() {
    let mut seen = Vec::new();
    for name in BUILDSPECS {
        let path = repo().join("buildspecs").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_norway::Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            doc.get("version").and_then(|v| v.as_f64()),
            Some(0.2),
            "{name}"
        );
        for (sub, flags) in artifact_calls(&doc) {
            let help = Command::new(env!("CARGO_BIN_EXE_artifact"))
                .args([&sub, "--help"])
                .output()
                .unwrap();
            assert!(
                help.status.success(),
                "{name}: `artifact {sub}` is not a subcommand"
            );
            let help = String::from_utf8_lossy(&help.stdout);
            for f in &flags {
                assert!(
                    help.contains(f.as_str()),
                    "{name}: `artifact {sub}` has no {f}"
                );
            }
            seen.push(sub);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        ["deploy-frontend", "deploy-infra", "pack", "validate"]
    );
}

#[test]
fn the_cache_folder_is_kept_between_builds() {
    let text = std::fs::read_to_string(repo().join("buildspecs/build.yml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let paths: Vec<&str> = doc["cache"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(paths.contains(&".artifact-cache/**/*"), "{paths:?}");
    let files: Vec<&str> = doc["artifacts"]["files"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(files.contains(&"build/**/*"), "{files:?}");
}

#[test]
fn cfn_lint_finds_nothing_in_the_pipeline_or_the_samples() {
    crate::local_aws::server(); // installs the venv, cfn-lint included
    let out = Command::new(repo().join(".venv/bin/cfn-lint"))
        .arg(repo().join("buildspecs/pipeline.yaml"))
        .arg(repo().join("testdata/sample/cfn/master-template.yaml"))
        .arg(repo().join("testdata/sample-layer/cfn/master-template.yaml"))
        .output()
        .expect("cfn-lint from the project's venv");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
