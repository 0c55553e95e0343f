//! Lambda code updates, only where the code changed.
//!
//! For each function, in parallel: compare the zip's `CodeSha256` (from the
//! pack manifest) with the deployed one; when they differ, wait until the
//! function is ready, update its code from the zip in S3 (retrying
//! `ResourceConflictException`), wait until the update has finished, and check
//! that Lambda now reports the zip's hash. It never creates functions: the
//! stack does.

use std::time::{Duration, Instant};

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationError;
use aws_sdk_lambda::operation::update_function_code::UpdateFunctionCodeError;
use aws_sdk_lambda::types::{LastUpdateStatus, State};
use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::AwsFailure;
use crate::poll::{Backoff, Poller};

/// One function whose code should match a zip in S3.
#[derive(Debug, Clone)]
pub struct CodeTarget {
    /// The key under `[functions]`.
    pub function: String,
    pub deployed_name: String,
    pub bucket: String,
    pub key: String,
    /// base64(SHA-256(zip)).
    pub code_sha256: String,
}

/// What happens (or happened) to one function's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeAction {
    #[serde(rename = "updated")]
    Updated,
    #[serde(rename = "unchanged")]
    Unchanged,
    /// `--dry-run`: the deployed CodeSha256 differs from the zip's.
    #[serde(rename = "would update")]
    WouldUpdate,
    /// `--dry-run`: the function does not exist yet; the stack creates it.
    #[serde(rename = "created by the stack")]
    CreatedByStack,
}

impl std::fmt::Display for CodeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodeAction::Updated => "updated",
            CodeAction::Unchanged => "unchanged",
            CodeAction::WouldUpdate => "would update",
            CodeAction::CreatedByStack => "created by the stack",
        })
    }
}

/// What happened to one function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeResult {
    pub function: String,
    pub deployed_name: String,
    pub action: CodeAction,
    pub code_sha256: String,
}

/// The decision for one function, from the CodeSha256 Lambda reports
/// (`None`: no such function yet).
pub fn plan_code(target: &CodeTarget, deployed: Option<&str>) -> CodeResult {
    CodeResult {
        function: target.function.clone(),
        deployed_name: target.deployed_name.clone(),
        action: match deployed {
            None => CodeAction::CreatedByStack,
            Some(sha) if sha == target.code_sha256 => CodeAction::Unchanged,
            Some(_) => CodeAction::WouldUpdate,
        },
        code_sha256: target.code_sha256.clone(),
    }
}

/// The CodeSha256 of each target's function, `None` where it does not exist.
pub async fn observe_code(
    client: &aws_sdk_lambda::Client,
    targets: &[CodeTarget],
) -> Result<Vec<Option<String>>, LambdaError> {
    let results: Vec<Result<Option<String>, LambdaError>> = stream::iter(targets)
        .map(|t| async move {
            match client
                .get_function_configuration()
                .function_name(&t.deployed_name)
                .send()
                .await
            {
                Ok(c) => Ok(Some(c.code_sha256().unwrap_or_default().to_string())),
                Err(e) => match get_err(&t.deployed_name, e) {
                    LambdaError::Missing { .. } => Ok(None),
                    other => Err(other),
                },
            }
        })
        .buffered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("Lambda function {name} does not exist")]
    Missing { name: String },
    #[error("{failure}")]
    Call { name: String, failure: AwsFailure },
    #[error("Lambda function {name}: the code update failed: {reason}")]
    UpdateFailed { name: String, reason: String },
    #[error("Lambda function {name} is in state Failed: {reason}")]
    FunctionFailed { name: String, reason: String },
    #[error("Lambda function {name} was still busy when the deadline passed")]
    Timeout { name: String },
    #[error(
        "Lambda function {name} reports CodeSha256 {got} after the update, but the zip's is {want}"
    )]
    HashMismatch {
        name: String,
        got: String,
        want: String,
    },
}

impl LambdaError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            LambdaError::Missing { .. } => "the stack must create it: check its FunctionName in the templates against {project}-{environment}-{function}, or remove the function from artifact.toml".into(),
            LambdaError::UpdateFailed { .. } | LambdaError::FunctionFailed { .. } => {
                "see the function's LastUpdateStatusReason in the Lambda console; fix the code or its configuration and deploy again".into()
            }
            LambdaError::Timeout { .. } => "raise --timeout, or check the function in the Lambda console".into(),
            LambdaError::HashMismatch { .. } => "the zip in S3 is not the one packed: run artifact pack and deploy again".into(),
            LambdaError::Call { failure, .. } => return failure.hint(),
        })
    }
}

fn get_err(name: &str, e: SdkError<GetFunctionConfigurationError>) -> LambdaError {
    if matches!(
        e.as_service_error(),
        Some(GetFunctionConfigurationError::ResourceNotFoundException(_))
    ) {
        return LambdaError::Missing {
            name: name.to_string(),
        };
    }
    call_err(name, "GetFunctionConfiguration", e)
}

pub(crate) fn call_err<E>(name: &str, operation: &'static str, e: SdkError<E>) -> LambdaError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if e.code() == Some("ResourceNotFoundException") {
        return LambdaError::Missing {
            name: name.to_string(),
        };
    }
    LambdaError::Call {
        name: name.to_string(),
        failure: crate::aws::classify(operation, name, &e),
    }
}

/// How long to wait between polls, and for how long at most.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub first_poll: Duration,
    pub max_poll: Duration,
    pub deadline: Instant,
}

impl Pacing {
    pub fn new(timeout: Duration) -> Pacing {
        Pacing {
            first_poll: Backoff::LAMBDA.first,
            max_poll: Backoff::LAMBDA.max,
            deadline: crate::poll::deadline(Instant::now(), timeout),
        }
    }

    fn poller(&self) -> Poller {
        Poller::new(
            Backoff {
                first: self.first_poll,
                max: self.max_poll,
                grow_percent: 200,
            },
            self.deadline,
        )
    }
}

/// Brings every target's code up to date.
pub async fn update_code(
    client: &aws_sdk_lambda::Client,
    targets: &[CodeTarget],
    pacing: Pacing,
) -> Result<Vec<CodeResult>, LambdaError> {
    let results: Vec<Result<CodeResult, LambdaError>> = stream::iter(targets)
        .map(|t| update_one(client, t, pacing))
        .buffered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn update_one(
    client: &aws_sdk_lambda::Client,
    t: &CodeTarget,
    pacing: Pacing,
) -> Result<CodeResult, LambdaError> {
    let name = &t.deployed_name;
    let config = client
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| get_err(name, e))?;
    let result = |action: CodeAction| CodeResult {
        function: t.function.clone(),
        deployed_name: name.clone(),
        action,
        code_sha256: t.code_sha256.clone(),
    };
    if config.code_sha256() == Some(t.code_sha256.as_str()) {
        return Ok(result(CodeAction::Unchanged));
    }
    if !is_ready(config.state(), config.last_update_status()) {
        wait_ready(client, name, pacing).await?;
    }
    let mut poll = pacing.poller();
    loop {
        match client
            .update_function_code()
            .function_name(name)
            .s3_bucket(&t.bucket)
            .s3_key(&t.key)
            .send()
            .await
        {
            Ok(_) => break,
            // Another update (or a configuration change) is still running: wait and retry.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateFunctionCodeError::ResourceConflictException(_))
                ) || e.code() == Some("ResourceConflictException") =>
            {
                poll.wait()
                    .await
                    .map_err(|_| LambdaError::Timeout { name: name.clone() })?;
            }
            Err(e) => return Err(call_err(name, "UpdateFunctionCode", e)),
        }
    }
    let sha = wait_ready(client, name, pacing).await?;
    if sha != t.code_sha256 {
        return Err(LambdaError::HashMismatch {
            name: name.clone(),
            got: sha,
            want: t.code_sha256.clone(),
        });
    }
    Ok(result(CodeAction::Updated))
}

fn is_ready(state: Option<&State>, last: Option<&LastUpdateStatus>) -> bool {
    !matches!(state, Some(State::Pending)) && !matches!(last, Some(LastUpdateStatus::InProgress))
}

/// Polls until the function is neither pending nor updating; returns its CodeSha256.
async fn wait_ready(
    client: &aws_sdk_lambda::Client,
    name: &str,
    pacing: Pacing,
) -> Result<String, LambdaError> {
    let mut poll = pacing.poller();
    loop {
        let c = match client
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| get_err(name, e))
        {
            Ok(c) => c,
            Err(LambdaError::Call { failure, .. }) if failure.is_transient() => {
                poll.wait_after_fault()
                    .await
                    .map_err(|_| LambdaError::Timeout {
                        name: name.to_string(),
                    })?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if matches!(c.state(), Some(State::Failed)) {
            return Err(LambdaError::FunctionFailed {
                name: name.to_string(),
                reason: c.state_reason().unwrap_or("no reason given").to_string(),
            });
        }
        if matches!(c.last_update_status(), Some(LastUpdateStatus::Failed)) {
            return Err(LambdaError::UpdateFailed {
                name: name.to_string(),
                reason: c
                    .last_update_status_reason()
                    .unwrap_or("no reason given")
                    .to_string(),
            });
        }
        if is_ready(c.state(), c.last_update_status()) {
            return Ok(c.code_sha256().unwrap_or_default().to_string());
        }
        poll.wait().await.map_err(|_| LambdaError::Timeout {
            name: name.to_string(),
        })?;
    }
}

impl crate::output::Hint for LambdaError {
    fn hint(&self) -> Option<String> {
        LambdaError::hint(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
    use aws_sdk_lambda::operation::update_function_code::UpdateFunctionCodeOutput;
    use aws_sdk_lambda::types::error::ResourceConflictException;
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn target() -> CodeTarget {
        CodeTarget {
            function: "api-handler".into(),
            deployed_name: "p-dev-api-handler".into(),
            bucket: "b".into(),
            key: "lambda/api-handler.zip".into(),
            code_sha256: "NEW=".into(),
        }
    }

    fn fast() -> Pacing {
        Pacing {
            first_poll: Duration::from_millis(1),
            max_poll: Duration::from_millis(2),
            deadline: Instant::now() + Duration::from_secs(5),
        }
    }

    fn config(sha: &str, last: LastUpdateStatus) -> GetFunctionConfigurationOutput {
        GetFunctionConfigurationOutput::builder()
            .code_sha256(sha)
            .state(State::Active)
            .last_update_status(last)
            .build()
    }

    #[tokio::test]
    async fn waits_out_an_update_in_progress_and_retries_conflicts() {
        let get = mock!(Client::get_function_configuration)
            .sequence()
            .output(|| config("OLD=", LastUpdateStatus::InProgress))
            .output(|| config("OLD=", LastUpdateStatus::InProgress))
            .output(|| config("OLD=", LastUpdateStatus::Successful))
            .output(|| config("NEW=", LastUpdateStatus::InProgress))
            .output(|| config("NEW=", LastUpdateStatus::Successful))
            .build();
        let update = mock!(Client::update_function_code)
            .sequence()
            .error(|| {
                UpdateFunctionCodeError::ResourceConflictException(
                    ResourceConflictException::builder()
                        .message("An update is in progress")
                        .build(),
                )
            })
            .times(2)
            .output(|| {
                UpdateFunctionCodeOutput::builder()
                    .code_sha256("NEW=")
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&get, &update]);
        let r = update_code(&client, &[target()], fast()).await.unwrap();
        assert_eq!(r[0].action, CodeAction::Updated);
        assert_eq!(update.num_calls(), 3);
        assert_eq!(get.num_calls(), 5);
    }

    #[tokio::test]
    async fn a_failed_update_reports_its_reason() {
        let get = mock!(Client::get_function_configuration)
            .sequence()
            .output(|| config("OLD=", LastUpdateStatus::Successful))
            .output(|| {
                GetFunctionConfigurationOutput::builder()
                    .code_sha256("NEW=")
                    .state(State::Active)
                    .last_update_status(LastUpdateStatus::Failed)
                    .last_update_status_reason("Unzipped size must be smaller than 262144000 bytes")
                    .build()
            })
            .build();
        let update = mock!(Client::update_function_code)
            .then_output(|| UpdateFunctionCodeOutput::builder().build());
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&get, &update]);
        let err = update_code(&client, &[target()], fast()).await.unwrap_err();
        assert!(
            matches!(&err, LambdaError::UpdateFailed { reason, .. } if reason.contains("262144000")),
            "{err}"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn code_is_planned_from_the_deployed_hash() {
        let t = target();
        assert_eq!(plan_code(&t, Some("NEW=")).action, CodeAction::Unchanged);
        assert_eq!(plan_code(&t, Some("OLD=")).action, CodeAction::WouldUpdate);
        assert_eq!(plan_code(&t, None).action, CodeAction::CreatedByStack);
        let json = serde_json::to_string(&CodeAction::WouldUpdate).unwrap();
        assert_eq!(json, "\"would update\"");
    }

    #[tokio::test]
    async fn same_hash_means_no_update_call() {
        let get = mock!(Client::get_function_configuration)
            .then_output(|| config("NEW=", LastUpdateStatus::Successful));
        let update = mock!(Client::update_function_code)
            .then_output(|| UpdateFunctionCodeOutput::builder().build());
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&get, &update]);
        let r = update_code(&client, &[target()], fast()).await.unwrap();
        assert_eq!(r[0].action, CodeAction::Unchanged);
        assert_eq!(update.num_calls(), 0);
    }
}
