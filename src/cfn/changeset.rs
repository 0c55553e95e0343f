//! Change sets: create one (and wait until it is ready, or find it empty),
//! execute it.

use std::collections::HashSet;
use std::time::Instant;

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, DeploymentConfig, DeploymentConfigMode, Parameter,
    Tag,
};

use super::events::{follow, recent_events};
use super::observe::StackView;
use super::{aws_err, nested_changes, stack, ChangeRow, InfraError};
use crate::aws::Clients;
use crate::config::{DeployMode, InfraSettings, Settings};
use crate::output::Reporter;
use crate::poll::{Backoff, Poller};

/// One change set to create.
pub struct ChangeSetRequest<'a> {
    pub name: &'a str,
    pub kind: ChangeSetType,
    pub template_url: &'a str,
    pub parameters: &'a [(String, String)],
    /// The templates nest stacks: each gets a change set of its own
    /// (`IncludeNestedStacks`), whose rows and failures are read too.
    pub nested: bool,
}

/// Creates the change set and waits for it; `None` when it has nothing to do
/// (it is deleted then).
pub async fn create_change_set(
    clients: &Clients,
    settings: &Settings,
    req: ChangeSetRequest<'_>,
    deadline: Instant,
) -> Result<Option<Vec<ChangeRow>>, InfraError> {
    let name = req.name;
    send_create(&clients.cfn, &settings.infra, req).await?;
    wait_for_change_set(&clients.cfn, &settings.infra.stack_name, name, deadline).await
}

/// The CreateChangeSet call.
pub(super) async fn send_create(
    cfn: &aws_sdk_cloudformation::Client,
    infra: &InfraSettings,
    req: ChangeSetRequest<'_>,
) -> Result<(), InfraError> {
    let ChangeSetRequest {
        name,
        kind,
        template_url,
        parameters,
        nested,
    } = req;
    let stack = &infra.stack_name;
    let tags: Vec<Tag> = infra
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    cfn.create_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .change_set_type(kind)
        .template_url(template_url)
        .set_parameters(Some(
            parameters
                .iter()
                .map(|(k, v)| {
                    let p = Parameter::builder().parameter_key(k);
                    // A masked value (a NoEcho parameter's, as recorded) keeps the stack's.
                    if v == super::plan::MASK {
                        p.use_previous_value(true).build()
                    } else {
                        p.parameter_value(v).build()
                    }
                })
                .collect(),
        ))
        .set_capabilities(Some(
            infra
                .capabilities
                .iter()
                .map(|c| Capability::from(c.as_str()))
                .collect(),
        ))
        .set_tags((!tags.is_empty()).then_some(tags))
        .set_role_arn(infra.role_arn.clone())
        .set_deployment_config(deployment_config(infra.mode))
        // Each nested stack's changes in a change set of its own, and the
        // reason a nested one fails.
        .set_include_nested_stacks(nested.then_some(true))
        // The same name as token: a retried call cannot create a second change set.
        .client_token(name)
        .send()
        .await
        .map_err(|e| aws_err("CreateChangeSet", stack, e))?;
    Ok(())
}

/// `DeploymentConfig` for `[infra] mode`: nothing in standard mode (the
/// request stays what it always was); Express with rollback explicitly on,
/// since CloudFormation turns it off by default in that mode. The execute
/// call never carries `DisableRollback` (CloudFormation rejects it beside a
/// `DeploymentConfig`).
pub(crate) fn deployment_config(mode: DeployMode) -> Option<DeploymentConfig> {
    match mode {
        DeployMode::Standard => None,
        DeployMode::Express => Some(
            DeploymentConfig::builder()
                .mode(DeploymentConfigMode::Express)
                .disable_rollback(false)
                .build(),
        ),
    }
}

/// Waits until the change set is ready and returns its rows; `None` when it
/// has nothing to do (it is deleted then).
async fn wait_for_change_set(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    name: &str,
    deadline: Instant,
) -> Result<Option<Vec<ChangeRow>>, InfraError> {
    let mut poll = Poller::new(Backoff::CHANGE_SET, deadline);
    let root = nested_changes::Target {
        change_set: name,
        stack: Some(stack),
    };
    loop {
        let out = match cfn
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(|e| aws_err("DescribeChangeSet", stack, e))
        {
            Ok(out) => out,
            Err(e) if e.is_transient() => {
                poll.wait_after_fault()
                    .await
                    .map_err(|_| InfraError::Timeout {
                        what: format!("the creation of change set {name}"),
                        seen: Some(format!("its last answer failed: {e}")),
                    })?;
                continue;
            }
            Err(e) => return Err(e),
        };
        match out.status() {
            Some(ChangeSetStatus::CreateComplete) => {
                let (rows, _) = nested_changes::rows_from(cfn, root, &out).await?;
                return Ok(Some(nested_changes::expand(cfn, rows).await?));
            }
            Some(ChangeSetStatus::Failed) => {
                let reason = out.status_reason().unwrap_or_default().to_string();
                if stack::is_empty_change_set(&reason) {
                    delete_change_set(cfn, stack, name).await?;
                    return Ok(None);
                }
                let rows = nested_changes::rows_from(cfn, root, &out)
                    .await
                    .map(|(rows, _)| rows)
                    .unwrap_or_default();
                let reason = nested_changes::explain(cfn, &reason, &rows).await;
                // Never left behind (deleting the root deletes its nested ones).
                if let Err(e) = delete_change_set(cfn, stack, name).await {
                    tracing::info!("failed change set {name} not deleted: {e}");
                }
                return Err(InfraError::ChangeSetFailed {
                    name: name.to_string(),
                    reason,
                });
            }
            _ => {}
        }
        let status = out.status().map(|s| s.as_str().to_string());
        poll.wait().await.map_err(|_| InfraError::Timeout {
            what: format!("the creation of change set {name}"),
            seen: status.map(|s| format!("last seen {s}")),
        })?;
    }
}

/// Deletes a change set. One already gone counts as deleted: a retried
/// delete whose first answer was lost finds nothing to delete.
async fn delete_change_set(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    name: &str,
) -> Result<(), InfraError> {
    let Err(e) = cfn
        .delete_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
    else {
        return Ok(());
    };
    let gone = |code: Option<&str>| {
        matches!(
            code,
            Some("ChangeSetNotFound" | "ChangeSetNotFoundException")
        )
    };
    if gone(e.code()) {
        return Ok(());
    }
    // Some answers say nothing useful (a 5xx): ask whether it is still there.
    match cfn
        .describe_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
    {
        Err(d) if gone(d.code()) => Ok(()),
        _ => Err(aws_err("DeleteChangeSet", stack, e)),
    }
}

/// Executes the change set and follows the stack until it settles, printing
/// new events. Returns the final stack and, on failure, its root cause.
pub async fn execute_and_follow(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    change_set: &str,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<(Option<StackView>, Option<String>), InfraError> {
    let started = async {
        let seen: HashSet<String> = recent_events(cfn, stack)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect();
        cfn.execute_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .client_request_token(change_set)
            .send()
            .await
            .map_err(|e| aws_err("ExecuteChangeSet", stack, e))?;
        Ok::<_, InfraError>(seen)
    }
    .await;
    let mut seen = match started {
        Ok(seen) => seen,
        Err(e) => {
            // Leave no change set behind that nothing will execute. If the
            // execute did start after all, CloudFormation refuses the delete
            // and the next deploy waits for the stack instead.
            if let Err(d) = delete_change_set(cfn, stack, change_set).await {
                tracing::info!("change set {change_set} not deleted: {d}");
            }
            return Err(e);
        }
    };
    follow(cfn, stack, &mut seen, deadline, reporter).await
}
