//! What a (master) template declares of its parameters.

use std::collections::{BTreeMap, HashSet};

use serde_norway::Value;

/// What the master template declares of its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasterParameters {
    /// The declared names: only these are passed.
    pub declared: HashSet<String>,
    /// Declared parameters' defaults, as CloudFormation reports them.
    pub defaults: BTreeMap<String, String>,
    /// Parameters whose value CloudFormation resolves at deploy time (SSM types).
    pub has_dynamic: bool,
    /// Parameters declared `NoEcho`: their values are never shown or recorded.
    pub no_echo: HashSet<String>,
}

/// What a parameter's `Default` is, as CloudFormation reports it (lists joined by commas).
fn default_value(v: &Value) -> Option<String> {
    Some(match v {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => scalar(other)?,
    })
}

/// The parameters a (master) template declares.
pub fn master_parameters(doc: &Value) -> MasterParameters {
    let Some(m) = doc.get("Parameters").and_then(Value::as_mapping) else {
        return MasterParameters::default();
    };
    MasterParameters {
        declared: m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        defaults: m
            .iter()
            .filter_map(|(k, p)| Some((k.as_str()?.to_string(), default_value(p.get("Default")?)?)))
            .collect(),
        has_dynamic: m.values().any(|p| {
            p.get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("AWS::SSM::Parameter"))
        }),
        no_echo: m
            .iter()
            .filter(|(_, p)| {
                matches!(p.get("NoEcho"), Some(Value::Bool(true)))
                    || p.get("NoEcho").and_then(Value::as_str) == Some("true")
            })
            .filter_map(|(k, _)| k.as_str().map(str::to_string))
            .collect(),
    }
}

/// A scalar's value as CloudFormation passes it.
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
