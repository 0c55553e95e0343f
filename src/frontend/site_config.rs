//! The site's configuration files (`[[frontend.config]]`), rendered before
//! the sync from the stack's outputs, the stack's parameters, the build's
//! environment and literals. Without entries, the default `aws-config.js`.
//!
//! Every value is checked (no control characters) and escaped for its format
//! exactly: JSON as JSON, JavaScript with `<`, `>`, `&`, U+2028 and U+2029 as
//! `\uXXXX` (nothing can end the `<script>`), `.env` quoted when needed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::config_js::{self, CONFIG_JS};
use super::error::FrontendError;
use super::outputs::{Lookup, StackValues};
use crate::config::{ConfigFormat, EnvVars, Settings, SiteConfig, ValueSource};

/// What values are taken from besides the outputs.
pub struct Sources<'a> {
    pub values: &'a StackValues,
    pub parameters: &'a BTreeMap<String, String>,
    pub env: &'a EnvVars,
    pub project: &'a str,
    pub environment: &'a str,
}

impl<'a> Sources<'a> {
    /// The project's sources beside the stack's `values`.
    pub fn of(settings: &'a Settings, values: &'a StackValues) -> Sources<'a> {
        Sources {
            values,
            parameters: &settings.infra.parameters,
            env: &settings.vars,
            project: &settings.project.name,
            environment: &settings.project.environment,
        }
    }
}

/// A rendered file: its key in the site and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub file: String,
    pub text: String,
}

/// The site's configuration files' keys.
pub fn files(settings: &Settings) -> Vec<String> {
    if settings.frontend.config.is_empty() {
        vec![CONFIG_JS.to_string()]
    } else {
        settings
            .frontend
            .config
            .iter()
            .map(|c| c.file.clone())
            .collect()
    }
}

/// Every configuration file of the site, rendered.
pub fn render_all(settings: &Settings, s: &Sources<'_>) -> Result<Vec<Rendered>, FrontendError> {
    if settings.frontend.config.is_empty() {
        return Ok(vec![Rendered {
            file: CONFIG_JS.into(),
            text: config_js::render(&s.values.aws_config()),
        }]);
    }
    settings
        .frontend
        .config
        .iter()
        .map(|c| {
            let template = match &c.template {
                Some(t) => Some(
                    std::fs::read_to_string(t).map_err(|e| FrontendError::Config {
                        file: c.file.clone(),
                        message: format!("{}: {e}", t.display()),
                        hint: "commit the template, or fix frontend.config's template path".into(),
                    })?,
                ),
                None => None,
            };
            render(c, template.as_deref(), s)
        })
        .collect()
}

fn config_error(file: &str, message: String, hint: &str) -> FrontendError {
    FrontendError::Config {
        file: file.to_string(),
        message,
        hint: hint.to_string(),
    }
}

/// One file's text.
pub fn render(
    c: &SiteConfig,
    template: Option<&str>,
    s: &Sources<'_>,
) -> Result<Rendered, FrontendError> {
    let mut doc = match template {
        Some(t) => match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(m)) => m,
            Ok(_) | Err(_) => {
                return Err(config_error(
                    &c.file,
                    "its template is not a JSON object".into(),
                    "make the template a JSON object ({\"region\": \"REPLACE_WITH_STACK_OUTPUT\", ...})",
                ))
            }
        },
        None => Map::new(),
    };
    for (key, source) in &c.values {
        let value = value_of(&c.file, key, source, s)?;
        set(&mut doc, key, value);
    }
    if let Some(left) = placeholder_left(&doc, "") {
        return Err(config_error(
            &c.file,
            format!("the template's value at {left} was not replaced"),
            "map the key under values (e.g. values = { region = \"{region}\" }), or drop it from the template",
        ));
    }
    let text = match &c.format {
        ConfigFormat::Json => {
            let mut t =
                serde_json::to_string_pretty(&Value::Object(doc)).expect("JSON values serialise");
            t.push('\n');
            t
        }
        ConfigFormat::Js { global } => {
            let json =
                serde_json::to_string_pretty(&Value::Object(doc)).expect("JSON values serialise");
            format!("window.{global} = {};\n", config_js::script_safe(&json))
        }
        ConfigFormat::Env => env_text(&c.file, &doc)?,
    };
    Ok(Rendered {
        file: c.file.clone(),
        text,
    })
}

/// The value of one key.
fn value_of(
    file: &str,
    key: &str,
    source: &ValueSource,
    s: &Sources<'_>,
) -> Result<String, FrontendError> {
    let value = match source {
        ValueSource::Output(name) => match s.values.outputs.find(&s.values.stack, name) {
            Ok(v) => v.to_string(),
            Err(Lookup::Missing(searched)) => {
                return Err(config_error(
                    file,
                    format!("{key}: no stack has output {name} (searched {})", searched.join(", ")),
                    "add the output to a template, or fix the name after output:",
                ))
            }
            Err(Lookup::Ambiguous(stacks)) => {
                return Err(FrontendError::AmbiguousOutput {
                    name: name.clone(),
                    stacks,
                })
            }
        },
        ValueSource::Param(name) => s.parameters.get(name).cloned().ok_or_else(|| {
            config_error(
                file,
                format!("{key}: the stack is passed no parameter {name}"),
                "set it under [infra.parameters] or in the parameter file, or fix the name after param:",
            )
        })?,
        ValueSource::Env(name) => s.env.get(name).filter(|v| !v.is_empty()).map(str::to_string).ok_or_else(|| {
            config_error(
                file,
                format!("{key}: the variable {name} is not set"),
                "set it in the build's environment, or use a literal",
            )
        })?,
        ValueSource::Literal(text) => text
            .replace("{region}", &s.values.region)
            .replace("{project}", s.project)
            .replace("{environment}", s.environment)
            .replace("{stack}", &s.values.stack),
    };
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(config_error(
            file,
            format!("{key}: the value holds the control character {c:?}"),
            "fix the value at its source (the output, parameter or variable)",
        ));
    }
    Ok(value)
}

/// Sets a dotted key, making the objects on the way.
fn set(doc: &mut Map<String, Value>, key: &str, value: String) {
    let mut parts = key.split('.').peekable();
    let mut at = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_string(), Value::String(value));
            return;
        }
        let next = at
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        at = next.as_object_mut().expect("made an object just above");
    }
}

/// The dotted key of a template value still waiting for a value.
fn placeholder_left(doc: &Map<String, Value>, prefix: &str) -> Option<String> {
    doc.iter().find_map(|(k, v)| {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::String(s) if s.starts_with("REPLACE_WITH") => Some(path),
            Value::Object(m) => placeholder_left(m, &path),
            _ => None,
        }
    })
}

/// `KEY=value` lines: flat keys of letters, digits and `_`; values quoted
/// (JSON escapes) unless plain.
fn env_text(file: &str, doc: &Map<String, Value>) -> Result<String, FrontendError> {
    let mut out = String::new();
    let mut pairs: Vec<(&String, &Value)> = doc.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in pairs {
        let Value::String(v) = v else {
            return Err(config_error(
                file,
                format!("{k}: a .env file holds flat values"),
                "use keys without dots in a .env file",
            ));
        };
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || k.is_empty() {
            return Err(config_error(
                file,
                format!("{k:?} is not a variable name"),
                "use letters, digits and _ (e.g. VITE_API_URL)",
            ));
        }
        let plain = v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+,".contains(c));
        if plain {
            out.push_str(&format!("{k}={v}\n"));
        } else {
            out.push_str(&format!(
                "{k}={}\n",
                serde_json::to_string(v).expect("strings serialise")
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
