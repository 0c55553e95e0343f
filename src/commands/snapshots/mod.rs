//! What people read, snapshot-tested: each command's plan table and summary,
//! rendered from literal reports (no server, no clock), one file per command.
//! The snapshots are the `.snap` files beside these.

mod deploy_frontend;
mod deploy_infra;
mod history;
mod pack;
mod sync;
mod validate;

use std::collections::BTreeMap;

use crate::lambda::{CodeAction, CodeResult};
use crate::sync::{Action, ActionKind, Count, Reason, SyncPlan};

/// Compares `value` with the snapshot `name` in this folder.
fn snap(name: &str, value: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(".");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(format!("artifact__commands__snapshots__{name}"), value);
    });
}

pub(super) fn action(kind: ActionKind, key: &str, reason: Reason, bytes: u64) -> Action {
    Action {
        kind,
        key: key.into(),
        reason,
        bytes,
        cache_control: None,
    }
}

pub(super) fn requests(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub(super) fn site_plan() -> SyncPlan {
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

pub(super) fn code(name: &str, action: CodeAction) -> CodeResult {
    CodeResult {
        function: name.into(),
        deployed_name: format!("shop-dev-{name}"),
        action,
        code_sha256: "hDeqxGPh=".into(),
    }
}
