//! The only place that builds AWS SDK clients.
//!
//! Configuration comes from the standard chain (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, the shared config and credentials files, container and
//! instance credentials) with `--region`, `--profile` and `--endpoint-url` on
//! top. With an endpoint override, S3 is addressed path-style, as local
//! servers expect. Every client counts the requests it sends, so commands can
//! report exactly what they cost. Credentials and signed URLs are never logged.

pub mod failure;
pub mod lock;
pub mod log;
pub mod s3;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

pub use failure::{classify, AwsFailure};

/// AWS settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct AwsArgs {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL`, which the SDK reads itself: checked here first.
    pub env_endpoint_url: Option<String>,
    /// Credential variables set to what no credential is (names only).
    pub bad_credential_vars: Vec<&'static str>,
    /// Attempts per request, retries included (default [`MAX_ATTEMPTS`]).
    pub max_attempts: Option<u32>,
    /// The longest one operation may take, retries included (default
    /// [`OPERATION_TIMEOUT`]; a command's `--timeout` lowers it).
    pub operation_timeout: Option<Duration>,
}

/// Attempts per request by default: the SDK's standard retries (exponential
/// backoff with jitter, up to 20 s apart) for throttling, 5xx, timeouts and
/// dropped connections, more patient than its default of three.
pub const MAX_ATTEMPTS: u32 = 6;
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer may take to start arriving once a request is started
/// (its body sent included).
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one operation may take, its retries included: an endpoint that
/// accepts connections and never answers fails within a minute, naming the
/// operation and the endpoint, instead of after every attempt's read timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(55);

impl crate::output::Hint for AwsError {
    fn hint(&self) -> Option<String> {
        AwsError::hint(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_with_a_host_and_a_real_port() {
        for ok in [
            "http://127.0.0.1:5000",
            "https://s3.eu-west-1.amazonaws.com",
            "http://[::1]:4566/",
            "http://localhost:4566/prefix",
        ] {
            assert_eq!(endpoint_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "not a url",
            "ftp://127.0.0.1:5",
            "http://",
            "http://[::1",
            "http://host:0",
            "http://host:99999",
            "http://host:port",
            "http://user@",
            "http://a b",
        ] {
            assert!(endpoint_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn regions_and_credentials_are_checked_for_shape_only() {
        assert!(is_region_name("us-east-1"));
        assert!(is_region_name("us-gov-west-1"));
        assert!(!is_region_name("us east!"));
        assert!(!is_region_name("bad_region"));
        assert!(!is_region_name(""));
        assert!(is_credential_text("AKIAIOSFODNN7EXAMPLE"));
        assert!(is_credential_text(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY+="
        ));
        assert!(!is_credential_text(""));
        assert!(!is_credential_text("ab\ncd"));
        assert!(!is_credential_text("key "));
    }

    #[test]
    fn credential_variables_are_named_never_shown() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(*v))
            }
        };
        assert!(bad_credential_vars(env(&[])).is_empty());
        assert!(bad_credential_vars(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ]))
        .is_empty());
        // Empty is unset, as for the AWS CLI.
        assert!(bad_credential_vars(env(&[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_SESSION_TOKEN", "")
        ]))
        .is_empty());
        assert_eq!(
            bad_credential_vars(env(&[
                ("AWS_ACCESS_KEY_ID", "AKIA"),
                ("AWS_SECRET_ACCESS_KEY", "")
            ])),
            ["AWS_SECRET_ACCESS_KEY"]
        );
        assert_eq!(
            bad_credential_vars(env(&[
                ("AWS_ACCESS_KEY_ID", "AK\nIA"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_SESSION_TOKEN", "t t")
            ])),
            ["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"]
        );
    }
}

/// `AWS_MAX_ATTEMPTS` as the AWS CLI reads it: a whole number from 1 to 20.
pub fn parse_max_attempts(value: &str) -> Result<u32, AwsError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=20).contains(n))
        .ok_or_else(|| AwsError::BadMaxAttempts {
            value: value.to_string(),
        })
}

/// Requests sent, by `Service.Operation`, retries included.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestCounter {
    /// A copy of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Requests sent since `before` (a [`Self::snapshot`]), by operation.
    pub fn since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.snapshot()
            .into_iter()
            .map(|(k, v)| {
                let n = v - before.get(&k).copied().unwrap_or(0);
                (k, n)
            })
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

/// `Service.Operation` of the request being sent.
pub(crate) fn operation_name(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}.{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = operation_name(cfg);
        if let Ok(mut m) = self.0.lock() {
            *m.entry(name).or_default() += 1;
        }
        Ok(())
    }
}

/// The SDK configuration and the clients built from it.
#[derive(Debug, Clone)]
pub struct Clients {
    pub config: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub cfn: aws_sdk_cloudformation::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    /// Provenance signing only.
    pub kms: aws_sdk_kms::Client,
    /// Metrics only: two attempts, so a CloudWatch outage holds no deploy up.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub requests: RequestCounter,
}

/// An AWS setup problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS region is configured")]
    NoRegion,
    #[error("AWS_MAX_ATTEMPTS={value:?} is not a number of attempts")]
    BadMaxAttempts { value: String },
    #[error("{from} {value:?} is not an endpoint URL: {problem}")]
    BadEndpoint {
        from: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("{from} {value:?} is not an AWS region name")]
    BadRegion { from: &'static str, value: String },
    #[error("{} cannot be used as set: a key holds spaces, line breaks or other characters keys never have, or one of the key pair is missing", names.join(", "))]
    BadCredentials { names: Vec<&'static str> },
}

/// Whether `v` could be an access key id, secret key or session token:
/// non-empty, printable ASCII with no spaces. (Anything else would be sent in
/// a header and cannot be.)
pub fn is_credential_text(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())
}

/// The credential variables that cannot be meant as they are: holding
/// characters no key has, or one key of the pair set without the other.
/// Empty counts as unset, as the AWS CLI has it. `get` reads a variable.
pub fn bad_credential_vars(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<&'static str> {
    const VARS: [&str; 3] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ];
    let values: Vec<Option<std::ffi::OsString>> = VARS
        .iter()
        .map(|k| get(k).filter(|v| !v.is_empty()))
        .collect();
    let mut bad: Vec<&'static str> = VARS
        .iter()
        .zip(&values)
        .filter(|(_, v)| {
            v.as_ref()
                .is_some_and(|v| v.to_str().is_none_or(|v| !is_credential_text(v)))
        })
        .map(|(k, _)| *k)
        .collect();
    match (&values[0], &values[1]) {
        (Some(_), None) => bad.push(VARS[1]),
        (None, Some(_)) => bad.push(VARS[0]),
        _ => {}
    }
    bad
}

/// What is wrong with an endpoint URL, if anything: it must be
/// `http(s)://host[:port][/path]`.
pub fn endpoint_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some("it must start with http:// or https://");
    };
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("it holds spaces or characters a URL cannot");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => return Some("an IPv6 host needs its closing ]"),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host.contains('@') {
        return Some("it names no host");
    }
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |n| n == 0)) {
        return Some("its port is not a number from 1 to 65535");
    }
    None
}

/// Whether `r` has the shape of a region name (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`, or a local server's own).
pub fn is_region_name(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 50
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !r.starts_with('-')
        && !r.ends_with('-')
}

impl AwsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AwsError::NoRegion => {
                Some("pass --region, set AWS_REGION, or set a region in the AWS profile".into())
            }
            AwsError::BadMaxAttempts { .. } => {
                Some("set AWS_MAX_ATTEMPTS to a whole number from 1 to 20, or unset it".into())
            }
            AwsError::BadEndpoint { from, .. } => Some(format!(
                "give {from} as http(s)://host[:port], e.g. http://127.0.0.1:5000, or unset it to use AWS's own endpoints"
            )),
            AwsError::BadRegion { .. } => {
                Some("use a region name like us-east-1 (--region, AWS_REGION or the profile's region)".into())
            }
            AwsError::BadCredentials { .. } => Some(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together to the keys' exact text (no quotes, no trailing newline), unset both, or use --profile".into(),
            ),
        }
    }
}

/// What the SDK would take badly (some of it with a panic): an endpoint URL
/// that is not one, credential variables that cannot be sent.
fn check_args(args: &AwsArgs) -> Result<(), AwsError> {
    let endpoint = match (&args.endpoint_url, &args.env_endpoint_url) {
        (Some(e), _) => Some(("--endpoint-url", e)),
        (None, Some(e)) => Some(("AWS_ENDPOINT_URL", e)),
        _ => None,
    };
    if let Some((from, value)) = endpoint {
        if let Some(problem) = endpoint_problem(value) {
            return Err(AwsError::BadEndpoint {
                from,
                value: value.clone(),
                problem,
            });
        }
    }
    // With --profile the environment's keys are not used.
    if args.profile.is_none() && !args.bad_credential_vars.is_empty() {
        return Err(AwsError::BadCredentials {
            names: args.bad_credential_vars.clone(),
        });
    }
    Ok(())
}

/// `ARTIFACT_ROLE_SESSION_SECONDS`: the assumed roles' session length
/// (default: STS's, one hour); tests shorten it to see credentials renewed.
fn session_seconds() -> Option<u64> {
    std::env::var("ARTIFACT_ROLE_SESSION_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| (1..=43_200).contains(s))
}

impl Clients {
    /// Loads the configuration chain and builds the clients.
    pub async fn load(args: &AwsArgs) -> Result<Clients, AwsError> {
        check_args(args)?;
        let attempts = args.max_attempts.unwrap_or(MAX_ATTEMPTS).clamp(1, 20);
        let operation = args
            .operation_timeout
            .unwrap_or(OPERATION_TIMEOUT)
            .min(OPERATION_TIMEOUT)
            .max(Duration::from_secs(1));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT.min(operation))
                    .operation_timeout(operation)
                    .build(),
            );
        if let Some(r) = &args.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &args.profile {
            // As with the AWS CLI, --profile wins over keys in the environment;
            // a profile that does not exist is an error, not a fallback.
            let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(p)
                .build();
            loader = loader.profile_name(p).credentials_provider(credentials);
        }
        if let Some(e) = &args.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let config = loader.load().await;
        let Some(region) = config.region() else {
            return Err(AwsError::NoRegion);
        };
        failure::set_endpoint(match config.endpoint_url() {
            Some(url) => url.to_string(),
            None => format!("the AWS endpoints of {region}"),
        });
        if !is_region_name(region.as_ref()) {
            return Err(AwsError::BadRegion {
                from: if args.region.is_some() {
                    "--region"
                } else {
                    "the configured region"
                },
                value: region.to_string(),
            });
        }
        Ok(Clients::from_config(config))
    }

    /// Builds the clients from a ready configuration.
    pub fn from_config(config: SdkConfig) -> Clients {
        let requests = RequestCounter::default();
        let log = log::RequestLog::from_env();
        macro_rules! counted {
            ($builder:expr) => {{
                let b = $builder.interceptor(requests.clone());
                match &log {
                    Some(l) => b.interceptor(l.clone()).build(),
                    None => b.build(),
                }
            }};
        }
        let s3 = counted!(aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some()));
        let cfn = counted!(aws_sdk_cloudformation::config::Builder::from(&config));
        let lambda = counted!(aws_sdk_lambda::config::Builder::from(&config));
        let cloudfront = counted!(aws_sdk_cloudfront::config::Builder::from(&config));
        let kms = counted!(aws_sdk_kms::config::Builder::from(&config));
        let cloudwatch = counted!(aws_sdk_cloudwatch::config::Builder::from(&config)
            .retry_config(RetryConfig::standard().with_max_attempts(2)));
        Clients {
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch),
            cloudfront: aws_sdk_cloudfront::Client::from_conf(cloudfront),
            kms: aws_sdk_kms::Client::from_conf(kms),
            s3: aws_sdk_s3::Client::from_conf(s3),
            cfn: aws_sdk_cloudformation::Client::from_conf(cfn),
            lambda: aws_sdk_lambda::Client::from_conf(lambda),
            config,
            requests,
        }
    }

    /// The same clients acting as `role_arn` (STS AssumeRole with these
    /// clients' credentials, in their region). The SDK's identity cache asks
    /// for new credentials shortly before the old ones expire, so a deploy
    /// longer than the role's session never fails on an expired token.
    pub async fn assuming(
        &self,
        role_arn: &str,
        external_id: Option<&str>,
        session: &str,
    ) -> Clients {
        let mut b = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(session)
            .configure(&self.config);
        if let Some(id) = external_id {
            b = b.external_id(id);
        }
        if let Some(seconds) = session_seconds() {
            b = b.session_length(Duration::from_secs(seconds));
        }
        let provider = b.build().await;
        let config = self
            .config
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
        Clients::from_config(config)
    }

    /// The account the credentials belong to (STS GetCallerIdentity, once,
    /// counted and logged as every request).
    pub async fn caller_account(&self) -> Result<String, AwsFailure> {
        let sts =
            aws_sdk_sts::config::Builder::from(&self.config).interceptor(self.requests.clone());
        let sts = match log::RequestLog::from_env() {
            Some(l) => sts.interceptor(l).build(),
            None => sts.build(),
        };
        let out = aws_sdk_sts::Client::from_conf(sts)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("GetCallerIdentity", "", &e))?;
        out.account()
            .map(str::to_string)
            .ok_or_else(|| AwsFailure::Unexpected {
                operation: "GetCallerIdentity",
                target: String::new(),
                status: None,
                first_line: "no Account in the answer".into(),
            })
    }

    /// The configured region.
    pub fn region(&self) -> &str {
        self.config
            .region()
            .map(|r| r.as_ref())
            .unwrap_or("us-east-1")
    }

    /// The endpoint override, if any (tests and local servers).
    pub fn endpoint_url(&self) -> Option<&str> {
        self.config.endpoint_url()
    }
}
