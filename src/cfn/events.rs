//! Stack events: the newest page, following a stack until it settles while
//! printing each new event once, and the root cause of a failure.

use std::collections::HashSet;
use std::time::Instant;

use aws_sdk_cloudformation::error::ProvideErrorMetadata;

use super::observe::{describe, StackView};
use super::{aws_err, stack, InfraError};
use crate::output::Reporter;
use crate::poll::{Backoff, Poller, WaitNotes};

/// One stack event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// The newest page of events, oldest first.
pub async fn recent_events(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Vec<Event>, InfraError> {
    let out = match cfn.describe_stack_events().stack_name(stack).send().await {
        Ok(o) => o,
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(aws_err("DescribeStackEvents", stack, e)),
    };
    let mut events: Vec<Event> = out
        .stack_events()
        .iter()
        .map(|e| Event {
            id: e.event_id().unwrap_or_default().to_string(),
            logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: e.resource_type().unwrap_or_default().to_string(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: e.resource_status_reason().map(str::to_string),
        })
        .collect();
    events.reverse();
    Ok(events)
}

/// Polls the stack and its events until it settles.
pub async fn follow(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    seen: &mut HashSet<String>,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<(Option<StackView>, Option<String>), InfraError> {
    let mut poll = Poller::new(Backoff::STACK, deadline);
    let mut notes = WaitNotes::new(format!("stack {stack}"), tokio::time::Instant::now());
    let mut ours: Vec<Event> = Vec::new();
    loop {
        let polled = async {
            let view = describe(cfn, stack).await?;
            let events = recent_events(cfn, stack).await?;
            Ok::<_, InfraError>((view, events))
        }
        .await;
        match polled {
            Ok((view, events)) => {
                for e in events {
                    if seen.insert(e.id.clone()) {
                        let line = format!(
                            "  {:<28} {:<36} {}{}",
                            e.status,
                            e.logical_id,
                            e.resource_type,
                            e.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        );
                        notes.event(&line, tokio::time::Instant::now());
                        reporter.progress(line);
                        ours.push(e);
                    }
                }
                let status = view.as_ref().map(|v| v.status.clone()).unwrap_or_default();
                notes.state(&status);
                if view.is_none() || stack::settled(&status) {
                    let failure = (!stack::succeeded(&status)).then(|| {
                        first_failure(&ours)
                            .unwrap_or_else(|| format!("the stack ended in {status}"))
                    });
                    return Ok((view, failure));
                }
            }
            // Throttled or a passing fault even after the SDK's retries: back
            // off harder and keep following until the deadline.
            Err(e) if e.is_transient() => {
                tracing::info!("still following stack {stack} after: {e}");
                notes.fault(&e.fault_label(), tokio::time::Instant::now());
                poll.slow_down();
            }
            Err(e) => return Err(e),
        }
        for line in notes.due(tokio::time::Instant::now()) {
            reporter.progress(line);
        }
        poll.wait().await.map_err(|_| InfraError::Timeout {
            what: notes.operation(),
            seen: Some(notes.last_seen(tokio::time::Instant::now())),
        })?;
    }
}

/// The root cause: the earliest failed resource event that is not a
/// cancellation caused by another failure.
pub fn first_failure(events: &[Event]) -> Option<String> {
    events
        .iter()
        .filter(|e| e.status.ends_with("_FAILED"))
        .find(|e| {
            !e.reason
                .as_deref()
                .is_some_and(|r| r.contains("cancelled") || r.contains("canceled"))
        })
        .map(|e| {
            format!(
                "{} ({}): {}",
                e.logical_id,
                e.resource_type,
                e.reason.as_deref().unwrap_or("no reason given")
            )
        })
}
