//! Stack parameters and tags from outside the project file: `env:NAME` values
//! (`env:NAME:-default`), and `[infra] parameters_file` in either shape
//! pipelines use — CloudFormation's `[{"ParameterKey", "ParameterValue"}]` or
//! CodePipeline's template configuration `{"Parameters": {}, "Tags": {}}`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::error::{invalid, Problem};
use super::settings::Env;

/// `value`, or the variable an `env:NAME` / `env:NAME:-default` value names.
pub(crate) fn env_value(key: &str, value: String, env: &Env) -> Result<String, Problem> {
    let Some(spec) = value.strip_prefix("env:") else {
        return Ok(value);
    };
    let (name, default) = match spec.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (spec, None),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid(
            key,
            format!("{value:?} does not name a variable"),
            "write env:NAME or env:NAME:-default",
        ));
    }
    match (env.vars.get(name).filter(|v| !v.is_empty()), default) {
        (Some(v), _) => Ok(v.to_string()),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(invalid(
            key,
            format!("{value:?}: the variable {name} is not set"),
            format!("set {name} in the build's environment, or give a default: env:{name}:-value"),
        )),
    }
}

/// Every value of `values` through [`env_value`].
pub(crate) fn env_values(
    table: &str,
    values: BTreeMap<String, String>,
    env: &Env,
) -> Result<BTreeMap<String, String>, Problem> {
    values
        .into_iter()
        .map(|(k, v)| Ok((k.clone(), env_value(&format!("{table}.{k}"), v, env)?)))
        .collect()
}

/// The parameters and tags of a parameter file.
pub(crate) type FileValues = (BTreeMap<String, String>, BTreeMap<String, String>);

/// Reads `path` (shown as `shown`) in either shape.
pub(crate) fn parameters_file(path: &Path, shown: &str) -> Result<FileValues, Problem> {
    const KEY: &str = "infra.parameters_file";
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            KEY,
            format!("{shown}: {e}"),
            "create the file, or fix the path ({environment} and {project} are expanded)",
        )
    })?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| invalid(KEY, format!("{shown} is not JSON: {e}"), SHAPES_HINT))?;
    parse_shapes(&doc).ok_or_else(|| {
        invalid(
            KEY,
            format!("{shown} is in neither parameter file shape"),
            SHAPES_HINT,
        )
    })
}

const SHAPES_HINT: &str = "write [{\"ParameterKey\": \"K\", \"ParameterValue\": \"V\"}] or {\"Parameters\": {\"K\": \"V\"}, \"Tags\": {\"K\": \"V\"}}";

/// The values of either shape; None for anything else.
fn parse_shapes(doc: &Value) -> Option<FileValues> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match doc {
        Value::Array(items) => {
            let params = items
                .iter()
                .map(|i| {
                    Some((
                        i.get("ParameterKey")?.as_str()?.to_string(),
                        text(i.get("ParameterValue")?)?,
                    ))
                })
                .collect::<Option<BTreeMap<_, _>>>()?;
            Some((params, BTreeMap::new()))
        }
        Value::Object(m)
            if !m.is_empty()
                && m.keys()
                    .all(|k| k == "Parameters" || k == "Tags" || k == "StackPolicy") =>
        {
            let table = |k: &str| -> Option<BTreeMap<String, String>> {
                match m.get(k) {
                    None => Some(BTreeMap::new()),
                    Some(Value::Object(o)) => {
                        o.iter().map(|(k, v)| Some((k.clone(), text(v)?))).collect()
                    }
                    Some(_) => None,
                }
            };
            Some((table("Parameters")?, table("Tags")?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::EnvVars;
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env {
            vars: EnvVars(
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Env::default()
        }
    }

    #[test]
    fn env_values_take_the_variable_or_the_default() {
        let e = env(&[("CODEBUILD_BUILD_ID", "b:1"), ("EMPTY", "")]);
        let v = |s: &str| env_value("infra.parameters.X", s.to_string(), &e);
        assert_eq!(v("plain").unwrap(), "plain");
        assert_eq!(v("env:CODEBUILD_BUILD_ID").unwrap(), "b:1");
        assert_eq!(v("env:MISSING:-none").unwrap(), "none");
        assert_eq!(v("env:EMPTY:-fallback").unwrap(), "fallback");
        let Err(Problem::Invalid { key, message, hint }) = v("env:MISSING") else {
            panic!("a missing variable is an error")
        };
        assert_eq!(key, "infra.parameters.X");
        assert!(message.contains("MISSING is not set"), "{message}");
        assert!(hint.contains("env:MISSING:-value"), "{hint}");
        assert!(v("env:").is_err() && v("env:a b").is_err());
    }

    #[test]
    fn both_file_shapes_and_nothing_else() {
        let cfn: Value = serde_json::from_str(r#"[{"ParameterKey":"Size","ParameterValue":"large"},{"ParameterKey":"N","ParameterValue":3}]"#).unwrap();
        let (p, t) = parse_shapes(&cfn).unwrap();
        assert_eq!(p["Size"], "large");
        assert_eq!(p["N"], "3");
        assert!(t.is_empty());
        let cp: Value =
            serde_json::from_str(r#"{"Parameters":{"Size":"small"},"Tags":{"team":"ops"}}"#)
                .unwrap();
        let (p, t) = parse_shapes(&cp).unwrap();
        assert_eq!((p["Size"].as_str(), t["team"].as_str()), ("small", "ops"));
        for bad in [
            r#"{"Size":"x"}"#,
            r#"[{"Key":"a"}]"#,
            r#""text""#,
            r#"{}"#,
            r#"{"Parameters":[1]}"#,
        ] {
            assert!(
                parse_shapes(&serde_json::from_str(bad).unwrap()).is_none(),
                "{bad}"
            );
        }
    }
}
