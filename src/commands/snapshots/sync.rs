//! Snapshots of `artifact sync`.

use super::*;
use crate::sync::{Count, SyncReport};
use std::time::Duration;

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
        copied: Count::default(),
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
    super::snap(
        "sync_dry_run",
        &crate::commands::sync::render(&report, Duration::from_millis(250)).join("\n"),
    );
}
