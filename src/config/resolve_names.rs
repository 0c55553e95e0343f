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

/// Where zips go by default (the templates' `S3Key: lambda/<function>.zip`).
pub(crate) const DEFAULT_ZIP_KEY: &str = "lambda/{function}.zip";

/// Prefixes of the deployment bucket artifact keeps for itself.
const RESERVED: [&str; 4] = ["cfn/", "history/", "deployments/", "pack-cache/"];

/// The key function `function`'s zip is uploaded to: `[naming] zip_key`
/// expanded, a `.zip` key in a folder, outside the prefixes artifact keeps.
pub(crate) fn zip_key(
    function: &str,
    naming: &RawNaming,
    project: &Project,
) -> Result<String, Problem> {
    let pattern = naming.zip_key.as_deref().unwrap_or(DEFAULT_ZIP_KEY);
    let key = "naming.zip_key";
    let hint = "use a key like \"lambda/{function}.zip\" (with {project}, {environment}, {function}, {account}, {region}), the one the templates' S3Key names";
    let zip = expand_name(key, pattern, project, &[("function", function)], hint)?;
    let bad = |problem: String| {
        Err(invalid(
            key,
            format!("{pattern:?} gives {zip:?}: {problem}"),
            hint,
        ))
    };
    if !zip.ends_with(".zip") {
        return bad("a zip's key ends in .zip".into());
    }
    if zip.starts_with('/')
        || !zip.contains('/')
        || zip
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return bad("the key must be a path in a folder, with no empty, `.` or `..` parts".into());
    }
    if zip.len() > 1024 || zip.chars().any(|c| c.is_control() || c == '\\') {
        return bad(
            "S3 keys are at most 1,024 bytes, with no control characters or backslashes".into(),
        );
    }
    if let Some(r) = RESERVED.iter().find(|r| zip.starts_with(*r)) {
        return bad(format!("{r} is where artifact keeps its own objects"));
    }
    Ok(zip)
}

/// The folder every zip key shares (`lambda/` by default): the deploy lists
/// it to compare, and layers go under its `layers/`.
pub(crate) fn zips_folder(keys: &[&str]) -> Option<String> {
    let first = keys.first()?;
    let mut common = first.rsplit_once('/').map(|(d, _)| format!("{d}/"))?;
    for k in &keys[1..] {
        while !k.starts_with(&common) {
            let trimmed = common.trim_end_matches('/');
            common = match trimmed.rsplit_once('/') {
                Some((d, _)) => format!("{d}/"),
                None => return None,
            };
        }
    }
    Some(common)
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
            zip_key: None,
        }
    }

    fn message(p: Problem) -> (String, String) {
        match p {
            Problem::Invalid { key, message, .. } => (key, message),
            Problem::Name(e) => ("?".into(), e.to_string()),
        }
    }

    #[test]
    fn zip_keys_expand_per_function_and_share_a_folder() {
        let p = project(Some("123456789012"));
        let naming = |k: &str| RawNaming {
            function: None,
            zip_key: Some(k.into()),
        };
        let key = |k: &str| zip_key("api", &naming(k), &p);
        assert_eq!(
            zip_key("api", &RawNaming::default(), &p).unwrap(),
            "lambda/api.zip"
        );
        assert_eq!(
            key("code/{project}/{function}.zip").unwrap(),
            "code/shop/api.zip"
        );
        for bad in [
            "lambda/{function}",
            "{function}.zip",
            "cfn/{function}.zip",
            "a//{function}.zip",
            "../{function}.zip",
        ] {
            assert_eq!(message(key(bad).unwrap_err()).0, "naming.zip_key", "{bad}");
        }
        assert_eq!(
            zips_folder(&["a/b/x.zip", "a/b/y.zip"]).as_deref(),
            Some("a/b/")
        );
        assert_eq!(
            zips_folder(&["a/b/x.zip", "a/c/y.zip"]).as_deref(),
            Some("a/")
        );
        assert_eq!(zips_folder(&["a/x.zip", "b/y.zip"]), None);
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
