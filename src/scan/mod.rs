//! The secret scan: what in a file's bytes looks like a credential. One pass
//! of a multi-pattern automaton finds the places worth a look (key prefixes,
//! PEM headers, token prefixes, names like `password`); each is then checked
//! exactly. Binary files (a NUL in the first 8 KiB) are skipped. Values the
//! AWS documentation uses as examples, and placeholders, are not findings.
//! [`check`] runs it over files, with allow entries and a cache of clean
//! contents.

mod check;
mod detect;
mod shapes;
mod tree;

use serde::Serialize;

pub use check::{check_files, Finding, ScanFile, ScanStats, Scanned, Scanner, SecretsFound};
pub use detect::scan_bytes;
pub use tree::scan_tree;

/// What kind of secret a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AwsAccessKey,
    PrivateKey,
    GithubToken,
    GitlabToken,
    SlackToken,
    SlackWebhook,
    EnvFile,
    Assignment,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::AwsAccessKey => "an AWS access key id with a secret key beside it",
            Kind::PrivateKey => "a private key",
            Kind::GithubToken => "a GitHub token",
            Kind::GitlabToken => "a GitLab token",
            Kind::SlackToken => "a Slack token",
            Kind::SlackWebhook => "a Slack webhook URL",
            Kind::EnvFile => "a .env file with values",
            Kind::Assignment => "a random-looking value assigned to a secret's name",
        }
    }
}

/// One finding in a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// 1-based.
    pub line: usize,
    pub kind: Kind,
    /// The secret with all but its first characters masked.
    pub masked: String,
}

/// `secret` with only its first 4 characters shown, the rest as `*` (at most 12).
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    let hidden = secret.chars().count().saturating_sub(4).min(12);
    format!("{shown}{}", "*".repeat(hidden))
}
