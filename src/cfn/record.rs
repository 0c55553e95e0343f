//! After a deploy that changed something: its history record (see
//! [`crate::history`]), naming the master template and every zip by hash.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::plan::InfraPlan;
use super::{InfraReport, TEMPLATES_PREFIX, ZIPS_PREFIX};
use crate::aws::Clients;
use crate::config::Settings;
use crate::history::{self, Record, ZipRef};
use crate::lambda::CodeAction;
use crate::pack::Manifest;
use crate::util::hex;

/// What the record of one deploy is made from.
pub(super) struct Deployed<'a> {
    pub settings: &'a Settings,
    pub manifest: &'a Manifest,
    pub master_body: &'a str,
    /// The nested templates the stack reads: path under the templates folder, bytes.
    pub nested: &'a BTreeMap<String, String>,
    pub commit: Option<&'a str>,
    pub id: String,
    pub started_unix: u64,
}

/// The record of a deploy: `stack_changed` and the functions updated say
/// what it did.
pub(super) fn record_of(
    d: &Deployed<'_>,
    plan: &InfraPlan,
    report: &InfraReport,
    stack_changed: bool,
    now_unix: u64,
) -> Record {
    let functions: BTreeMap<String, ZipRef> = d
        .manifest
        .functions
        .iter()
        .map(|(name, m)| {
            let zip = ZipRef {
                sha256: m.sha256.clone(),
                code_sha256: m.code_sha256.clone(),
            };
            (name.clone(), zip)
        })
        .collect();
    let updated = report
        .functions
        .iter()
        .filter(|f| f.action == CodeAction::Updated)
        .count();
    let mut summary = Vec::new();
    if stack_changed {
        summary.push("stack".to_string());
    }
    if updated > 0 {
        summary.push(format!("code of {updated} function(s)"));
    }
    Record {
        id: d.id.clone(),
        commit: d.commit.map(str::to_string),
        started_unix: d.started_unix,
        ended_unix: now_unix,
        outcome: "changed".into(),
        stack: plan.stack.clone(),
        master_template: d.settings.infra.master_template.clone(),
        template_sha256: hex(&Sha256::digest(d.master_body.as_bytes())),
        templates: d
            .nested
            .iter()
            .map(|(rel, body)| (rel.clone(), hex(&Sha256::digest(body.as_bytes()))))
            .collect(),
        parameters: plan.passed_parameters.clone(),
        functions,
        replaced: None,
        rollback_of: None,
        summary: summary.join("; "),
    }
}

/// Where each kept key of `r` is copied from: the keys this deploy used
/// (`zip_keys`: each function's zip key, by function).
pub(super) fn sources(r: &Record, zip_keys: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut s = BTreeMap::from([(
        history::template_key(&r.template_sha256),
        format!("{TEMPLATES_PREFIX}{}", r.master_template),
    )]);
    for (rel, sha) in &r.templates {
        s.insert(
            history::template_key(sha),
            format!("{TEMPLATES_PREFIX}{rel}"),
        );
    }
    for (name, z) in &r.functions {
        let from = zip_keys
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("{ZIPS_PREFIX}{name}.zip"));
        s.insert(history::zip_key(&z.sha256), from);
    }
    s
}

/// Saves the record; its id.
pub(super) async fn save(
    clients: &Clients,
    settings: &Settings,
    record: Record,
) -> Result<String, crate::sync::SyncError> {
    let bucket = &settings.infra.deployment_bucket;
    let zip_keys = settings
        .functions
        .iter()
        .map(|f| (f.name.clone(), f.zip_key.clone()))
        .collect();
    let sources = sources(&record, &zip_keys);
    let saved =
        history::store::save(clients, bucket, record, &sources, settings.history_keep).await?;
    Ok(saved.id)
}
