//! Snapshots of `artifact deploy-infra`.

use super::*;
use crate::cfn::{Difference, InfraPlan, InfraReport, Outcome, StackStep, Uploads};
use crate::lambda::CodeAction;
use crate::sync::{ActionKind, Count, Reason, SyncPlan};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
        nested: nested_steps(),
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
            copied: 0,
            unchanged: 3,
        },
        zips: Uploads {
            uploaded: 1,
            copied: 0,
            unchanged: 1,
        },
        functions,
        outputs: Vec::new(),
        nested_outputs: Default::default(),
        outputs_file: None,
        failure: None,
        requests: requests(&[
            ("CloudFormation.DescribeStacks", 1),
            ("S3.ListObjectsV2", 2),
        ]),
        seconds: 0.4,
        plan: Some(plan),
    };
    super::snap(
        "deploy_infra_dry_run",
        &crate::commands::deploy_infra::render(&report).join("\n"),
    );
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
            copied: 0,
            unchanged: 4,
        },
        zips: Uploads {
            uploaded: 0,
            copied: 0,
            unchanged: 2,
        },
        functions: vec![code("api-handler", CodeAction::Unchanged)],
        outputs: Vec::new(),
        nested_outputs: Default::default(),
        outputs_file: Some(PathBuf::from("stack-outputs.json")),
        failure: None,
        requests: requests(&[("CloudFormation.DescribeStacks", 1)]),
        seconds: 1.2,
        plan: None,
    };
    super::snap(
        "deploy_infra_unchanged",
        &crate::commands::deploy_infra::render(&report).join("\n"),
    );
}

/// Two nested stacks, one whose template changed.
fn nested_steps() -> Vec<crate::cfn::plan::NestedStep> {
    [
        ("Functions", "functions/functions.yaml", true),
        ("Site", "site/site.yaml", false),
    ]
    .into_iter()
    .map(|(stack, rel, changed)| crate::cfn::plan::NestedStep {
        stack: stack.into(),
        parent: "cfn/master-template.yaml".into(),
        key: Some(format!("cfn/{rel}")),
        template_changed: changed,
    })
    .collect()
}
