//! What can go wrong in deploy-frontend, each with what to do about it.

use std::path::PathBuf;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::aws::AwsFailure;
use crate::sync::SyncError;

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("stack {stack} does not exist")]
    NoStack { stack: String },
    #[error("stack {stack} has no value for output(s) {}", names.join(", "))]
    MissingOutputs { stack: String, names: Vec<String> },
    #[error("output {name} is in more than one nested stack, with other values: {}", stacks.join(", "))]
    AmbiguousOutput { name: String, stacks: Vec<String> },
    #[error("{file}: {message}")]
    Config {
        file: String,
        message: String,
        hint: String,
    },
    #[error("the frontend build {} does not exist", path.display())]
    NoDist { path: PathBuf },
    #[error("the frontend build {} is a file, not a folder", path.display())]
    DistIsAFile { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Aws(AwsFailure),
    #[error("{0}")]
    Stack(String),
    #[error("invalidation {id} was not Completed within the deadline")]
    InvalidationTimeout { id: String },
    #[error("distribution {id} was not Deployed within the deadline")]
    DistributionTimeout { id: String },
    #[error(transparent)]
    Locked(crate::aws::lock::LockError),
    #[error("deploy-frontend did not finish within --timeout {timeout}")]
    TimedOut { timeout: String },
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl FrontendError {
    /// The whole command outlasted `--timeout`.
    pub fn timed_out(timeout: std::time::Duration) -> FrontendError {
        FrontendError::TimedOut {
            timeout: crate::util::shown_duration(timeout),
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            FrontendError::NoStack { .. } => "run artifact deploy-infra first, or set frontend.stack_name".into(),
            FrontendError::MissingOutputs { .. } => {
                "add the outputs to the stack's template, or map other names under [frontend.outputs] in artifact.toml".into()
            }
            FrontendError::AmbiguousOutput { .. } => {
                "give the output a name of its own in one of the stacks (or re-export the one meant from the root stack)".into()
            }
            FrontendError::Config { hint, .. } => hint.clone(),
            FrontendError::NoDist { .. } => "build the frontend first (npm ci && npm run build), or pass --dist".into(),
            FrontendError::DistIsAFile { .. } => "pass the folder the build writes (e.g. --dist frontend/dist)".into(),
            FrontendError::Locked(e) => return e.hint(),
            FrontendError::TimedOut { .. } => {
                "check the endpoint and the network, then deploy again (uploads are content-addressed: what finished is not sent again), or raise --timeout".into()
            }
            FrontendError::DistributionTimeout { .. } => {
                "CloudFront is still deploying the distribution the stack changed (express mode does not wait for it); raise --timeout, or deploy without --wait".into()
            }
            FrontendError::InvalidationTimeout { .. } => {
                "the invalidation goes on in CloudFront; deploy without --wait, or raise --timeout".into()
            }
            FrontendError::Sync(e) => return e.hint(),
            FrontendError::Aws(f) => return f.hint(),
            FrontendError::Io { .. } | FrontendError::Stack(_) => return None,
        })
    }
}

pub(crate) fn aws_err<E>(operation: &'static str, target: &str, e: SdkError<E>) -> FrontendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    FrontendError::Aws(crate::aws::classify(operation, target, &e))
}

impl crate::output::Hint for FrontendError {
    fn hint(&self) -> Option<String> {
        FrontendError::hint(self)
    }
}
