//! `artifact deploy-infra`: templates and zips to S3, one change set per
//! deploy, every stack state handled, Lambda code updated only where it changed,
//! `stack-outputs.json`.
//!
//! Everything that can be checked without AWS is checked first (names, the
//! pack manifest, template sizes and syntax); then the deployment bucket's
//! region. Uploads use the sync engine, so unchanged templates and zips are not
//! sent. The stack's state decides the change set type (or a wait, a
//! replacement, or a refusal with a hint). When neither the templates, the
//! parameters nor the tags changed, no change set is created at all (AWS would
//! report it empty); an empty change set is also success. The change set name
//! is computed once and used for every call. Execution is followed in one
//! polling loop that prints new stack events and names the root cause of a
//! failure.

pub mod apply;
pub mod changeset;
mod error;
pub mod events;
pub mod layers;
pub mod local;
mod nested_changes;
pub mod observe;
pub mod plan;
mod record;
mod report;
pub mod stack;
#[cfg(test)]
mod tests;

pub use apply::deploy;
pub(crate) use error::aws_err;
pub use error::InfraError;
pub use events::{first_failure, Event};
pub use local::{template_url, TEMPLATES_PREFIX, ZIPS_PREFIX};
pub use observe::{describe, StackOutput, StackView};
pub use plan::{Difference, InfraPlan, StackStep};
pub use report::{ChangeRow, DeployOptions, InfraReport, Outcome, Uploads};
