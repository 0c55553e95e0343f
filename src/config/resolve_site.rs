//! `[[frontend.config]]`: each configuration file the site reads, checked
//! when the project file is read (file name, format, template, value sources).

use std::path::Path;

use super::error::{invalid, Problem};
use super::raw::RawSiteConfig;
use super::settings::{ConfigFormat, SiteConfig, ValueSource};

pub(crate) fn site_configs(
    raw: Vec<RawSiteConfig>,
    root: &Path,
) -> Result<Vec<SiteConfig>, Problem> {
    let mut out: Vec<SiteConfig> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let key = format!("frontend.config[{i}]");
        let file = c.file.trim_start_matches('/').to_string();
        if file.is_empty()
            || file
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
            || file.contains('\\')
        {
            return Err(invalid(
                &format!("{key}.file"),
                format!("{:?} is not a path inside the site", c.file),
                "give the file's path in the built site, e.g. \"aws-config.json\"",
            ));
        }
        if out.iter().any(|o| o.file == file) {
            return Err(invalid(
                &format!("{key}.file"),
                format!("{file} is written twice"),
                "keep one entry per file",
            ));
        }
        let format = format_of(&key, &file, c.global)?;
        if let Some(t) = &c.template {
            if format == ConfigFormat::Env {
                return Err(invalid(
                    &format!("{key}.template"),
                    "a template is a JSON file: it fits .json and .js files only".into(),
                    "drop template, or write the file as .json",
                ));
            }
            super::resolve_layout::inside_root(&format!("{key}.template"), root, t, root)?;
            if !root.join(t).is_file() {
                return Err(invalid(
                    &format!("{key}.template"),
                    format!("`{}` does not exist", t.display()),
                    "give the committed template's path relative to the project root",
                ));
            }
        }
        if c.values.is_empty() && c.template.is_none() {
            return Err(invalid(
                &format!("{key}.values"),
                "the file would be empty".into(),
                "map each key to a value, e.g. values = { region = \"{region}\", apiEndpoint = \"output:ApiUrl\" }",
            ));
        }
        let mut values = Vec::new();
        for (k, v) in c.values {
            let vkey = format!("{key}.values.{k}");
            if k.is_empty() || k.split('.').any(str::is_empty) {
                return Err(invalid(
                    &vkey,
                    format!("{k:?} is not a key"),
                    "use names, dotted for nested objects: Auth.Cognito.userPoolId",
                ));
            }
            values.push((k, source_of(&vkey, &v)?));
        }
        out.push(SiteConfig {
            file,
            format,
            template: c.template.map(|t| root.join(t)),
            values,
        });
    }
    Ok(out)
}

fn format_of(key: &str, file: &str, global: Option<String>) -> Result<ConfigFormat, Problem> {
    let ext = file.rsplit_once('.').map(|(_, e)| e);
    let name = file.rsplit('/').next().unwrap_or(file);
    Ok(match (ext, global) {
        (Some("js" | "mjs"), g) => {
            let global = g.unwrap_or_else(|| "AWS_CONFIG".into());
            let ident = global
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && global
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            if !ident {
                return Err(invalid(
                    &format!("{key}.global"),
                    format!("{global:?} is not a JavaScript name"),
                    "use a name like AWS_CONFIG",
                ));
            }
            ConfigFormat::Js { global }
        }
        (Some("json"), None) => ConfigFormat::Json,
        (_, None) if name == ".env" || name.starts_with(".env.") || ext == Some("env") => {
            ConfigFormat::Env
        }
        (_, Some(_)) => {
            return Err(invalid(
                &format!("{key}.global"),
                "global is for .js files".into(),
                "drop global, or write a .js file",
            ))
        }
        _ => {
            return Err(invalid(
                &format!("{key}.file"),
                format!("{file}: the format cannot be told from the name"),
                "name it .json, .js (with global = \"AWS_CONFIG\") or .env",
            ))
        }
    })
}

fn source_of(key: &str, v: &str) -> Result<ValueSource, Problem> {
    let named =
        |prefix: &str, f: fn(String) -> ValueSource| -> Option<Result<ValueSource, Problem>> {
            let name = v.strip_prefix(prefix)?;
            Some(if name.is_empty() {
                Err(invalid(
                    key,
                    format!("{v:?} names nothing"),
                    format!("write {prefix}Name"),
                ))
            } else {
                Ok(f(name.to_string()))
            })
        };
    named("output:", ValueSource::Output)
        .or_else(|| named("param:", ValueSource::Param))
        .or_else(|| named("env:", ValueSource::Env))
        .unwrap_or_else(|| Ok(ValueSource::Literal(v.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn raw(file: &str, values: &[(&str, &str)]) -> RawSiteConfig {
        RawSiteConfig {
            file: file.into(),
            template: None,
            global: None,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn formats_and_sources() {
        let c = site_configs(
            vec![
                raw(
                    "aws-config.json",
                    &[
                        ("region", "{region}"),
                        ("Auth.userPoolId", "output:UserPoolId"),
                    ],
                ),
                raw("/config/app.js", &[("api", "param:ApiUrl")]),
                raw(
                    ".env.production",
                    &[("VITE_BUILD", "env:CODEBUILD_BUILD_ID")],
                ),
            ],
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(c[0].format, ConfigFormat::Json);
        assert_eq!(
            c[0].values[0],
            (
                "Auth.userPoolId".into(),
                ValueSource::Output("UserPoolId".into())
            )
        );
        assert_eq!(
            c[0].values[1],
            ("region".into(), ValueSource::Literal("{region}".into()))
        );
        assert_eq!(c[1].file, "config/app.js");
        assert_eq!(
            c[1].format,
            ConfigFormat::Js {
                global: "AWS_CONFIG".into()
            }
        );
        assert_eq!(c[2].format, ConfigFormat::Env);
        assert_eq!(
            c[2].values[0].1,
            ValueSource::Env("CODEBUILD_BUILD_ID".into())
        );
    }

    #[test]
    fn bad_entries_name_their_key() {
        let key = |r: RawSiteConfig| match site_configs(vec![r], Path::new("/p")).unwrap_err() {
            Problem::Invalid { key, .. } => key,
            Problem::Name(e) => e.to_string(),
        };
        assert_eq!(
            key(raw("../x.json", &[("a", "b")])),
            "frontend.config[0].file"
        );
        assert_eq!(
            key(raw("config.yaml", &[("a", "b")])),
            "frontend.config[0].file"
        );
        assert_eq!(key(raw("a.json", &[])), "frontend.config[0].values");
        assert_eq!(
            key(raw("a.json", &[("a..b", "x")])),
            "frontend.config[0].values.a..b"
        );
        assert_eq!(
            key(raw("a.json", &[("a", "output:")])),
            "frontend.config[0].values.a"
        );
        let mut g = raw("a.js", &[("a", "b")]);
        g.global = Some("not ok".into());
        assert_eq!(key(g), "frontend.config[0].global");
        let mut t = raw("a.json", &[("a", "b")]);
        t.template = Some("missing.json".into());
        assert_eq!(key(t), "frontend.config[0].template");
    }
}
