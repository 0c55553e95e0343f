//! Snapshots of `artifact deploy-frontend`.

use super::*;
use crate::frontend::{FrontendPlan, FrontendReport, Invalidation};
use crate::sync::Count;

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
            distribution_status: None,
        }),
        summary_file: None,
        requests: requests(&[
            ("CloudFormation.DescribeStacks", 1),
            ("S3.ListObjectsV2", 1),
        ]),
        seconds: 0.3,
        plan: Some(plan),
    };
    super::snap(
        "deploy_frontend_dry_run",
        &crate::commands::deploy_frontend::render(&report).join("\n"),
    );
}
