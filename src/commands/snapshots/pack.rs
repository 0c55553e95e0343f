//! Snapshots of `artifact pack`.

use crate::pack::plan::{InstallStep, RemovedZip, ZipStep};
use crate::pack::{
    FunctionManifest, Manifest, PackPlan, PackReport, RunStats, ZipAction, ZipReason,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn manifest_entry(name: &str) -> FunctionManifest {
    FunctionManifest {
        deployed_name: format!("shop-dev-{name}"),
        zip: format!("{name}.zip"),
        zip_size: 2_752,
        unzipped_size: 13_347,
        file_count: 7,
        sha256: "8437aac4".into(),
        code_sha256: "hDeqxGPh=".into(),
        input_hash: "4da3b483".into(),
        sbom: None,
        bytecode: None,
        slimmed: None,
    }
}

fn pack_report(dry_run: bool) -> PackReport {
    let plan = PackPlan {
        zips: vec![
            ZipStep {
                function: "api-handler".into(),
                layer: false,
                action: ZipAction::Write,
                reason: ZipReason::InputsChanged,
                file_count: 7,
                unzipped_size: 13_347,
            },
            ZipStep {
                function: "poller".into(),
                layer: false,
                action: ZipAction::Keep,
                reason: ZipReason::Unchanged,
                file_count: 2_381,
                unzipped_size: 30_600_000,
            },
            ZipStep {
                function: "deps".into(),
                layer: true,
                action: ZipAction::Keep,
                reason: ZipReason::Unchanged,
                file_count: 2_375,
                unzipped_size: 30_500_000,
            },
        ],
        removed: vec![RemovedZip {
            function: "old".into(),
            layer: false,
            zip: "old.zip".into(),
        }],
        contents_to_pack: 7,
        installs: vec![InstallStep {
            requirements: "lambda/requirements.txt".into(),
            target: "python3.12 arm64".into(),
            runs: true,
            used_by: vec!["layer:deps".into()],
        }],
    };
    PackReport {
        manifest: Manifest {
            version: 1,
            project: "shop".into(),
            environment: "dev".into(),
            functions: BTreeMap::from([
                ("api-handler".to_string(), manifest_entry("api-handler")),
                ("poller".to_string(), manifest_entry("poller")),
            ]),
            layers: BTreeMap::from([("deps".to_string(), manifest_entry("deps"))]),
        },
        run: RunStats {
            out: PathBuf::from("build/lambda"),
            dry_run,
            written: vec!["api-handler".into()],
            unchanged: vec!["poller".into(), "layer:deps".into()],
            removed: vec!["old".into()],
            files: 2_388,
            files_read: 1,
            compressed: if dry_run { 0 } else { 1 },
            from_cache: 0,
            installs: if dry_run {
                Vec::new()
            } else {
                vec![crate::pack::install::InstallReport {
                    requirements: "lambda/requirements.txt".into(),
                    installer: "uv".into(),
                    installer_version: "uv 0.13.9".into(),
                    target: "python3.12 arm64".into(),
                    tags: "cp312/abi3/none with manylinux_2_34_aarch64 down to manylinux_2_17_aarch64, or any".into(),
                    wheels: vec![crate::pack::install::Wheel {
                        name: "PyJWT".into(),
                        version: "2.10.1".into(),
                        tag: "py3-none-any".into(),
                    }],
                    cached: false,
                    seconds: 0.42,
                    used_by: vec!["layer:deps".into()],
                }]
            },
            ..RunStats::default()
        },
        plan: Some(plan),
    }
}

#[test]
fn pack_dry_run() {
    let r = pack_report(true);
    super::snap(
        "pack_dry_run",
        &crate::commands::pack::render(&r, Duration::from_millis(31)).join("\n"),
    );
}

#[test]
fn pack_done() {
    let r = pack_report(false);
    super::snap(
        "pack_done",
        &crate::commands::pack::render(&r, Duration::from_millis(64)).join("\n"),
    );
}
