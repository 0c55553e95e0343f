//! Deployed names made from patterns: `[naming] function` and a function's
//! own `name`, with `{project}`, `{environment}`, `{function}`, `{account}`
//! and `{region}`; checked against Lambda's rules after expansion.

use super::error::{invalid, Problem};
use super::raw::RawNaming;
use super::settings::Project;
use crate::names;

const NAME_HINT: &str =
    "use {project}, {environment}, {function}, {account} and {region}, or a literal name";

/// The name function `function` is deployed under: its own `name`, else
/// `[naming] function`, else `{project}-{environment}-{function}`.
pub(crate) fn function_name(
    function: &str,
    own: Option<&str>,
    naming: &RawNaming,
    project: &Project,
) -> Result<String, Problem> {
    let (key, pattern) = match (own, naming.function.as_deref()) {
        (Some(p), _) => (format!("functions.{function}.name"), p),
        (None, Some(p)) => ("naming.function".to_string(), p),
        (None, None) => (
            "naming.function".to_string(),
            names::DEFAULT_FUNCTION_PATTERN,
        ),
    };
    let name = expand_name(&key, pattern, project, &[("function", function)], NAME_HINT)?;
    names::check_lambda_function_name(&name).map_err(|e| {
        invalid(
            &key,
            format!(
                "{pattern:?} gives {name:?} for function `{function}`: {}",
                e.problem
            ),
            e.hint,
        )
    })?;
    Ok(name)
}

/// Expands a name pattern (`{project}`, `{environment}`, `{account}`,
/// `{region}` and `extra`); `{account}` and `{region}` only when known.
pub(crate) fn expand_name(
    key: &str,
    pattern: &str,
    project: &Project,
    extra: &[(&str, &str)],
    hint: &str,
) -> Result<String, Problem> {
    let unknown = [
        (
            "{account}",
            project.account.is_none(),
            "set AWS_ACCOUNT_ID (in CodeBuild, CODEBUILD_BUILD_ARN names it); every other command asks STS GetCallerIdentity for it, but policy and validate --offline do not",
        ),
        (
            "{region}",
            project.region.is_none(),
            "set AWS_REGION (or --region's environment, AWS_DEFAULT_REGION)",
        ),
    ];
    if let Some((p, _, hint)) = unknown
        .iter()
        .find(|(p, missing, _)| *missing && pattern.contains(p))
    {
        return Err(invalid(
            key,
            format!("{pattern:?} uses {p}, which is not known here"),
            *hint,
        ));
    }
    let mut vars: Vec<(&str, &str)> = vec![
        ("project", &project.name),
        ("environment", &project.environment),
        ("account", project.account.as_deref().unwrap_or_default()),
        ("region", project.region.as_deref().unwrap_or_default()),
    ];
    vars.extend_from_slice(extra);
    expand(pattern, &vars).map_err(|m| invalid(key, m, hint))
}

/// Expands each `{name}` of `vars` in `value`; an unknown one or an unclosed
/// `{` is an error that lists the known names.
pub(crate) fn expand(value: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            return Err(format!("{value:?} has an unclosed `{{`"));
        };
        let name = &rest[i + 1..i + j];
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                return Err(format!(
                    "{value:?} uses `{{{name}}}`; known placeholders are {}",
                    vars.iter()
                        .map(|(k, _)| format!("{{{k}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(account: Option<&str>) -> Project {
        Project {
            name: "shop".into(),
            environment: "dev".into(),
            account: account.map(str::to_string),
            region: Some("eu-west-1".into()),
        }
    }

    fn naming(p: Option<&str>) -> RawNaming {
        RawNaming {
            function: p.map(str::to_string),
        }
    }

    fn message(p: Problem) -> (String, String) {
        match p {
            Problem::Invalid { key, message, .. } => (key, message),
            Problem::Name(e) => ("?".into(), e.to_string()),
        }
    }

    #[test]
    fn names_follow_the_function_then_the_project_pattern_then_the_default() {
        let p = project(Some("123456789012"));
        let name = |own, pattern| function_name("api", own, &naming(pattern), &p).unwrap();
        assert_eq!(name(None, None), "shop-dev-api");
        assert_eq!(
            name(None, Some("{project}-{function}-{environment}")),
            "shop-api-dev"
        );
        assert_eq!(
            name(Some("shop-dr-orch-sf"), Some("{project}-{function}")),
            "shop-dr-orch-sf"
        );
        assert_eq!(
            name(Some("{function}-{account}-{region}"), None),
            "api-123456789012-eu-west-1"
        );
    }

    #[test]
    fn bad_patterns_name_the_key_and_the_problem() {
        let p = project(None);
        let err =
            |own, pattern| message(function_name("api", own, &naming(pattern), &p).unwrap_err());
        let (key, m) = err(None, Some("{project}-{fn}"));
        assert_eq!(key, "naming.function");
        assert!(m.contains("`{fn}`") && m.contains("{function}"), "{m}");
        let (key, m) = err(Some("{project}-{account}"), None);
        assert_eq!(key, "functions.api.name");
        assert!(m.contains("{account}, which is not known here"), "{m}");
        let long = "x".repeat(70);
        let (key, m) = err(Some(&long), None);
        assert_eq!(key, "functions.api.name");
        assert!(m.contains("64"), "{m}");
        let (_, m) = err(Some("has space"), None);
        assert!(m.contains("not allowed") || m.contains("character"), "{m}");
    }
}
