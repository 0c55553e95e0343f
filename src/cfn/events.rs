//! Stack events: the newest page, following a stack (and the nested stacks
//! it updates) until it settles while printing each new event once, and the
//! root cause of a failure: the first failing resource, in a nested stack
//! when that is where it failed.

use std::collections::{BTreeMap, HashSet};
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
    /// The logical id, prefixed with the nested stacks' (`Functions/ApiFunction`)
    /// for an event of a nested stack.
    pub logical_id: String,
    pub physical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    /// Milliseconds since the epoch, as the service stamped it.
    pub millis: i64,
}

const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

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
            physical_id: e.physical_resource_id().unwrap_or_default().to_string(),
            resource_type: e.resource_type().unwrap_or_default().to_string(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: e.resource_status_reason().map(str::to_string),
            millis: e
                .timestamp()
                .and_then(|t| t.to_millis().ok())
                .unwrap_or_default(),
        })
        .collect();
    events.reverse();
    Ok(events)
}

/// A nested stack being followed: the prefix of its events, and whether its
/// parent still shows it in progress (a settled one is read once more).
#[derive(Debug, Clone)]
struct NestedStack {
    prefix: String,
    /// Events stamped before its parent's event that named it are older
    /// than this deploy.
    since: i64,
    active: bool,
    /// Settled and read since: not read again.
    done: bool,
}

/// The nested stacks followed so far, by stack ARN.
#[derive(Debug, Default)]
struct Nested {
    stacks: BTreeMap<String, NestedStack>,
}

impl Nested {
    /// Learns from a new event: a nested stack resource's event names the
    /// nested stack's ARN (the root's own events name the root).
    fn learn(&mut self, e: &Event, root: &str) {
        if e.resource_type != STACK_TYPE
            || !e.physical_id.starts_with("arn:")
            || e.physical_id.contains(&format!(":stack/{root}/"))
        {
            return;
        }
        let n = self
            .stacks
            .entry(e.physical_id.clone())
            .or_insert_with(|| NestedStack {
                prefix: e.logical_id.clone(),
                since: e.millis,
                active: true,
                done: false,
            });
        n.active = e.status.ends_with("_IN_PROGRESS");
        if n.active {
            n.done = false;
        }
    }

    /// Stacks to read now: those in progress, and those that settled since
    /// their last read.
    fn to_read(&self) -> Vec<(String, NestedStack)> {
        self.stacks
            .iter()
            .filter(|(_, n)| !n.done)
            .map(|(arn, n)| (arn.clone(), n.clone()))
            .collect()
    }

    fn read(&mut self, arn: &str) {
        if let Some(n) = self.stacks.get_mut(arn) {
            n.done = !n.active;
        }
    }
}

/// One round of polling: the stack, its new events and those of the nested
/// stacks it is updating, each printed once.
async fn poll_once(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    seen: &mut HashSet<String>,
    nested: &mut Nested,
) -> Result<(Option<StackView>, Vec<Event>), InfraError> {
    let view = describe(cfn, stack).await?;
    let mut new = Vec::new();
    for e in recent_events(cfn, stack).await? {
        if seen.insert(e.id.clone()) {
            nested.learn(&e, stack);
            new.push(e);
        }
    }
    // Nested stacks found now are read now (deeper ones in the next round).
    for (arn, n) in nested.to_read() {
        let events = match recent_events(cfn, &arn).await {
            Ok(events) => events,
            Err(e) if e.is_transient() => continue,
            Err(e) => return Err(e),
        };
        nested.read(&arn);
        for mut e in events {
            if !seen.insert(e.id.clone()) || e.millis < n.since || e.physical_id == arn {
                continue;
            }
            e.logical_id = format!("{}/{}", n.prefix, e.logical_id);
            nested.learn(&e, stack);
            new.push(e);
        }
    }
    Ok((view, new))
}

/// Polls the stack and its events (with those of its nested stacks) until it settles.
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
    let mut nested = Nested::default();
    loop {
        match poll_once(cfn, stack, seen, &mut nested).await {
            Ok((view, events)) => {
                for e in events {
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
/// cancellation caused by another failure, nor a nested stack's failure when
/// the failing resource inside it is known.
pub fn first_failure(events: &[Event]) -> Option<String> {
    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| e.status.ends_with("_FAILED"))
        .filter(|e| {
            !e.reason
                .as_deref()
                .is_some_and(|r| r.contains("cancelled") || r.contains("canceled"))
        })
        .collect();
    let inner = failed
        .iter()
        .find(|e| !e.reason.as_deref().is_some_and(is_embedded));
    inner.or(failed.first()).map(|e| {
        format!(
            "{} ({}): {}",
            e.logical_id,
            e.resource_type,
            e.reason.as_deref().unwrap_or("no reason given")
        )
    })
}

/// A parent's reason for a nested stack that failed inside.
fn is_embedded(reason: &str) -> bool {
    reason.starts_with("Embedded stack ")
}
