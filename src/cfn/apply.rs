//! deploy-infra from end to end: observe (local checks, the bucket, the
//! stack, the uploads' remote side, the functions' code), plan
//! ([`super::plan::plan`]), then apply exactly that plan: uploads, the stack
//! step, the Lambda code updates, `stack-outputs.json`. `--dry-run` stops
//! after the plan and sends no mutating request.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use aws_sdk_cloudformation::types::ChangeSetType;

use super::layers::{self, LayerTarget};
use super::local::{self, Templates};
use super::plan::{self, InfraObserved, InfraPlan, InfraPlanOptions, StackStep};
use super::stack::{self, StackAction};
use super::{
    aws_err, changeset, observe, record, DeployOptions, InfraError, InfraReport, Outcome, Uploads,
    TEMPLATES_PREFIX,
};
use crate::aws::Clients;
use crate::config::Settings;
use crate::lambda::{self, CodeAction, CodeTarget, Pacing};
use crate::model::S3Url;
use crate::names;
use crate::output::Reporter;
use crate::sync::local::LocalFile;
use crate::sync::{self, SyncRequest};

/// What every step of one deploy shares.
struct Deploy<'a> {
    clients: &'a Clients,
    settings: &'a Settings,
    opts: &'a DeployOptions,
    templates: Templates,
    manifest: crate::pack::Manifest,
    zips: Vec<LocalFile>,
    /// The provenance's signed envelope, checked with KMS before anything changes.
    envelope: Option<crate::pack::sign::Envelope>,
    targets: Vec<CodeTarget>,
    layers: Vec<LayerTarget>,
    plan_options: InfraPlanOptions,
    /// The uploads of templates and of zips, for observe and apply alike.
    template_req: SyncRequest,
    zip_req: SyncRequest,
    deadline: Instant,
}

/// Deploys the stack and the Lambda code.
pub async fn deploy(
    clients: &Clients,
    settings: &Settings,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
) -> Result<InfraReport, InfraError> {
    let started = Instant::now();
    let before = clients.requests.snapshot();
    let d = prepare(clients, settings, opts, started)?;
    check_signature(&d).await?;
    observe::check_bucket_region(clients, &settings.infra.deployment_bucket).await?;
    let (mut observed, mut plan) = observe_and_plan(&d).await?;
    while plan.step == StackStep::Wait && !opts.dry_run {
        observe::wait_settled(&clients.cfn, &plan.stack, d.deadline, reporter).await?;
        (observed, plan) = observe_and_plan(&d).await?;
    }
    let mut report = report_of(&plan, &observed);
    if opts.dry_run {
        report.outcome = Outcome::DryRun;
        if observed.stack.is_none() {
            report.functions.clear();
        }
    } else {
        apply(&d, &observed, &plan, &mut report, reporter).await?;
    }
    report.plan = Some(plan);
    report.requests = clients.requests.since(&before);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// With `[provenance] kms_key`, the provenance's signature is checked with
/// KMS against that key (never the key the file names).
async fn check_signature(d: &Deploy<'_>) -> Result<(), InfraError> {
    let (Some(key), Some(envelope)) = (&d.settings.provenance_kms_key, &d.envelope) else {
        return Ok(());
    };
    crate::pack::sign::verify(d.clients, envelope, Some(key))
        .await
        .map(|_| ())
        .map_err(|e| InfraError::Provenance {
            path: d
                .settings
                .pack
                .out
                .join(crate::pack::provenance::PROVENANCE),
            problem: format!("{e}"),
        })
}

/// Everything that needs no AWS call: templates, the manifest, names.
fn prepare<'a>(
    clients: &'a Clients,
    settings: &'a Settings,
    opts: &'a DeployOptions,
    started: Instant,
) -> Result<Deploy<'a>, InfraError> {
    let infra = &settings.infra;
    let templates = local::check_templates(settings, clients.region())?;
    let local::Packed {
        manifest,
        zips,
        envelope,
    } = local::packed_zips(settings)?;
    let change_set_name = names::change_set_name(opts.commit.as_deref(), opts.now_unix, opts.nonce);
    names::check_change_set_name(&change_set_name).map_err(|e| InfraError::StackState {
        stack: infra.stack_name.clone(),
        problem: e.to_string(),
        hint: e.hint,
    })?;
    let bucket = &infra.deployment_bucket;
    let targets = settings
        .functions
        .iter()
        .filter_map(|f| {
            Some(CodeTarget {
                function: f.name.clone(),
                deployed_name: f.deployed_name.clone(),
                bucket: bucket.clone(),
                key: f.zip_key.clone(),
                code_sha256: manifest.functions.get(&f.name)?.code_sha256.clone(),
            })
        })
        .collect();
    let layers = layers::targets(settings, &manifest, &templates)?;
    let plan_options = InfraPlanOptions {
        stack: infra.stack_name.clone(),
        parameters: infra.parameters.clone(),
        tags: infra.tags.clone(),
        replace_failed_stack: opts.replace_failed_stack,
        change_set_name,
        template_url: local::template_url(
            clients,
            bucket,
            &format!("{TEMPLATES_PREFIX}{}", infra.master_template),
        ),
    };
    Ok(Deploy {
        clients,
        settings,
        opts,
        templates,
        manifest,
        zips,
        envelope,
        targets,
        layers,
        plan_options,
        template_req: sync_request(settings, opts, TEMPLATES_PREFIX, &infra.templates),
        zip_req: sync_request(settings, opts, &settings.zips_prefix(), &settings.pack.out),
        deadline: crate::poll::deadline(started, opts.timeout),
    })
}

/// The upload of templates or zips: the site's header rules do not apply.
fn sync_request(
    settings: &Settings,
    opts: &DeployOptions,
    prefix: &str,
    dir: &Path,
) -> SyncRequest {
    SyncRequest {
        dir: dir.to_path_buf(),
        dest: S3Url {
            bucket: settings.infra.deployment_bucket.clone(),
            prefix: prefix.to_string(),
        },
        settings: crate::config::SyncSettings {
            rules: Vec::new(),
            ..settings.sync.clone()
        },
        delete: false,
        max_delete: None,
        dry_run: opts.dry_run,
        progress: false,
        keep: Default::default(),
        // The templates are scanned here; the zips' files were scanned by pack.
        secrets: (prefix == TEMPLATES_PREFIX)
            .then(|| crate::sync::SecretCheck::of(settings))
            .flatten(),
        copies: opts.copies.clone(),
    }
}

/// Reads the uploads' remote side, the stack and the functions, then plans.
async fn observe_and_plan(d: &Deploy<'_>) -> Result<(InfraObserved, InfraPlan), InfraError> {
    let clients = d.clients;
    let (t_req, z_req) = (&d.template_req, &d.zip_req);
    let zips = async {
        if d.zips.is_empty() {
            return Ok(None);
        }
        sync::observe_files(clients, z_req, d.zips.clone())
            .await
            .map(Some)
    };
    let (t, z, current, found) = tokio::join!(
        sync::observe(clients, t_req),
        zips,
        observe::describe(&clients.cfn, &d.plan_options.stack),
        layers::observe(&clients.lambda, &d.layers)
    );
    let (template_sync, zip_sync, stack, found) = (t?, z?, current?, found?);
    let layer_steps = layers::plan(&d.layers, &found);
    let t_plan = sync::plan::plan(&template_sync, &t_req.plan_options());
    let z_plan = zip_sync
        .as_ref()
        .map(|z| sync::plan::plan(z, &z_req.plan_options()));
    let updatable = stack
        .as_ref()
        .is_some_and(|v| stack::decide(Some(&v.status), false) == StackAction::Update);
    let deployed_template = if updatable && plan::may_be_unchanged(&d.templates, &t_plan) {
        observe::deployed_template(&clients.cfn, &d.plan_options.stack).await?
    } else {
        None
    };
    let deployed_code = if stack.is_some() {
        lambda::observe_code(&clients.lambda, &d.targets).await?
    } else {
        Vec::new()
    };
    let observed = InfraObserved {
        templates: d.templates.clone(),
        stack,
        deployed_template,
        template_sync,
        zip_sync,
        targets: d.targets.clone(),
        deployed_code,
    };
    // Each layer's parameter: the reused version's ARN, or a value no ARN
    // has, so a layer about to be published counts as a change.
    let mut options = d.plan_options.clone();
    for step in &layer_steps {
        let value = step
            .arn
            .clone()
            .unwrap_or_else(|| layers::pending_value(&step.layer));
        options.parameters.insert(step.parameter.clone(), value);
    }
    let mut plan = plan::plan(&observed, t_plan, z_plan, &options)?;
    plan.layers = layer_steps;
    Ok((observed, plan))
}

/// The report as the plan describes it, before anything is done.
fn report_of(plan: &InfraPlan, observed: &InfraObserved) -> InfraReport {
    InfraReport {
        stack: plan.stack.clone(),
        outcome: Outcome::Unchanged,
        change_set: None,
        change_set_type: plan.change_set_type.clone(),
        stack_status: plan.stack_status.clone(),
        template_url: plan.template_url.clone(),
        changes: Vec::new(),
        templates: Uploads::from(&plan.templates),
        zips: plan.zips.as_ref().map(Uploads::from).unwrap_or_default(),
        functions: plan.functions.clone(),
        outputs: observed
            .stack
            .as_ref()
            .map(|s| s.outputs.clone())
            .unwrap_or_default(),
        nested_outputs: BTreeMap::new(),
        outputs_file: None,
        failure: None,
        requests: BTreeMap::new(),
        seconds: 0.0,
        layers: plan.layers.clone(),
        history: None,
        warnings: Vec::new(),
        plan: None,
    }
}

/// Carries out the plan.
async fn apply(
    d: &Deploy<'_>,
    observed: &InfraObserved,
    plan: &InfraPlan,
    report: &mut InfraReport,
    reporter: &dyn Reporter,
) -> Result<(), InfraError> {
    let clients = d.clients;
    upload(d, observed, plan, report).await?;
    let plan = &publish_layers(d, plan, report).await?;
    if plan.step == StackStep::ReplaceFailed {
        replace_failed(d, plan, reporter).await?;
    }
    let stack_changed = match plan.change_set_type.as_deref() {
        Some(kind) => {
            let done = run_change_set(d, plan, ChangeSetType::from(kind), report, reporter).await?;
            if report.outcome == Outcome::Review {
                return Ok(());
            }
            done
        }
        None => false,
    };
    update_functions(d, plan, stack_changed, report).await?;
    if stack_changed {
        // Outputs as the stack has them now.
        let view = observe::describe(&clients.cfn, &plan.stack).await?;
        report.stack_status = view.as_ref().map(|v| v.status.clone());
        report.outputs = view.map(|v| v.outputs).unwrap_or_default();
    }
    if !d.templates.nested.stacks.is_empty() {
        report.nested_outputs = observe::nested_outputs(&clients.cfn, &plan.stack).await?;
    }
    let path = &d.settings.infra.outputs_file;
    let file = super::report::outputs_file(&report.outputs, &report.nested_outputs);
    let mut json = serde_json::to_vec_pretty(&file).map_err(|e| InfraError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    crate::util::write_atomic(path, &json).map_err(|source| InfraError::Io {
        path: path.clone(),
        source,
    })?;
    report.outputs_file = Some(path.clone());
    if report.outcome == Outcome::Changed {
        record_deploy(d, plan, report, stack_changed).await;
    }
    Ok(())
}

/// Records a deploy that changed something in the history; a failure to
/// record is a warning (the deploy itself is done).
async fn record_deploy(
    d: &Deploy<'_>,
    plan: &InfraPlan,
    report: &mut InfraReport,
    stack_changed: bool,
) {
    let commit = d.opts.commit.as_deref();
    let deployed = record::Deployed {
        settings: d.settings,
        manifest: &d.manifest,
        master_body: &d.templates.master_body,
        nested: &d.templates.nested_bodies,
        commit,
        id: names::deployment_id(commit, d.opts.now_unix, d.opts.nonce),
        started_unix: d.opts.now_unix,
    };
    let r = record::record_of(
        &deployed,
        plan,
        report,
        stack_changed,
        crate::util::unix_now(),
    );
    match record::save(d.clients, d.settings, r).await {
        Ok(id) => report.history = Some(id),
        Err(e) => report.warnings.push(format!(
            "the deployment was not recorded in the history: {e}"
        )),
    }
}

/// Publishes the layers the plan says are new (their zips are uploaded by
/// now); the plan with their ARNs as parameters.
async fn publish_layers(
    d: &Deploy<'_>,
    plan: &InfraPlan,
    report: &mut InfraReport,
) -> Result<InfraPlan, InfraError> {
    let mut plan = plan.clone();
    for (step, target) in plan.layers.iter_mut().zip(&d.layers) {
        if step.action == layers::LayerAction::Publish {
            step.arn = Some(layers::publish(&d.clients.lambda, target).await?);
        }
        if let Some(arn) = &step.arn {
            plan.passed_parameters
                .insert(step.parameter.clone(), arn.clone());
        }
    }
    report.layers = plan.layers.clone();
    Ok(plan)
}

/// Templates and zips to the deployment bucket, concurrently.
async fn upload(
    d: &Deploy<'_>,
    observed: &InfraObserved,
    plan: &InfraPlan,
    report: &mut InfraReport,
) -> Result<(), InfraError> {
    let clients = d.clients;
    let (t_req, z_req) = (&d.template_req, &d.zip_req);
    check_zips_unchanged(observed, plan)?;
    let before = clients.requests.snapshot();
    let zips = async {
        match (&observed.zip_sync, &plan.zips) {
            (Some(o), Some(p)) => sync::execute(clients, z_req, o, p, before.clone())
                .await
                .map(Some),
            _ => Ok(None),
        }
    };
    let (t, z) = tokio::join!(
        sync::execute(
            clients,
            t_req,
            &observed.template_sync,
            &plan.templates,
            before.clone()
        ),
        zips
    );
    report.templates = Uploads::from(&t?);
    report.zips = z?.as_ref().map(Uploads::from).unwrap_or_default();
    Ok(())
}

/// The zips about to be uploaded still have the bytes the manifest names.
fn check_zips_unchanged(observed: &InfraObserved, plan: &InfraPlan) -> Result<(), InfraError> {
    let (Some(o), Some(p)) = (&observed.zip_sync, &plan.zips) else {
        return Ok(());
    };
    for a in p.actions() {
        let Some(f) = o.local.iter().find(|f| o.dest.key(&f.rel) == a.key) else {
            continue;
        };
        if crate::sync::local::sha256_file(&f.path)? != f.sha256 {
            return Err(InfraError::ZipChanged {
                path: f.path.clone(),
            });
        }
    }
    Ok(())
}

/// Deletes a stack whose first create failed, and waits until it is gone.
async fn replace_failed(
    d: &Deploy<'_>,
    plan: &InfraPlan,
    reporter: &dyn Reporter,
) -> Result<(), InfraError> {
    let stack = &plan.stack;
    reporter.progress(format!(
        "  stack {stack} is {}: deleting it to create it again (--replace-failed-stack)",
        plan.stack_status.as_deref().unwrap_or_default()
    ));
    d.clients
        .cfn
        .delete_stack()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| aws_err("DeleteStack", stack, e))?;
    match observe::wait_settled(&d.clients.cfn, stack, d.deadline, reporter).await? {
        Some(v) if v.status != "DELETE_COMPLETE" => Err(InfraError::StackState {
            stack: stack.clone(),
            problem: format!("deleting the failed stack ended in {}", v.status),
            hint: "delete it in the CloudFormation console, then deploy again".into(),
        }),
        _ => Ok(()),
    }
}

/// Creates the change set and, unless `--no-execute`, executes and follows
/// it. Returns whether the stack changed.
async fn run_change_set(
    d: &Deploy<'_>,
    plan: &InfraPlan,
    kind: ChangeSetType,
    report: &mut InfraReport,
    reporter: &dyn Reporter,
) -> Result<bool, InfraError> {
    let name = &d.plan_options.change_set_name;
    report.change_set = Some(name.clone());
    let parameters = plan::unmasked(
        &plan.passed_parameters,
        &d.plan_options.parameters,
        &d.templates.no_echo,
    );
    let req = changeset::ChangeSetRequest {
        name,
        kind,
        template_url: &plan.template_url,
        parameters: &parameters,
        nested: !d.templates.nested.stacks.is_empty(),
    };
    let created = changeset::create_change_set(d.clients, d.settings, req, d.deadline).await?;
    let Some(changes) = created else {
        reporter.progress(format!("  change set {name} has no changes: deleted it"));
        report.change_set = None;
        return Ok(false);
    };
    for c in &changes {
        reporter.progress(format!(
            "  {:<8} {:<32} {:<36} replacement: {}",
            c.action, c.logical_id, c.resource_type, c.replacement
        ));
    }
    report.changes = changes;
    if d.opts.no_execute {
        report.outcome = Outcome::Review;
        return Ok(false);
    }
    let (view, failure) =
        changeset::execute_and_follow(&d.clients.cfn, &plan.stack, name, d.deadline, reporter)
            .await?;
    report.stack_status = view.as_ref().map(|v| v.status.clone());
    if let Some(failure) = failure {
        report.outcome = Outcome::Failed;
        report.failure = Some(failure.clone());
        let (resource, reason) = failure
            .split_once(": ")
            .map(|(a, b)| (Some(a.to_string()), Some(b.to_string())))
            .unwrap_or((None, Some(failure.clone())));
        return Err(InfraError::StackFailed {
            stack: plan.stack.clone(),
            status: report.stack_status.clone().unwrap_or_default(),
            resource,
            reason,
        });
    }
    report.outcome = Outcome::Changed;
    Ok(true)
}

/// Lambda code, only where it changed.
async fn update_functions(
    d: &Deploy<'_>,
    plan: &InfraPlan,
    stack_changed: bool,
    report: &mut InfraReport,
) -> Result<(), InfraError> {
    let wanted = plan.functions_to_update(stack_changed);
    let targets: Vec<CodeTarget> = d
        .targets
        .iter()
        .filter(|t| wanted.contains(&t.function.as_str()))
        .cloned()
        .collect();
    let pacing = Pacing::new(d.deadline.saturating_duration_since(Instant::now()));
    let done = lambda::update_code(&d.clients.lambda, &targets, pacing).await?;
    report.functions = plan
        .functions
        .iter()
        .map(|f| {
            done.iter()
                .find(|r| r.function == f.function)
                .cloned()
                .unwrap_or_else(|| f.clone())
        })
        .collect();
    if done.iter().any(|f| f.action == CodeAction::Updated) {
        report.outcome = Outcome::Changed;
    }
    Ok(())
}
