//! The stack as it is, read only: DescribeStacks, GetTemplate, the
//! deployment bucket's region, and the wait for a running operation to settle.

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::TemplateStage;
use serde::{Deserialize, Serialize};

use super::{aws_err, stack, InfraError};
use crate::aws::Clients;
use crate::output::Reporter;
use crate::poll::{Backoff, Poller, WaitNotes};
use crate::sync::{self, SyncError};

/// One stack output, in the shape `describe-stacks` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackOutput {
    #[serde(rename = "OutputKey")]
    pub key: String,
    #[serde(rename = "OutputValue")]
    pub value: String,
    #[serde(
        rename = "Description",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub description: Option<String>,
    #[serde(
        rename = "ExportName",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub export_name: Option<String>,
}

/// Fails unless the bucket exists in the stack's region.
pub async fn check_bucket_region(clients: &Clients, bucket: &str) -> Result<(), InfraError> {
    let out = clients
        .s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| match sync::classify("GetBucketLocation", bucket, e) {
            SyncError::NoSuchBucket { .. } => InfraError::NoBucket {
                bucket: bucket.to_string(),
            },
            other => InfraError::Sync(other),
        })?;
    let region = match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_string(),
    };
    if region != clients.region() {
        return Err(InfraError::BucketRegion {
            bucket: bucket.to_string(),
            bucket_region: region,
            region: clients.region().to_string(),
        });
    }
    Ok(())
}

/// A stack as far as a deploy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackView {
    pub status: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub outputs: Vec<StackOutput>,
}

/// The nested stacks of `stack` (`AWS::CloudFormation::Stack` resources):
/// each one's logical id and stack id.
pub async fn nested_stacks(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Vec<(String, String)>, InfraError> {
    let out = cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| aws_err("DescribeStackResources", stack, e))?;
    Ok(out
        .stack_resources()
        .iter()
        .filter(|r| r.resource_type() == Some("AWS::CloudFormation::Stack"))
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()
                    .filter(|p| !p.is_empty())?
                    .to_string(),
            ))
        })
        .collect())
}

/// The outputs of each nested stack of `stack` (one level), by logical id;
/// read concurrently.
pub async fn nested_outputs(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<BTreeMap<String, Vec<StackOutput>>, InfraError> {
    let nested = nested_stacks(cfn, stack).await?;
    let views =
        futures_util::future::try_join_all(nested.iter().map(|(_, arn)| describe(cfn, arn)))
            .await?;
    Ok(nested
        .into_iter()
        .zip(views)
        .filter_map(|((id, _), view)| Some((id, view?.outputs)))
        .collect())
}

/// The stack, or `None` when there is none.
pub async fn describe(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<StackView>, InfraError> {
    let out = match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(o) => o,
        Err(e)
            if e.code() == Some("ValidationError")
                && e.message().is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_err("DescribeStacks", stack, e)),
    };
    let Some(s) = out.stacks().first() else {
        return Ok(None);
    };
    Ok(Some(StackView {
        status: s
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        parameters: s
            .parameters()
            .iter()
            .map(|p| {
                (
                    p.parameter_key().unwrap_or_default().to_string(),
                    p.parameter_value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        tags: s
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        outputs: s
            .outputs()
            .iter()
            .map(|o| StackOutput {
                key: o.output_key().unwrap_or_default().to_string(),
                value: o.output_value().unwrap_or_default().to_string(),
                description: o.description().map(str::to_string),
                export_name: o.export_name().map(str::to_string),
            })
            .collect(),
    }))
}

/// Polls until the stack leaves every `*_IN_PROGRESS` state (or disappears).
pub async fn wait_settled(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<Option<StackView>, InfraError> {
    let mut poll = Poller::new(Backoff::STACK, deadline);
    let now = tokio::time::Instant::now;
    let mut notes = WaitNotes::new(format!("stack {stack}"), now());
    let expired = |notes: &WaitNotes| InfraError::Timeout {
        what: notes.operation(),
        seen: Some(notes.last_seen(now())),
    };
    let mut said = None;
    loop {
        let view = match describe(cfn, stack).await {
            Ok(v) => v,
            Err(e) if e.is_transient() => {
                tracing::info!("still waiting for stack {stack} after: {e}");
                notes.fault(&e.fault_label(), now());
                for line in notes.due(now()) {
                    reporter.progress(line);
                }
                poll.wait_after_fault().await.map_err(|_| expired(&notes))?;
                continue;
            }
            Err(e) => return Err(e),
        };
        match &view {
            Some(v) if !stack::settled(&v.status) && v.status != "REVIEW_IN_PROGRESS" => {
                notes.state(&v.status);
                // Each new state is said at once; the same one again every 30 s.
                if said.as_ref() != Some(&v.status) {
                    let line = format!("  waiting: stack {stack} is {}", v.status);
                    notes.event(&line, now());
                    reporter.progress(line);
                    said = Some(v.status.clone());
                }
                for line in notes.due(now()) {
                    reporter.progress(line);
                }
            }
            _ => return Ok(view),
        }
        poll.wait().await.map_err(|_| expired(&notes))?;
    }
}

/// The template the stack was last deployed with.
pub async fn deployed_template(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<String>, InfraError> {
    let out = cfn
        .get_template()
        .stack_name(stack)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .map_err(|e| aws_err("GetTemplate", stack, e))?;
    Ok(out.template_body().map(str::to_string))
}
