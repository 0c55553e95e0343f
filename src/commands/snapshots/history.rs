//! Snapshots of `artifact history`.

use crate::lambda::{CodeAction, CodeResult};
use std::collections::BTreeMap;

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
    let mut lines = crate::commands::history::render_history(&entries);
    lines.extend(crate::commands::history::render_history(&[]));
    let report = RollbackReport {
        plan: RollbackPlan {
            target: "deploy-a".into(),
            stack: "shop-dev".into(),
            stack_status: "UPDATE_COMPLETE".into(),
            template_differs: true,
            nested_templates: Vec::new(),
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
    lines.extend(crate::commands::rollback_one::render_rollback(&report));
    super::snap("history_and_rollback", &lines.join("\n"));
}
