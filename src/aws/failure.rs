//! One failure type for every AWS call: what went wrong, in one line, with a
//! hint. The SDK's own error structures never reach the user; [`classify`]
//! turns each into one of a few kinds a person can act on.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsFailure {
    #[error("{operation}: no AWS credentials were found ({detail})")]
    NoCredentials {
        operation: &'static str,
        detail: String,
    },
    #[error("{operation}{}: the AWS credentials were refused ({code}: {message})", on(.target))]
    BadCredentials {
        operation: &'static str,
        target: String,
        code: String,
        message: String,
    },
    #[error("{operation}: could not reach {endpoint} ({detail})")]
    Unreachable {
        operation: &'static str,
        endpoint: String,
        detail: String,
    },
    #[error("{operation}{}: access denied ({message})", on(.target))]
    AccessDenied {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error("{operation}{}: not found ({code}{})", on(.target), colon(.message))]
    NotFound {
        operation: &'static str,
        target: String,
        code: String,
        message: String,
    },
    #[error("{operation}{}: throttled by AWS ({code}), still after the SDK's retries", on(.target))]
    Throttled {
        operation: &'static str,
        target: String,
        code: String,
    },
    #[error("{operation}{} failed: HTTP {status} {code}{}", on(.target), colon(.message))]
    Service {
        operation: &'static str,
        target: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{operation}{}: the answer was cut off ({detail})", on(.target))]
    Interrupted {
        operation: &'static str,
        target: String,
        detail: String,
    },
    #[error("{operation}{}: unexpected answer{}: {first_line}", on(.target), status_text(*.status))]
    Unexpected {
        operation: &'static str,
        target: String,
        status: Option<u16>,
        first_line: String,
    },
}

fn on(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(" on {target}")
    }
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

const BAD_CREDENTIALS: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "TokenRefreshRequired",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "Forbidden",
    "UnauthorizedOperation",
    "AuthorizationError",
];
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "PriorRequestNotComplete",
];
const NOT_FOUND: &[&str] = &[
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "ResourceNotFoundException",
    "NoSuchDistribution",
    "NoSuchInvalidation",
];

/// What [`classify`] reads of an SDK error: kept apart so the decision is a
/// pure function of literal values (see the tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The transport failed before any answer (refused, reset, DNS, timeout).
    pub no_answer: bool,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub body: Option<String>,
    /// The innermost cause's text.
    pub detail: String,
    /// The whole chain's text, for the credential chain's own errors.
    pub chain: String,
}

/// The endpoint the clients talk to, for messages (set once they are built).
static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Remembers the endpoint requests go to (the first clients built say it).
pub(super) fn set_endpoint(label: String) {
    let _ = ENDPOINT.set(label);
}

/// The endpoint requests go to: the override, or the region's AWS endpoints.
pub fn endpoint_label() -> String {
    ENDPOINT
        .get()
        .cloned()
        .unwrap_or_else(|| "the AWS endpoint".into())
}

/// Classifies an SDK error from `operation` on `target` (a bucket, key, stack…).
pub fn classify<E>(operation: &'static str, target: &str, err: &SdkError<E, Response>) -> AwsFailure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    decide(operation, target, observe(err))
}

/// Reads an SDK error into plain values.
pub fn observe<E>(err: &SdkError<E, Response>) -> Observed
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let raw = err.raw_response();
    let mut cause: &dyn StdError = err;
    let mut chain = err.to_string();
    while let Some(next) = cause.source() {
        chain.push_str(": ");
        chain.push_str(&next.to_string());
        cause = next;
    }
    Observed {
        no_answer: matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
        ),
        status: raw.map(|r| r.status().as_u16()),
        code: err.code().map(str::to_string),
        message: err.message().map(str::to_string),
        body: raw
            .and_then(|r| r.body().bytes())
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned()),
        detail: cause.to_string(),
        chain,
    }
}

/// The decision, on plain values.
pub fn decide(operation: &'static str, target: &str, o: Observed) -> AwsFailure {
    let target = target.to_string();
    let lower = o.chain.to_ascii_lowercase();
    if lower.contains("no credentials")
        || lower.contains("credentials provider")
        || lower.contains("credential provider was not enabled")
        || lower.contains("failed to load credentials")
    {
        return AwsFailure::NoCredentials {
            operation,
            detail: o.detail,
        };
    }
    if o.no_answer {
        let detail = if lower.contains("timeout") || lower.contains("timed out") {
            format!("no answer in time: {}", o.detail)
        } else {
            o.detail
        };
        return AwsFailure::Unreachable {
            operation,
            endpoint: endpoint_label(),
            detail,
        };
    }
    let code = o.code.clone().unwrap_or_default();
    let message = o.message.clone().unwrap_or_default();
    let is = |list: &[&str]| list.contains(&code.as_str());
    match o.status {
        _ if is(BAD_CREDENTIALS) => AwsFailure::BadCredentials {
            operation,
            target,
            code,
            message,
        },
        _ if is(ACCESS_DENIED) => AwsFailure::AccessDenied {
            operation,
            target,
            message: if message.is_empty() { code } else { message },
        },
        _ if is(THROTTLED) || o.status == Some(429) => AwsFailure::Throttled {
            operation,
            target,
            code: if code.is_empty() {
                "HTTP 429".into()
            } else {
                code
            },
        },
        _ if is(NOT_FOUND) => AwsFailure::NotFound {
            operation,
            target,
            code,
            message,
        },
        Some(403) if code.is_empty() => AwsFailure::AccessDenied {
            operation,
            target,
            message: "HTTP 403".into(),
        },
        Some(404) if code.is_empty() => AwsFailure::NotFound {
            operation,
            target,
            code: "HTTP 404".into(),
            message,
        },
        Some(status) if !code.is_empty() => AwsFailure::Service {
            operation,
            target,
            status,
            code,
            message,
        },
        status => AwsFailure::Unexpected {
            operation,
            target,
            status,
            first_line: first_line(o.body.as_deref().unwrap_or(""))
                .unwrap_or_else(|| one_line(&o.detail)),
        },
    }
}

/// The first line of text in a body, HTML tags removed, at most 160 characters.
pub fn first_line(body: &str) -> Option<String> {
    let mut text = String::with_capacity(body.len().min(4096));
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push('\n');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("<!"))
        .map(one_line)
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// The IAM action behind an operation, for "grant the role …" hints.
pub fn iam_action(operation: &str) -> String {
    let s3 = |a: &str| format!("s3:{a}");
    match operation {
        "ListObjectsV2" => s3("ListBucket"),
        "HeadObject" | "GetObject" => s3("GetObject"),
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            s3("PutObject")
        }
        "AbortMultipartUpload" => s3("AbortMultipartUpload"),
        "ListMultipartUploads" => s3("ListBucketMultipartUploads"),
        "CopyObject" => "s3:GetObject and s3:PutObject".into(),
        "DeleteObjects" | "DeleteObject" => s3("DeleteObject"),
        "GetBucketLocation" => s3("GetBucketLocation"),
        "GetFunctionConfiguration" | "UpdateFunctionCode" => format!("lambda:{operation}"),
        "CreateInvalidation" | "GetInvalidation" => format!("cloudfront:{operation}"),
        op => format!("cloudformation:{op}"),
    }
}

impl AwsFailure {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            AwsFailure::NoCredentials { .. } => "set AWS_PROFILE (or --profile) to a profile that exists, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is attached (CodeBuild provides one)".into(),
            AwsFailure::BadCredentials { .. } => "the credentials are expired or wrong: refresh them (aws sso login, a new session token) or check AWS_PROFILE".into(),
            AwsFailure::Unreachable { .. } => "check --endpoint-url / AWS_ENDPOINT_URL, --region and the network".into(),
            AwsFailure::AccessDenied { operation, target, .. } => format!(
                "grant the role {}{}",
                iam_action(operation),
                if target.is_empty() { String::new() } else { format!(" on {target}") }
            ),
            AwsFailure::NotFound { .. } => "check the name and --region".into(),
            AwsFailure::Throttled { .. } => "AWS is limiting the request rate: run again later, or lower [sync] concurrency in artifact.toml".into(),
            AwsFailure::Service { status, .. } if *status >= 500 => "AWS had an internal error: run the command again (it picks up where this run stopped)".into(),
            AwsFailure::Service { .. } => return None,
            AwsFailure::Interrupted { .. } => "the connection broke while reading the answer: run the command again".into(),
            AwsFailure::Unexpected { .. } => "the endpoint did not answer like AWS: check --endpoint-url / AWS_ENDPOINT_URL and any proxy between; run again if it was a passing fault".into(),
        })
    }

    /// Whether the same call may well succeed a moment later: throttling,
    /// a 5xx, no answer, a garbled or cut answer. A wait keeps polling
    /// through these until its deadline.
    /// A short name for a passing fault, to count repeats of it: the
    /// operation and what went wrong (`DescribeStacks: HTTP 500`).
    pub fn fault_label(&self) -> String {
        match self {
            AwsFailure::Throttled { operation, .. } => format!("{operation}: throttled"),
            AwsFailure::Unreachable { operation, .. } => format!("{operation}: no answer"),
            AwsFailure::Interrupted { operation, .. } => format!("{operation}: answer cut off"),
            AwsFailure::Service {
                operation, status, ..
            } => format!("{operation}: HTTP {status}"),
            AwsFailure::Unexpected {
                operation,
                status: Some(s),
                ..
            } => format!("{operation}: HTTP {s}"),
            other => other.to_string(),
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            AwsFailure::Throttled { .. }
            | AwsFailure::Unreachable { .. }
            | AwsFailure::Interrupted { .. }
            | AwsFailure::Unexpected { .. } => true,
            AwsFailure::Service { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl crate::output::Hint for AwsFailure {
    fn hint(&self) -> Option<String> {
        AwsFailure::hint(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, code: Option<&str>, message: Option<&str>, body: &str) -> Observed {
        Observed {
            status: Some(status),
            code: code.map(str::to_string),
            message: message.map(str::to_string),
            body: Some(body.to_string()),
            detail: "service error".into(),
            chain: "service error".into(),
            ..Observed::default()
        }
    }

    #[test]
    fn an_html_500_names_status_and_first_line_of_text() {
        let body = "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n<body><h1>Oops</h1></body></html>";
        let f = decide("DescribeStacks", "my-stack", answer(500, None, None, body));
        assert_eq!(
            f.to_string(),
            "DescribeStacks on my-stack: unexpected answer (HTTP 500): 500 Internal Server Error"
        );
        assert!(f.hint().unwrap().contains("--endpoint-url"));
    }

    #[test]
    fn codes_are_sorted_into_kinds() {
        let kind = |status, code: &str| match decide(
            "PutObject",
            "b/k",
            answer(status, Some(code), Some("m"), ""),
        ) {
            AwsFailure::BadCredentials { .. } => "credentials",
            AwsFailure::AccessDenied { .. } => "denied",
            AwsFailure::Throttled { .. } => "throttled",
            AwsFailure::NotFound { .. } => "not found",
            AwsFailure::Service { .. } => "service",
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(400, "ExpiredToken"), "credentials");
        assert_eq!(kind(403, "ExpiredTokenException"), "credentials");
        assert_eq!(kind(403, "SignatureDoesNotMatch"), "credentials");
        assert_eq!(kind(403, "AccessDenied"), "denied");
        assert_eq!(kind(400, "Throttling"), "throttled");
        assert_eq!(kind(503, "SlowDown"), "throttled");
        assert_eq!(kind(404, "NoSuchBucket"), "not found");
        assert_eq!(kind(400, "ValidationError"), "service");
    }

    #[test]
    fn a_head_403_without_a_body_is_access_denied_with_the_iam_action() {
        let f = decide("HeadObject", "site/index.html", answer(403, None, None, ""));
        assert_eq!(
            f.to_string(),
            "HeadObject on site/index.html: access denied (HTTP 403)"
        );
        assert_eq!(
            f.hint().unwrap(),
            "grant the role s3:GetObject on site/index.html"
        );
    }

    #[test]
    fn a_refused_connection_is_unreachable() {
        let o = Observed {
            no_answer: true,
            detail: "Connection refused (os error 111)".into(),
            chain: "dispatch failure: io error: Connection refused (os error 111)".into(),
            ..Observed::default()
        };
        let f = decide("ListObjectsV2", "b", o);
        assert_eq!(
            f.to_string(),
            "ListObjectsV2: could not reach the AWS endpoint (Connection refused (os error 111))"
        );
    }

    #[test]
    fn missing_credentials_are_named_before_anything_else() {
        let o = Observed {
            no_answer: true,
            detail: "the credential provider was not enabled".into(),
            chain: "dispatch failure: other: the credential provider was not enabled".into(),
            ..Observed::default()
        };
        assert!(matches!(
            decide("GetObject", "b/k", o),
            AwsFailure::NoCredentials { .. }
        ));
    }

    #[test]
    fn a_5xx_with_a_code_says_run_again() {
        let f = decide(
            "CreateChangeSet",
            "s",
            answer(500, Some("InternalFailure"), None, ""),
        );
        assert_eq!(
            f.to_string(),
            "CreateChangeSet on s failed: HTTP 500 InternalFailure"
        );
        assert!(f.hint().unwrap().contains("run the command again"));
    }

    #[test]
    fn waits_poll_through_transient_failures_only() {
        let transient = |status, code: Option<&str>| {
            decide("DescribeStacks", "s", answer(status, code, None, "")).is_transient()
        };
        assert!(transient(500, Some("InternalFailure")));
        assert!(transient(400, Some("Throttling")));
        assert!(transient(502, None));
        assert!(!transient(400, Some("ValidationError")));
        assert!(!transient(403, Some("AccessDenied")));
        assert!(!transient(403, Some("ExpiredToken")));
    }

    #[test]
    fn first_lines_are_short_and_flat() {
        assert_eq!(
            first_line("  \n\n plain text\nmore").as_deref(),
            Some("plain text")
        );
        assert_eq!(first_line("").as_deref(), None);
        let long = "x ".repeat(400);
        assert!(first_line(&long).unwrap().chars().count() <= 161);
    }
}
