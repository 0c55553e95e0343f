//! What a policy is made for ([`PolicyCommand`], [`PolicyInputs`]) and the
//! IAM policy document it is ([`PolicyDocument`] of [`Statement`]s).

use std::collections::BTreeMap;

use serde::Serialize;

/// The commands a policy can be made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyCommand {
    Pack,
    Validate,
    DeployInfra,
    DeployFrontend,
    Sync,
    Rollback,
    History,
    Verify,
    ConfigJs,
}

impl PolicyCommand {
    pub const ALL: [PolicyCommand; 9] = [
        PolicyCommand::Pack,
        PolicyCommand::Validate,
        PolicyCommand::DeployInfra,
        PolicyCommand::DeployFrontend,
        PolicyCommand::Sync,
        PolicyCommand::Rollback,
        PolicyCommand::History,
        PolicyCommand::Verify,
        PolicyCommand::ConfigJs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyCommand::Pack => "pack",
            PolicyCommand::Validate => "validate",
            PolicyCommand::DeployInfra => "deploy-infra",
            PolicyCommand::DeployFrontend => "deploy-frontend",
            PolicyCommand::Sync => "sync",
            PolicyCommand::Rollback => "rollback",
            PolicyCommand::History => "history",
            PolicyCommand::Verify => "verify",
            PolicyCommand::ConfigJs => "config-js",
        }
    }
}

/// What a policy is made from beyond the project file.
#[derive(Debug, Clone)]
pub struct PolicyInputs {
    /// `aws`, `aws-cn`, `aws-us-gov`, or `${AWS::Partition}`.
    pub partition: String,
    /// A region, `*`, or `${AWS::Region}`.
    pub region: String,
    /// An account id, `*`, or `${AWS::AccountId}`.
    pub account: String,
    /// pack's shared cache (`--cache-url` or `[pack] cache_url`): bucket and prefix.
    pub cache: Option<(String, String)>,
    /// Where `sync` uploads: bucket and prefix.
    pub sync_to: Option<(String, String)>,
    /// The metrics namespace (`--metrics` or `[metrics] namespace`).
    pub metrics: Option<String>,
    /// The site bucket, when the templates name it (else any bucket, explained).
    pub site_bucket: Option<String>,
    /// The templates create nested stacks: outputs may be read from them.
    pub nested_stacks: bool,
}

/// A condition block: operator → key → values.
pub type Condition = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// One Allow statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: Condition,
    /// Why the resource is wider than one ARN (always set for `*`).
    #[serde(skip)]
    pub why: Option<String>,
}

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}
