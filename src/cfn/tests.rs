//! Stack waits and event following against a mocked CloudFormation: the
//! branches a local server cannot produce (throttling, rollbacks mid-way).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::changeset::execute_and_follow;
use super::events::follow;
use super::observe::wait_settled;
use super::InfraError;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::types::{ResourceStatus, Stack, StackEvent, StackStatus};
use aws_sdk_cloudformation::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_name("s")
                .stack_status(status)
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build(),
        )
        .build()
}

fn event(id: &str, logical: &str, status: ResourceStatus, reason: Option<&str>) -> StackEvent {
    StackEvent::builder()
        .event_id(id)
        .stack_id("s")
        .stack_name("s")
        .logical_resource_id(logical)
        .resource_type(if logical == "s" {
            "AWS::CloudFormation::Stack"
        } else {
            "AWS::Lambda::Function"
        })
        .resource_status(status)
        .set_resource_status_reason(reason.map(str::to_string))
        .timestamp(aws_smithy_types::DateTime::from_secs(0))
        .build()
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

#[tokio::test(start_paused = true)]
async fn a_rollback_reports_the_first_failed_resource_and_its_reason() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress))
        .output(|| stack(StackStatus::UpdateRollbackInProgress))
        .output(|| stack(StackStatus::UpdateRollbackComplete))
        .build();
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event("1", "s", ResourceStatus::UpdateInProgress, None))
                .build()
        })
        .output(|| {
            // Newest first, as the service returns them.
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "4",
                    "Api",
                    ResourceStatus::UpdateFailed,
                    Some("Resource update cancelled"),
                ))
                .stack_events(event(
                    "3",
                    "Poller",
                    ResourceStatus::UpdateFailed,
                    Some("Runtime python2.7 is not supported"),
                ))
                .stack_events(event("2", "Poller", ResourceStatus::UpdateInProgress, None))
                .stack_events(event("1", "s", ResourceStatus::UpdateInProgress, None))
                .build()
        })
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "5",
                    "s",
                    ResourceStatus::UpdateRollbackComplete,
                    None,
                ))
                .build()
        })
        .build();
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &events]
    );
    let printed = std::sync::Mutex::new(Vec::new());
    let say = |s: String| printed.lock().unwrap().push(s);
    let mut seen = HashSet::new();
    let (view, failure) = follow(&client, "s", &mut seen, far(), &say).await.unwrap();
    assert_eq!(view.unwrap().status, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(
        failure.as_deref(),
        Some("Poller (AWS::Lambda::Function): Runtime python2.7 is not supported")
    );
    let printed = printed.into_inner().unwrap();
    assert_eq!(printed.len(), 5, "each event printed once: {printed:?}");
    assert!(printed[2].contains("UPDATE_FAILED") && printed[2].contains("python2.7"));
}

#[tokio::test(start_paused = true)]
async fn waits_out_an_operation_in_progress() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress))
        .times(3)
        .output(|| stack(StackStatus::UpdateComplete))
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
    let said = std::sync::Mutex::new(0);
    let say = |_: String| *said.lock().unwrap() += 1;
    let v = wait_settled(&client, "s", far(), &say)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.status, "UPDATE_COMPLETE");
    assert_eq!(describe.num_calls(), 4);
    // The state is said once when seen, not again on every poll.
    assert_eq!(*said.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_long_wait_through_5xx_says_so_every_30_seconds_and_its_deadline_names_the_create() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::CreateInProgress))
        .http_status(
            500,
            Some("<html><body>Internal Server Error</body></html>".into()),
        )
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
    let printed = std::sync::Mutex::new(Vec::new());
    let say = |s: String| printed.lock().unwrap().push(s);
    let deadline = Instant::now() + Duration::from_secs(150);
    let err = wait_settled(&client, "s", deadline, &say)
        .await
        .unwrap_err();
    let printed = printed.into_inner().unwrap();
    assert_eq!(printed[0], "  waiting: stack s is CREATE_IN_PROGRESS");
    let faults: Vec<&String> = printed
        .iter()
        .filter(|l| l.contains("still retrying"))
        .collect();
    assert!(faults.len() >= 3, "{printed:#?}");
    assert!(
        faults[0].starts_with("  DescribeStacks: HTTP 500 ×"),
        "{printed:#?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("  still waiting: stack s is CREATE_IN_PROGRESS (")),
        "{printed:#?}"
    );
    let err = err.to_string();
    assert!(
        err.starts_with("the create of stack s did not finish within the deadline (last seen CREATE_IN_PROGRESS after 2m"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stack_that_never_settles_hits_the_deadline() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = wait_settled(&client, "s", deadline, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, InfraError::Timeout { .. }), "{err}");
    assert!(err.hint().unwrap().contains("--timeout"));
}

#[tokio::test(start_paused = true)]
async fn throttling_while_following_backs_off_and_carries_on() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
        .times(3)
        .output(|| stack(StackStatus::UpdateComplete))
        .build();
    let events = mock!(Client::describe_stack_events)
        .then_output(|| DescribeStackEventsOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &events]
    );
    let (view, failure) = follow(&client, "s", &mut HashSet::new(), far(), &|_| {})
        .await
        .unwrap();
    assert_eq!(view.unwrap().status, "UPDATE_COMPLETE");
    assert!(failure.is_none());
    assert!(describe.num_calls() >= 4);
}

#[tokio::test(start_paused = true)]
async fn a_wait_polls_through_5xx_and_throttling_until_the_stack_settles() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .http_status(503, Some("<html><body>Service Unavailable</body></html>".into()))
        .times(2)
        .output(|| stack(StackStatus::UpdateInProgress))
        .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
        .output(|| stack(StackStatus::UpdateComplete))
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
    let v = wait_settled(&client, "s", far(), &|_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.status, "UPDATE_COMPLETE");
    assert_eq!(describe.num_calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_wait_stops_at_the_first_error_that_will_not_pass() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .http_status(403, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>"#.into()))
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
    let err = wait_settled(&client, "s", far(), &|_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("access denied"), "{err}");
    assert_eq!(describe.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_change_set_that_cannot_be_executed_is_deleted() {
    let events = mock!(Client::describe_stack_events)
        .then_output(|| DescribeStackEventsOutput::builder().build());
    let execute = mock!(Client::execute_change_set).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidChangeSetStatus</Code><Message>ChangeSet is in an invalid state</Message></Error></ErrorResponse>"#,
            ),
        )
    });
    let delete = mock!(Client::delete_change_set).then_output(|| {
        aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput::builder()
            .build()
    });
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&events, &execute, &delete]
    );
    let err = execute_and_follow(&client, "s", "artifact-x", far(), &|_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ExecuteChangeSet"), "{err}");
    assert_eq!(delete.num_calls(), 1, "the change set is deleted");
}

#[test]
fn a_nested_stacks_failure_is_explained_by_the_resource_that_failed_inside_it() {
    let e = |logical: &str, kind: &str, status: &str, reason: &str| super::Event {
        id: logical.into(),
        logical_id: logical.into(),
        physical_id: String::new(),
        resource_type: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        millis: 0,
    };
    let events = [
        e(
            "Functions",
            "AWS::CloudFormation::Stack",
            "UPDATE_FAILED",
            "Embedded stack arn:x was not successfully updated.",
        ),
        e(
            "Functions/Api",
            "AWS::Lambda::Function",
            "UPDATE_FAILED",
            "runtime retired",
        ),
    ];
    assert_eq!(
        super::first_failure(&events).as_deref(),
        Some("Functions/Api (AWS::Lambda::Function): runtime retired")
    );
    // With nothing known inside, the nested stack's own reason stands.
    assert_eq!(
        super::first_failure(&events[..1]).as_deref(),
        Some("Functions (AWS::CloudFormation::Stack): Embedded stack arn:x was not successfully updated.")
    );
}

/// Express mode as CloudFormation receives it (the local server does not
/// model it): `DeploymentConfig` with rollback explicitly on; standard mode
/// sends none; one file gives each environment its own.
#[tokio::test]
async fn express_mode_sends_a_deployment_config_with_rollback_on() {
    use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
    use aws_sdk_cloudformation::types::{ChangeSetType, DeploymentConfig, DeploymentConfigMode};
    use std::sync::{Arc, Mutex};
    let file = "[project]\nname = \"p\"\nenvironment = \"dev\"\n[infra]\nmode = \"express\"\n[environments.prod.infra]\nmode = \"standard\"\n";
    let mut sent: Vec<Option<DeploymentConfig>> = Vec::new();
    for environment in ["dev", "prod"] {
        let env = crate::config::Env {
            environment: Some(environment.into()),
            ..Default::default()
        };
        let path = std::path::Path::new("/p/artifact.toml");
        let settings = crate::config::Settings::parse(path, file, &env).unwrap();
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let create = mock!(Client::create_change_set)
            .match_requests(move |r| {
                *record.lock().unwrap() = Some(r.deployment_config().cloned());
                true
            })
            .then_output(|| CreateChangeSetOutput::builder().id("cs").build());
        let client = mock_client!(aws_sdk_cloudformation, [&create]);
        let req = super::changeset::ChangeSetRequest {
            name: "artifact-x",
            kind: ChangeSetType::Update,
            template_url: "https://b.s3.amazonaws.com/cfn/m.yaml",
            parameters: &[],
            nested: false,
        };
        super::changeset::send_create(&client, &settings.infra, req)
            .await
            .unwrap();
        assert_eq!(create.num_calls(), 1);
        sent.push(
            seen.lock()
                .unwrap()
                .take()
                .expect("CreateChangeSet was sent"),
        );
    }
    let express = sent[0].as_ref().expect("dev sends a DeploymentConfig");
    assert_eq!(express.mode(), Some(&DeploymentConfigMode::Express));
    assert_eq!(express.disable_rollback(), Some(false), "rollback stays on");
    assert_eq!(sent[1], None, "prod (standard) sends none");
}
