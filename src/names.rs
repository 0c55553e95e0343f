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

/// The name a function is deployed under: `{project}-{environment}-{function}`.
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

#[cfg(test)]
mod tests {
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
