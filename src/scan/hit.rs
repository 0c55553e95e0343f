//! What the scan finds: a [`Hit`] of a [`Kind`], its secret masked.

use serde::Serialize;

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
    StripeKey,
    GoogleApiKey,
    NpmToken,
    SendgridKey,
    Jwt,
    UrlPassword,
    EnvFile,
    Assignment,
}

impl Kind {
    /// The rule's name, as `[[scan.allow]] rule` takes it.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::AwsAccessKey => "aws-access-key",
            Kind::PrivateKey => "private-key",
            Kind::GithubToken => "github-token",
            Kind::GitlabToken => "gitlab-token",
            Kind::SlackToken => "slack-token",
            Kind::SlackWebhook => "slack-webhook",
            Kind::StripeKey => "stripe-key",
            Kind::GoogleApiKey => "google-api-key",
            Kind::NpmToken => "npm-token",
            Kind::SendgridKey => "sendgrid-key",
            Kind::Jwt => "jwt",
            Kind::UrlPassword => "url-password",
            Kind::EnvFile => "env-file",
            Kind::Assignment => "generic-secret",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::AwsAccessKey => "an AWS access key id with a secret key beside it",
            Kind::PrivateKey => "a private key",
            Kind::GithubToken => "a GitHub token",
            Kind::GitlabToken => "a GitLab token",
            Kind::SlackToken => "a Slack token",
            Kind::SlackWebhook => "a Slack webhook URL",
            Kind::StripeKey => "a live Stripe key",
            Kind::GoogleApiKey => "a Google API key",
            Kind::NpmToken => "an npm access token",
            Kind::SendgridKey => "a SendGrid API key",
            Kind::Jwt => "a signed JSON web token",
            Kind::UrlPassword => "a password inside a connection URL",
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

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn every_rule_has_the_name_allow_entries_take() {
        let kinds = [
            Kind::AwsAccessKey,
            Kind::PrivateKey,
            Kind::GithubToken,
            Kind::GitlabToken,
            Kind::SlackToken,
            Kind::SlackWebhook,
            Kind::StripeKey,
            Kind::GoogleApiKey,
            Kind::NpmToken,
            Kind::SendgridKey,
            Kind::Jwt,
            Kind::UrlPassword,
            Kind::EnvFile,
            Kind::Assignment,
        ];
        let names: Vec<&str> = kinds.iter().map(|k| k.rule()).collect();
        assert_eq!(names, crate::model::SCAN_RULES);
    }
}
