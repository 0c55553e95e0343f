//! The only place that builds AWS SDK clients.
//!
//! Configuration comes from the standard chain (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, the shared config and credentials files, container and
//! instance credentials) with `--region`, `--profile` and `--endpoint-url` on
//! top. With an endpoint override, S3 is addressed path-style, as local
//! servers expect. Every client counts the requests it sends, so commands can
//! report exactly what they cost. Credentials and signed URLs are never logged.

pub mod failure;

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
    /// Attempts per request, retries included (default [`MAX_ATTEMPTS`]).
    pub max_attempts: Option<u32>,
}

/// Attempts per request by default: the SDK's standard retries (exponential
/// backoff with jitter, up to 20 s apart) for throttling, 5xx, timeouts and
/// dropped connections, more patient than its default of three.
pub const MAX_ATTEMPTS: u32 = 6;
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer may take to start arriving once a request is sent. With
/// the retries, an endpoint that accepts connections and never answers fails
/// after at most about `MAX_ATTEMPTS` x 30 s plus the backoff between them.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

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
        let name = cfg
            .load::<Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".into());
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
    pub requests: RequestCounter,
}

/// An AWS setup problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS region is configured")]
    NoRegion,
    #[error("AWS_MAX_ATTEMPTS={value:?} is not a number of attempts")]
    BadMaxAttempts { value: String },
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
        }
    }
}

impl Clients {
    /// Loads the configuration chain and builds the clients.
    pub async fn load(args: &AwsArgs) -> Result<Clients, AwsError> {
        let attempts = args.max_attempts.unwrap_or(MAX_ATTEMPTS).clamp(1, 20);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
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
        if config.region().is_none() {
            return Err(AwsError::NoRegion);
        }
        Ok(Clients::from_config(config))
    }

    /// Builds the clients from a ready configuration.
    pub fn from_config(config: SdkConfig) -> Clients {
        let requests = RequestCounter::default();
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .interceptor(requests.clone())
            .build();
        let cfn = aws_sdk_cloudformation::config::Builder::from(&config)
            .interceptor(requests.clone())
            .build();
        let lambda = aws_sdk_lambda::config::Builder::from(&config)
            .interceptor(requests.clone())
            .build();
        let cloudfront = aws_sdk_cloudfront::config::Builder::from(&config)
            .interceptor(requests.clone())
            .build();
        Clients {
            cloudfront: aws_sdk_cloudfront::Client::from_conf(cloudfront),
            s3: aws_sdk_s3::Client::from_conf(s3),
            cfn: aws_sdk_cloudformation::Client::from_conf(cfn),
            lambda: aws_sdk_lambda::Client::from_conf(lambda),
            config,
            requests,
        }
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
