//! `artifact rollback --infra`: back to a recorded deployment of the stack and its
//! code, without rebuilding. Observe (the history, the record, its kept
//! bytes, the stack, the functions), plan (a change set when the deployed
//! template or parameters differ from the record's; code updates where
//! CodeSha256 differs), apply (change set, then code from the kept zips, then
//! a record of the rollback).

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_cloudformation::types::ChangeSetType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::options::{RollbackError, RollbackOptions};
use crate::aws::Clients;
use crate::cfn::plan::{differences, Difference};
use crate::cfn::{changeset, local, observe};
use crate::config::Settings;
use crate::history::{keys_of, store, template_key, zip_key, Record};
use crate::lambda::{self, CodeAction, CodeResult, CodeTarget, Pacing};
use crate::output::Reporter;
use crate::util::hex;

/// A rollback, decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPlan {
    /// The record rolled back to.
    pub target: String,
    pub stack: String,
    pub stack_status: String,
    /// The deployed template is not the record's (the master, or a nested
    /// template whose key holds other bytes now).
    pub template_differs: bool,
    /// Nested templates restored to their keys before the change set (their
    /// paths under the templates folder).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested_templates: Vec<String>,
    pub parameters: Vec<Difference>,
    /// The change set this rollback creates, when the stack must change.
    pub change_set: Option<String>,
    /// Each function: `would update` where its code is not the record's.
    pub functions: Vec<CodeResult>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackReport {
    pub plan: RollbackPlan,
    /// "rolled back", "nothing to do" or "dry run".
    pub outcome: String,
    pub functions: Vec<CodeResult>,
    /// The record of this rollback.
    pub history: Option<String>,
    pub requests: BTreeMap<String, u64>,
    pub seconds: f64,
}

/// Everything the plan is made from.
pub struct Observed {
    pub record: Record,
    pub stack_status: String,
    pub deployed_parameters: BTreeMap<String, String>,
    /// SHA-256 (hex) of the deployed template's body.
    pub deployed_template_sha256: Option<String>,
    /// The record's nested templates whose keys hold other bytes now.
    pub nested_changed: Vec<String>,
    pub targets: Vec<CodeTarget>,
    pub deployed_code: Vec<Option<String>>,
}

/// Reads the history, the record, whether its bytes are still kept, the
/// stack and the functions.
pub async fn observe(
    clients: &Clients,
    settings: &Settings,
    opts: &RollbackOptions,
) -> Result<Observed, RollbackError> {
    let bucket = &settings.infra.deployment_bucket;
    let index = store::load_index(clients, bucket).await?;
    let id = crate::history::target(&index, opts.to.as_deref(), opts.steps)
        .map_err(|message| RollbackError::NoTarget { message })?;
    let record: Record = store::load_record(clients, bucket, &crate::history::INFRA, &id)
        .await?
        .ok_or_else(|| RollbackError::Gone {
            id: id.clone(),
            missing: vec![crate::history::record_key(&id)],
        })?;
    let kept = store::kept_keys(clients, bucket, &crate::history::INFRA).await?;
    let missing: Vec<String> = keys_of(&record)
        .into_iter()
        .filter(|k| !kept.contains(k))
        .collect();
    if !missing.is_empty() {
        return Err(RollbackError::Gone { id, missing });
    }
    let stack = &settings.infra.stack_name;
    let view = observe::describe(&clients.cfn, stack)
        .await?
        .ok_or_else(|| RollbackError::NoStack {
            stack: stack.clone(),
        })?;
    if view.status.ends_with("_IN_PROGRESS") {
        return Err(RollbackError::Busy {
            stack: stack.clone(),
            status: view.status,
        });
    }
    let body = observe::deployed_template(&clients.cfn, stack).await?;
    let nested_changed = nested_changed(clients, bucket, &record).await?;
    let targets = code_targets(settings, &record);
    let deployed_code = lambda::observe_code(&clients.lambda, &targets).await?;
    Ok(Observed {
        deployed_template_sha256: body.map(|b| hex(&Sha256::digest(b.as_bytes()))),
        nested_changed,
        stack_status: view.status,
        deployed_parameters: view.parameters,
        targets,
        deployed_code,
        record,
    })
}

/// The record's nested templates whose keys (`cfn/<path>`, where the
/// TemplateURLs point) hold other bytes than the record's, or none.
async fn nested_changed(
    clients: &Clients,
    bucket: &str,
    record: &Record,
) -> Result<Vec<String>, RollbackError> {
    let mut out = Vec::new();
    for (rel, sha) in &record.templates {
        let key = format!("{}{rel}", crate::cfn::TEMPLATES_PREFIX);
        let now = crate::aws::s3::read_object(clients, bucket, &key)
            .await
            .map_err(crate::sync::SyncError::from)?;
        if now.map(|b| hex(&Sha256::digest(&b))).as_deref() != Some(sha.as_str()) {
            out.push(rel.clone());
        }
    }
    Ok(out)
}

/// Each recorded function, to be brought back to its recorded zip.
fn code_targets(settings: &Settings, record: &Record) -> Vec<CodeTarget> {
    record
        .functions
        .iter()
        .map(|(name, z)| CodeTarget {
            function: name.clone(),
            // The name the project gives it now; a function since removed
            // from the project file keeps the default name.
            deployed_name: settings
                .functions
                .iter()
                .find(|f| &f.name == name)
                .map(|f| f.deployed_name.clone())
                .unwrap_or_else(|| {
                    crate::names::deployed_function_name(
                        &settings.project.name,
                        &settings.project.environment,
                        name,
                    )
                }),
            bucket: settings.infra.deployment_bucket.clone(),
            key: zip_key(&z.sha256),
            code_sha256: z.code_sha256.clone(),
        })
        .collect()
}

/// Decides the rollback.
pub fn plan(o: &Observed, stack: &str, change_set_name: &str) -> RollbackPlan {
    let template_differs = o.deployed_template_sha256.as_deref()
        != Some(o.record.template_sha256.as_str())
        || !o.nested_changed.is_empty();
    // Only what the record passed: the stack also lists the defaults of
    // parameters nothing passed.
    let parameters: Vec<Difference> = differences(&o.deployed_parameters, &o.record.parameters)
        .into_iter()
        .filter(|d| d.wanted.is_some())
        .collect();
    let functions = o
        .targets
        .iter()
        .zip(&o.deployed_code)
        .map(|(t, d)| lambda::plan_code(t, d.as_deref()))
        .collect();
    RollbackPlan {
        target: o.record.id.clone(),
        stack: stack.to_string(),
        stack_status: o.stack_status.clone(),
        change_set: (template_differs || !parameters.is_empty())
            .then(|| change_set_name.to_string()),
        template_differs,
        nested_templates: o.nested_changed.clone(),
        parameters,
        functions,
    }
}

/// Observes, plans and unless `dry_run` applies a rollback.
pub async fn run(
    clients: &Clients,
    settings: &Settings,
    opts: &RollbackOptions,
    reporter: &dyn Reporter,
) -> Result<RollbackReport, RollbackError> {
    let started = Instant::now();
    let deadline = crate::poll::deadline(started, opts.timeout);
    let before = clients.requests.snapshot();
    let o = observe(clients, settings, opts).await?;
    let name = crate::names::change_set_name(opts.commit.as_deref(), opts.now_unix, opts.nonce);
    let plan = plan(&o, &settings.infra.stack_name, &name);
    let mut report = RollbackReport {
        outcome: "dry run".into(),
        functions: plan.functions.clone(),
        history: None,
        requests: BTreeMap::new(),
        seconds: 0.0,
        plan,
    };
    if !opts.dry_run {
        apply(clients, settings, opts, &o, &mut report, deadline, reporter).await?;
    }
    report.requests = clients.requests.since(&before);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The change set (when needed), the code, then the record of the rollback.
async fn apply(
    clients: &Clients,
    settings: &Settings,
    opts: &RollbackOptions,
    o: &Observed,
    report: &mut RollbackReport,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<(), RollbackError> {
    let stack = &settings.infra.stack_name;
    let bucket = &settings.infra.deployment_bucket;
    let mut changed = false;
    if let Some(name) = &report.plan.change_set {
        // The nested templates first: the master's TemplateURLs read their keys.
        for rel in &report.plan.nested_templates {
            let Some(sha) = o.record.templates.get(rel) else {
                continue;
            };
            let to = format!("{}{rel}", crate::cfn::TEMPLATES_PREFIX);
            store::restore(clients, bucket, &template_key(sha), &to).await?;
            reporter.progress(format!("  restored {to} to the bytes of {}", o.record.id));
        }
        let url = local::template_url(clients, bucket, &template_key(&o.record.template_sha256));
        let params: Vec<(String, String)> = o.record.parameters.clone().into_iter().collect();
        let req = changeset::ChangeSetRequest {
            name,
            kind: ChangeSetType::Update,
            template_url: &url,
            parameters: &params,
            nested: !o.record.templates.is_empty(),
        };
        let created = changeset::create_change_set(clients, settings, req, deadline).await?;
        if created.is_some() {
            reporter.progress(format!("  change set {name}: back to {}", o.record.id));
            let (view, _) =
                changeset::execute_and_follow(&clients.cfn, stack, name, deadline, reporter)
                    .await?;
            let status = view.map(|v| v.status).unwrap_or_default();
            if !status.ends_with("_COMPLETE") || status.contains("ROLLBACK") {
                return Err(RollbackError::Failed {
                    stack: stack.clone(),
                    status,
                });
            }
            changed = true;
        }
    }
    let wanted: Vec<CodeTarget> = o
        .targets
        .iter()
        .zip(&report.plan.functions)
        .filter(|(_, f)| f.action != CodeAction::Unchanged)
        .map(|(t, _)| t.clone())
        .collect();
    let pacing = Pacing::new(deadline.saturating_duration_since(Instant::now()));
    let done = lambda::update_code(&clients.lambda, &wanted, pacing).await?;
    changed |= done.iter().any(|f| f.action == CodeAction::Updated);
    for f in &mut report.functions {
        if let Some(d) = done.iter().find(|d| d.function == f.function) {
            *f = d.clone();
        }
    }
    report.outcome = if changed {
        "rolled back"
    } else {
        "nothing to do"
    }
    .into();
    if changed {
        report.history = Some(record_rollback(clients, settings, opts, o).await?);
    }
    Ok(())
}

/// The rollback's own record: the target's template, parameters and zips.
async fn record_rollback(
    clients: &Clients,
    settings: &Settings,
    opts: &RollbackOptions,
    o: &Observed,
) -> Result<String, RollbackError> {
    let record = Record {
        // The commit it restores, in its id as in its commit column.
        id: crate::names::deployment_id(o.record.commit.as_deref(), opts.now_unix, opts.nonce),
        commit: o.record.commit.clone(),
        started_unix: opts.now_unix,
        ended_unix: crate::util::unix_now(),
        outcome: "rolled back".into(),
        rollback_of: Some(o.record.id.clone()),
        summary: format!("rollback to {}", o.record.id),
        replaced: None,
        ..o.record.clone()
    };
    let bucket = &settings.infra.deployment_bucket;
    let saved = store::save(
        clients,
        bucket,
        record,
        &BTreeMap::new(),
        settings.history_keep,
    )
    .await?;
    Ok(saved.id)
}
