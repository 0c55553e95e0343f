//! What both sides of a rollback share: the options the command line gives
//! and the errors, each with what to do.

use std::time::Duration;

use crate::cfn::InfraError;
use crate::lambda::LambdaError;
use crate::sync::SyncError;

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub to: Option<String>,
    pub steps: usize,
    pub dry_run: bool,
    pub timeout: Duration,
    pub commit: Option<String>,
    pub now_unix: u64,
    pub nonce: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("{message}")]
    NoTarget { message: String },
    #[error("deployment {id} cannot be restored: {} no longer in the deployment bucket", missing.join(", "))]
    Gone { id: String, missing: Vec<String> },
    #[error("stack {stack} does not exist: there is nothing to roll back")]
    NoStack { stack: String },
    #[error("stack {stack} is busy ({status})")]
    Busy { stack: String, status: String },
    #[error("the rollback's change set left stack {stack} in {status}")]
    Failed { stack: String, status: String },
    #[error(transparent)]
    Infra(#[from] InfraError),
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl RollbackError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RollbackError::NoTarget { .. } => {
                "artifact history lists the deployments a rollback can go to".into()
            }
            RollbackError::Gone { .. } => {
                "pick a newer deployment (artifact history), or raise [history] keep so older ones stay restorable".into()
            }
            RollbackError::NoStack { .. } => "deploy it first with artifact deploy-infra".into(),
            RollbackError::Busy { .. } => "wait for the running operation to end, then roll back".into(),
            RollbackError::Failed { .. } => {
                "see the stack's events in the CloudFormation console; the stack rolled itself back to where it was".into()
            }
            RollbackError::Infra(e) => return e.hint(),
            RollbackError::Lambda(e) => return e.hint(),
            RollbackError::Sync(e) => return e.hint(),
        })
    }
}

impl crate::output::Hint for RollbackError {
    fn hint(&self) -> Option<String> {
        RollbackError::hint(self)
    }
}
