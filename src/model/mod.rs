//! The crate's shared vocabulary: small value types that several layers speak
//! (config resolves them, pack, cfn, sync and policy use them). Nothing here
//! does I/O or knows about commands; it imports only `names`.

pub mod bytecode;
pub mod runtime;
pub mod s3url;
pub mod slim;

pub use bytecode::{Bytecode, BytecodeMode};
pub use runtime::{Arch, Runtime, Target};
pub use slim::SlimKind;

/// The secret scan's rules, by the names `[[scan.allow]] rule` takes.
pub const SCAN_RULES: [&str; 14] = [
    "aws-access-key",
    "private-key",
    "github-token",
    "gitlab-token",
    "slack-token",
    "slack-webhook",
    "stripe-key",
    "google-api-key",
    "npm-token",
    "sendgrid-key",
    "jwt",
    "url-password",
    "env-file",
    "generic-secret",
];
pub use s3url::{S3Url, S3UrlError};
