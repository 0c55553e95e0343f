//! Every AWS naming rule the tool checks, in one place.
//!
//! Names are checked before any call is made, so that a bad name fails the
//! build with a message naming it rather than half-way through a deploy.
//! This module only checks and composes names; it never talks to AWS.

use std::fmt;

/// Lambda function names: 1 to 64 characters of `[a-zA-Z0-9-_]`.
pub const LAMBDA_FUNCTION_NAME_MAX: usize = 64;

/// A name that breaks one of AWS's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// What kind of name this is ("Lambda function name", "project name", ...).
    pub kind: &'static str,
    /// The offending name, as composed.
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} `{}`: {}", self.kind, self.name, self.problem)
    }
}

impl std::error::Error for NameError {}

/// The name a function is deployed under unless `[naming] function` or its
/// own `name` says otherwise.
pub const DEFAULT_FUNCTION_PATTERN: &str = "{project}-{environment}-{function}";

/// The name a function is deployed under by default: `{project}-{environment}-{function}`.
pub fn deployed_function_name(project: &str, environment: &str, function: &str) -> String {
    format!("{project}-{environment}-{function}")
}

/// Checks a part of a composed name (project, environment, function key):
/// non-empty, and only characters that every AWS name we build from it accepts.
pub fn check_name_part(kind: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError {
            kind,
            name: value.to_string(),
            problem: "it is empty".into(),
            hint: format!("give the {kind} a value of letters, digits and `-`"),
        });
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError {
            kind,
            name: value.to_string(),
            problem: format!("character {bad:?} is not allowed"),
            hint: format!("use only ASCII letters, digits, `-` and `_` in the {kind}"),
        });
    }
    Ok(())
}

/// Checks a full Lambda function name against Lambda's rules.
pub fn check_lambda_function_name(name: &str) -> Result<(), NameError> {
    check_name_part("Lambda function name", name)?;
    if name.len() > LAMBDA_FUNCTION_NAME_MAX {
        return Err(NameError {
            kind: "Lambda function name",
            name: name.to_string(),
            problem: format!(
                "it is {} characters long; Lambda allows at most {LAMBDA_FUNCTION_NAME_MAX}",
                name.len()
            ),
            hint: format!(
                "shorten the function key, the project name or the environment by {} characters",
                name.len() - LAMBDA_FUNCTION_NAME_MAX
            ),
        });
    }
    Ok(())
}

/// CloudFormation stack names: `[a-zA-Z][-a-zA-Z0-9]*`, at most 128 characters.
pub const STACK_NAME_MAX: usize = 128;
/// Change set names follow the same rule and limit.
pub const CHANGE_SET_NAME_MAX: usize = 128;

fn check_cfn_name(kind: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    let err = |problem: String| NameError {
        kind,
        name: name.to_string(),
        problem,
        hint: format!("use a letter first, then letters, digits and `-`, at most {max} characters"),
    };
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(err("it must start with a letter".into()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(err(format!("character {c:?} is not allowed")));
    }
    if name.len() > max {
        return Err(err(format!(
            "it is {} characters long; at most {max} are allowed",
            name.len()
        )));
    }
    Ok(())
}

/// Checks a CloudFormation stack name.
pub fn check_stack_name(name: &str) -> Result<(), NameError> {
    check_cfn_name("CloudFormation stack name", name, STACK_NAME_MAX)
}

/// Checks a CloudFormation change set name.
pub fn check_change_set_name(name: &str) -> Result<(), NameError> {
    check_cfn_name("change set name", name, CHANGE_SET_NAME_MAX)
}

/// Whether `arn` is shaped like an IAM role ARN:
/// `arn:<partition>:iam::<12 digits>:role/<path/>name`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition, iam, region, account, resource] = parts[..] else {
        return false;
    };
    let name = resource.strip_prefix("role/").unwrap_or("");
    arn_ == "arn"
        && partition.starts_with("aws")
        && iam == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
}

/// The one change set name of a deploy: `artifact-<commit>-<UTC time>-<nonce>`.
/// The commit (first 12 hex digits) makes it traceable; the time and the
/// nonce make concurrent deploys of one commit distinct. `unix_secs` and
/// `nonce` come from the caller, so the name is computed once and tests are exact.
pub fn change_set_name(commit: Option<&str>, unix_secs: u64, nonce: u32) -> String {
    let time = utc_compact(unix_secs);
    let commit: String = commit
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    if commit.is_empty() {
        format!("artifact-{time}-{nonce:08x}")
    } else {
        format!("artifact-{commit}-{time}-{nonce:08x}")
    }
}

/// (year, month, day, hour, minute, second) of a Unix time, UTC.
fn utc_parts(unix_secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let (y, mo, d) = civil_from_days(i64::try_from(unix_secs / 86_400).unwrap_or(i64::MAX));
    let s = unix_secs % 86_400;
    (y, mo, d, s / 3600, (s / 60) % 60, s % 60)
}

/// `20261126T150600Z`.
fn utc_compact(unix_secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(unix_secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `2026-11-26 15:06:00`, UTC, for people.
pub fn utc_timestamp(unix_secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(unix_secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// A frontend deployment's id: the change set name's parts behind `deploy-`
/// (`deploy-<commit>-<UTC time>-<nonce>`); recorded in the bucket's history
/// and used as CloudFront's CallerReference.
pub fn deployment_id(commit: Option<&str>, unix_secs: u64, nonce: u32) -> String {
    let name = change_set_name(commit, unix_secs, nonce);
    format!("deploy-{}", name.strip_prefix("artifact-").unwrap_or(&name))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Checks an S3 bucket name: 3-63 characters of lower-case letters, digits,
/// `.` and `-`, starting and ending with a letter or digit, not an IP address.
pub fn check_bucket_name(name: &str) -> Result<(), NameError> {
    let err = |problem: String| {
        NameError {
        kind: "S3 bucket name",
        name: name.to_string(),
        problem,
        hint: "bucket names are 3-63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit".into(),
    }
    };
    if !(3..=63).contains(&name.len()) {
        return Err(err(format!("it is {} characters long", name.len())));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(err(format!("character {c:?} is not allowed")));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err(err("it must start and end with a letter or digit".into()));
    }
    if name.contains("..") {
        return Err(err("it has two dots in a row".into()));
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err(err("it looks like an IP address".into()));
    }
    Ok(())
}

/// What CloudWatch takes as a metrics namespace: 1 to 255 printable
/// characters, not starting with `AWS/` (reserved for AWS's own) or `:`.
pub fn check_metrics_namespace(ns: &str) -> Result<(), NameError> {
    let problem = if ns.is_empty() || ns.len() > 255 {
        "it must be 1 to 255 characters"
    } else if !ns.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        "it may hold only printable ASCII characters"
    } else if ns.starts_with("AWS/") {
        "namespaces starting with AWS/ are AWS's own"
    } else if ns.starts_with(':') {
        "it may not start with a colon"
    } else {
        return Ok(());
    };
    Err(NameError {
        kind: "CloudWatch namespace",
        name: ns.to_string(),
        problem: problem.into(),
        hint: "use a name of your own, e.g. \"Artifact/Pipeline\"".into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_namespaces_follow_cloudwatchs_rules() {
        use super::check_metrics_namespace as check;
        assert_eq!(check("Artifact/Pipeline"), Ok(()));
        assert!(check("").is_err());
        let aws = check("AWS/Lambda").unwrap_err();
        assert_eq!(aws.problem, "namespaces starting with AWS/ are AWS's own");
        assert_eq!(aws.name, "AWS/Lambda");
        assert!(check(":x").is_err());
        assert!(check("tab\there").is_err());
        assert!(check(&"n".repeat(256)).is_err());
        assert_eq!(check(&"n".repeat(255)), Ok(()));
    }

    #[test]
    fn change_set_names_are_valid_traceable_and_distinct() {
        let a = change_set_name(
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),
            1_795_647_000,
            7,
        );
        assert_eq!(a, "artifact-9f86d081884c-20261125T225000Z-00000007");
        assert_eq!(check_change_set_name(&a), Ok(()));
        let b = change_set_name(None, 0, 0xffff_ffff);
        assert_eq!(b, "artifact-19700101T000000Z-ffffffff");
        assert_eq!(check_change_set_name(&b), Ok(()));
        assert_ne!(
            change_set_name(Some("abc"), 5, 1),
            change_set_name(Some("abc"), 5, 2)
        );
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn deployment_ids_follow_change_set_names() {
        let id = deployment_id(Some("0123456789abcdef"), 86_400, 0xab);
        assert_eq!(id, "deploy-0123456789ab-19700102T000000Z-000000ab");
    }

    #[test]
    fn stack_names() {
        assert!(check_stack_name("aws-elasticdrs-orchestrator-dev").is_ok());
        assert!(check_stack_name(&"a".repeat(128)).is_ok());
        assert!(check_stack_name(&"a".repeat(129)).is_err());
        assert!(check_stack_name("1abc").is_err());
        assert!(check_stack_name("a_b").is_err());
    }

    #[test]
    fn bucket_names() {
        assert!(check_bucket_name("my-site.example-1").is_ok());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("My-Bucket").is_err());
        assert!(check_bucket_name("-abc").is_err());
        assert!(check_bucket_name("a..b").is_err());
        assert!(check_bucket_name("192.168.1.1").is_err());
    }

    use super::*;

    #[test]
    fn role_arns_are_told_from_other_text() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/app-dev-cfn"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/path/to/r"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/someone"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/r"));
        assert!(!is_role_arn("arn:aws:iam:us-east-1:123456789012:role/r"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
        assert!(!is_role_arn("app-dev-cfn"));
    }

    #[test]
    fn function_name_at_the_limit_is_accepted() {
        let name = deployed_function_name("p", "dev", &"f".repeat(64 - 6));
        assert_eq!(name.len(), 64);
        assert_eq!(check_lambda_function_name(&name), Ok(()));
    }

    #[test]
    fn function_name_over_the_limit_says_by_how_much() {
        let name = deployed_function_name("p", "dev", &"f".repeat(64 - 5));
        let err = check_lambda_function_name(&name).unwrap_err();
        assert!(err.problem.contains("65 characters"), "{err}");
        assert!(err.hint.contains("by 1 characters"), "{}", err.hint);
    }

    #[test]
    fn characters_lambda_refuses_are_named() {
        let err = check_lambda_function_name("p-dev-api.handler").unwrap_err();
        assert!(err.problem.contains("'.'"), "{}", err.problem);
        let err = check_name_part("project name", "").unwrap_err();
        assert!(err.problem.contains("empty"));
    }
}
