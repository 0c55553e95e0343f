//! What people read, snapshot-tested: each command's plan table and summary,
//! rendered from literal reports (no server, no clock).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cfn::{Difference, InfraPlan, InfraReport, Outcome, StackStep, Uploads};
use crate::frontend::{FrontendPlan, FrontendReport, Invalidation};
use crate::lambda::{CodeAction, CodeResult};
use crate::pack::plan::{InstallStep, RemovedZip, ZipStep};
use crate::pack::{
    FunctionManifest, Manifest, PackPlan, PackReport, RunStats, ZipAction, ZipReason,
};
use crate::sync::{Action, ActionKind, Count, Reason, SyncPlan, SyncReport};
use crate::validate::{FunctionCheck, TemplateCheck, ValidateReport};

fn action(kind: ActionKind, key: &str, reason: Reason, bytes: u64) -> Action {
    Action {
        kind,
        key: key.into(),
        reason,
        bytes,
        cache_control: None,
    }
}

fn requests(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn site_plan() -> SyncPlan {
    SyncPlan {
        destination: "s3://site/".into(),
        assets: vec![
            action(
                ActionKind::Upload,
                "assets/app.3f2a.js",
                Reason::New,
                48_213,
            ),
            action(
                ActionKind::UpdateHeaders,
                "logo.svg",
                Reason::Headers,
                2_100,
            ),
        ],
        entry_points: vec![action(
            ActionKind::Upload,
            "index.html",
            Reason::Changed,
            612,
        )],
        deletes: vec![action(
            ActionKind::Delete,
            "assets/app.1a0b.js",
            Reason::NotLocal,
            47_990,
        )],
        unchanged: Count {
            files: 12,
            bytes: 80_000,
        },
        ..SyncPlan::default()
    }
}

#[test]
fn sync_dry_run() {
    let plan = site_plan();
    let report = SyncReport {
        destination: plan.destination.clone(),
        dry_run: true,
        uploaded: Count {
            files: 2,
            bytes: 48_825,
        },
        headers_updated: Count {
            files: 1,
            bytes: 2_100,
        },
        unchanged: plan.unchanged,
        deleted: Count {
            files: 1,
            bytes: 47_990,
        },
        inspected: 0,
        extra_remote: 0,
        actions: plan.actions().cloned().collect(),
        requests: requests(&[("S3.ListObjectsV2", 1), ("S3.GetObject", 1)]),
    };
    insta::assert_snapshot!(super::sync::render(&report, Duration::from_millis(250)).join("\n"));
}

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
    insta::assert_snapshot!(super::pack::render(&r, Duration::from_millis(31)).join("\n"));
}

#[test]
fn pack_done() {
    let r = pack_report(false);
    insta::assert_snapshot!(super::pack::render(&r, Duration::from_millis(64)).join("\n"));
}

fn code(name: &str, action: CodeAction) -> CodeResult {
    CodeResult {
        function: name.into(),
        deployed_name: format!("shop-dev-{name}"),
        action,
        code_sha256: "hDeqxGPh=".into(),
    }
}

#[test]
fn deploy_infra_dry_run() {
    let functions = vec![
        code("api-handler", CodeAction::WouldUpdate),
        code("poller", CodeAction::Unchanged),
    ];
    let plan = InfraPlan {
        stack: "shop-dev".into(),
        stack_status: Some("UPDATE_COMPLETE".into()),
        step: StackStep::Update,
        change_set: Some("artifact-0123456789ab-20261126T093000Z-0000002a".into()),
        change_set_type: Some("UPDATE".into()),
        template_url:
            "https://s3.eu-west-1.amazonaws.com/shop-deployment-dev/cfn/master-template.yaml".into(),
        templates: SyncPlan {
            assets: vec![action(
                ActionKind::Upload,
                "cfn/master-template.yaml",
                Reason::Changed,
                18_402,
            )],
            unchanged: Count {
                files: 3,
                bytes: 20_000,
            },
            ..SyncPlan::default()
        },
        zips: Some(SyncPlan {
            assets: vec![action(
                ActionKind::Upload,
                "lambda/api-handler.zip",
                Reason::Changed,
                2_752,
            )],
            unchanged: Count {
                files: 1,
                bytes: 9_000_000,
            },
            ..SyncPlan::default()
        }),
        templates_changed: vec!["cfn/master-template.yaml".into()],
        parameters: vec![Difference {
            key: "LogLevel".into(),
            deployed: Some("INFO".into()),
            wanted: Some("DEBUG".into()),
        }],
        tags: vec![Difference {
            key: "cost-center".into(),
            deployed: None,
            wanted: Some("42".into()),
        }],
        functions: functions.clone(),
        passed_parameters: BTreeMap::new(),
        layers: Vec::new(),
    };
    let report = InfraReport {
        layers: Vec::new(),
        history: None,
        warnings: Vec::new(),
        stack: plan.stack.clone(),
        outcome: Outcome::DryRun,
        change_set: None,
        change_set_type: plan.change_set_type.clone(),
        stack_status: plan.stack_status.clone(),
        template_url: plan.template_url.clone(),
        changes: Vec::new(),
        templates: Uploads {
            uploaded: 1,
            unchanged: 3,
        },
        zips: Uploads {
            uploaded: 1,
            unchanged: 1,
        },
        functions,
        outputs: Vec::new(),
        outputs_file: None,
        failure: None,
        requests: requests(&[
            ("CloudFormation.DescribeStacks", 1),
            ("S3.ListObjectsV2", 2),
        ]),
        seconds: 0.4,
        plan: Some(plan),
    };
    insta::assert_snapshot!(super::deploy_infra::render(&report).join("\n"));
}

#[test]
fn deploy_infra_unchanged() {
    let report = InfraReport {
        layers: Vec::new(),
        history: None,
        warnings: Vec::new(),
        stack: "shop-dev".into(),
        outcome: Outcome::Unchanged,
        change_set: None,
        change_set_type: None,
        stack_status: Some("UPDATE_COMPLETE".into()),
        template_url: String::new(),
        changes: Vec::new(),
        templates: Uploads {
            uploaded: 0,
            unchanged: 4,
        },
        zips: Uploads {
            uploaded: 0,
            unchanged: 2,
        },
        functions: vec![code("api-handler", CodeAction::Unchanged)],
        outputs: Vec::new(),
        outputs_file: Some(PathBuf::from("stack-outputs.json")),
        failure: None,
        requests: requests(&[("CloudFormation.DescribeStacks", 1)]),
        seconds: 1.2,
        plan: None,
    };
    insta::assert_snapshot!(super::deploy_infra::render(&report).join("\n"));
}

#[test]
fn deploy_frontend_dry_run() {
    let plan = FrontendPlan {
        deployment_id: "deploy-0123456789ab-20261126T093000Z-0000002a".into(),
        bucket: "shop-frontend-dev".into(),
        distribution_id: "E2ABC".into(),
        sync: site_plan(),
        kept_from_previous: 3,
        invalidation_paths: vec!["/".into(), "/index.html".into(), "/logo.svg".into()],
        records_history: true,
        pending_from_earlier: Vec::new(),
        history: None,
        history_after_invalidation: None,
    };
    let report = FrontendReport {
        history: None,
        deployment_id: plan.deployment_id.clone(),
        stack: "shop-dev".into(),
        bucket: plan.bucket.clone(),
        distribution_id: plan.distribution_id.clone(),
        url: "https://d111.cloudfront.net".into(),
        dry_run: true,
        uploaded: Count {
            files: 2,
            bytes: 48_825,
        },
        headers_updated: Count {
            files: 1,
            bytes: 2_100,
        },
        unchanged: Count {
            files: 12,
            bytes: 80_000,
        },
        deleted: Count {
            files: 1,
            bytes: 47_990,
        },
        kept_from_previous: 3,
        invalidation: Some(Invalidation {
            id: None,
            paths: plan.invalidation_paths.clone(),
            status: None,
        }),
        summary_file: None,
        requests: requests(&[
            ("CloudFormation.DescribeStacks", 1),
            ("S3.ListObjectsV2", 1),
        ]),
        seconds: 0.3,
        plan: Some(plan),
    };
    insta::assert_snapshot!(super::deploy_frontend::render(&report).join("\n"));
}

#[test]
fn validate_with_a_problem_and_without() {
    let mut report = ValidateReport {
        templates: vec![TemplateCheck {
            file: "cfn/master-template.yaml".into(),
            bytes: 18_402,
            fits_inline: true,
            validate_template: "ok".into(),
        }],
        functions: vec![
            FunctionCheck {
                function: "api-handler".into(),
                deployed_name: "shop-dev-api-handler".into(),
                found: Some("cfn/lambda.yaml: ApiHandlerFunction".into()),
                checked: true,
            },
            FunctionCheck {
                function: "reporter".into(),
                deployed_name: "shop-dev-reporter".into(),
                found: None,
                checked: true,
            },
        ],
        problems: vec![
            "function `reporter`: no AWS::Lambda::Function is named shop-dev-reporter".into(),
        ],
        ok: false,
    };
    let failing = super::validate::render(&report).join("\n");
    report.functions[1].checked = false;
    let unchecked = super::validate::render(&report).join("\n");
    report.functions.pop();
    report.problems.clear();
    report.ok = true;
    let passing = super::validate::render(&report).join("\n");
    insta::assert_snapshot!(format!("{failing}\n---\n{unchecked}\n---\n{passing}"));
}

#[test]
fn history_and_rollback() {
    use crate::history::Entry;
    use crate::rollback::{RollbackPlan, RollbackReport};
    let entry = |id: &str, outcome: &str, summary: &str, rollback_of: Option<&str>| Entry {
        id: id.into(),
        commit: Some("0123456789abcdef0123".into()),
        started_unix: 1_795_000_000,
        ended_unix: 1_795_000_042,
        outcome: outcome.into(),
        summary: summary.into(),
        rollback_of: rollback_of.map(str::to_string),
        keys: Default::default(),
    };
    let entries = [
        entry(
            "deploy-b",
            "rolled back",
            "rollback to deploy-a",
            Some("deploy-a"),
        ),
        entry("deploy-a", "changed", "stack; code of 2 function(s)", None),
    ];
    let mut lines = super::history::render_history(&entries);
    lines.extend(super::history::render_history(&[]));
    let report = RollbackReport {
        plan: RollbackPlan {
            target: "deploy-a".into(),
            stack: "shop-dev".into(),
            stack_status: "UPDATE_COMPLETE".into(),
            template_differs: true,
            parameters: vec![crate::cfn::Difference {
                key: "Stage".into(),
                deployed: Some("b".into()),
                wanted: Some("a".into()),
            }],
            change_set: Some("artifact-20261126T150930Z-cded3293".into()),
            functions: Vec::new(),
        },
        outcome: "rolled back".into(),
        functions: vec![CodeResult {
            function: "poller".into(),
            deployed_name: "shop-dev-poller".into(),
            action: CodeAction::Updated,
            code_sha256: "x".into(),
        }],
        history: Some("deploy-c".into()),
        requests: BTreeMap::from([("Lambda.UpdateFunctionCode".to_string(), 1)]),
        seconds: 2.5,
    };
    lines.extend(super::history::render_rollback(&report));
    insta::assert_snapshot!(lines.join("\n"));
}
