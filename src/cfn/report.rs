//! What deploy-infra is asked ([`DeployOptions`]) and what it did ([`InfraReport`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::layers;
use super::observe::StackOutput;
use super::plan::InfraPlan;
use crate::lambda::CodeResult;
use crate::sync::{SyncPlan, SyncReport};

/// Options from the command line (and the edge: the commit).
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub dry_run: bool,
    pub no_execute: bool,
    pub timeout: Duration,
    pub replace_failed_stack: bool,
    /// The commit being deployed, for the change set name.
    pub commit: Option<String>,
    /// Makes concurrent deploys of one commit name distinct change sets.
    pub nonce: u32,
    pub now_unix: u64,
    /// What this run already put in other targets' buckets: copied from
    /// there server-side (a deploy across targets; None otherwise).
    pub copies: Option<std::sync::Arc<crate::sync::copies::Copies>>,
}

/// How a deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The stack changed.
    Changed,
    /// Nothing to do: no change set executed.
    Unchanged,
    /// `--no-execute`: the change set waits for review.
    Review,
    /// `--dry-run`: nothing was changed.
    DryRun,
    Failed,
}

/// One row of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: String,
}

/// Uploads of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploads {
    pub uploaded: u64,
    /// Of the uploads, those copied server-side from another target's bucket.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copied: u64,
    pub unchanged: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&SyncReport> for Uploads {
    fn from(r: &SyncReport) -> Self {
        Uploads {
            uploaded: r.uploaded.files + r.headers_updated.files,
            copied: r.copied.files,
            unchanged: r.unchanged.files,
        }
    }
}

impl From<&SyncPlan> for Uploads {
    fn from(p: &SyncPlan) -> Self {
        Uploads {
            uploaded: (p.assets.len() + p.entry_points.len()) as u64,
            copied: 0,
            unchanged: p.unchanged.files,
        }
    }
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfraReport {
    pub stack: String,
    pub outcome: Outcome,
    pub change_set: Option<String>,
    pub change_set_type: Option<String>,
    pub stack_status: Option<String>,
    pub template_url: String,
    pub changes: Vec<ChangeRow>,
    pub templates: Uploads,
    pub zips: Uploads,
    pub functions: Vec<CodeResult>,
    pub outputs: Vec<StackOutput>,
    /// Each nested stack's outputs, by its logical id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nested_outputs: BTreeMap<String, Vec<StackOutput>>,
    pub outputs_file: Option<PathBuf>,
    /// The first failed resource event, when the stack failed.
    pub failure: Option<String>,
    pub requests: BTreeMap<String, u64>,
    pub seconds: f64,
    /// Layer versions reused or published, with their ARNs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<layers::LayerStep>,
    /// The history record written for this deploy (when it changed something).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The plan this deploy carried out (with `--dry-run`: would carry out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<InfraPlan>,
}

/// `stack-outputs.json`: the root stack's outputs as `describe-stacks` prints
/// them, then each nested stack's, keyed `<LogicalId>.<OutputKey>` and with
/// `Stack` naming the nested stack (so a `select(.OutputKey == "X")` of the
/// root's outputs reads as before).
pub(super) fn outputs_file(
    root: &[StackOutput],
    nested: &BTreeMap<String, Vec<StackOutput>>,
) -> serde_json::Value {
    let mut rows: Vec<serde_json::Value> = root
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    for (stack, outputs) in nested {
        for o in outputs {
            let Ok(serde_json::Value::Object(mut row)) = serde_json::to_value(o) else {
                continue;
            };
            row.insert("OutputKey".into(), format!("{stack}.{}", o.key).into());
            row.insert("Stack".into(), stack.clone().into());
            rows.push(serde_json::Value::Object(row));
        }
    }
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str, value: &str) -> StackOutput {
        StackOutput {
            key: key.into(),
            value: value.into(),
            description: None,
            export_name: None,
        }
    }

    #[test]
    fn the_outputs_file_keeps_the_roots_rows_and_adds_each_nested_stacks_under_its_id() {
        let nested = BTreeMap::from([("Site".to_string(), vec![out("BucketName", "b")])]);
        let v = outputs_file(&[out("Url", "https://x")], &nested);
        assert_eq!(
            v,
            serde_json::json!([
                {"OutputKey": "Url", "OutputValue": "https://x"},
                {"OutputKey": "Site.BucketName", "OutputValue": "b", "Stack": "Site"},
            ])
        );
    }
}
