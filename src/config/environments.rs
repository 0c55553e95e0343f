//! `[environments.<name>]`: tables that override any key of the project file
//! for one environment (`ENVIRONMENT` / `--environment`, else
//! `[project] environment`). The chosen table is merged over the file, table
//! by table, before the file is read; the others are ignored.

use toml::{Table, Value};

/// The project file's TOML with the chosen environment's table merged in,
/// with the environment's name; None when the file has no `[environments]`.
/// `Err` names the key at fault.
pub(crate) fn merged(text: &str, chosen: Option<&str>) -> Result<Option<(String, Table)>, String> {
    let mut doc: Table = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    let Some(envs) = doc.remove("environments") else {
        return Ok(None);
    };
    let Value::Table(envs) = envs else {
        return Err("`environments` must be a table of tables, e.g. [environments.prod]".into());
    };
    let name = chosen
        .map(str::to_string)
        .or_else(|| {
            doc.get("project")
                .and_then(|p| p.get("environment"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "dev".to_string());
    for (env, table) in &envs {
        let Value::Table(table) = table else {
            return Err(format!("`environments.{env}` must be a table"));
        };
        if table.contains_key("environments")
            || table
                .get("project")
                .and_then(|p| p.get("environment"))
                .is_some()
        {
            return Err(format!(
                "`environments.{env}` may not choose the environment itself (project.environment, environments)"
            ));
        }
    }
    if let Some(Value::Table(over)) = envs.get(&name) {
        merge(&mut doc, over);
    }
    Ok(Some((name, doc)))
}

/// Merges `over` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut Table, over: &Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "[project]\nname = \"p\"\nenvironment = \"dev\"\n[infra]\ntimeout_minutes = 30\n[infra.parameters]\nSize = \"small\"\nKeep = \"yes\"\n[environments.prod.infra]\ntimeout_minutes = 90\n[environments.prod.infra.parameters]\nSize = \"large\"\n[environments.test]\nmetrics = { namespace = \"T\" }\n";

    #[test]
    fn the_chosen_environment_overrides_table_by_table() {
        let get = |e| merged(FILE, e).unwrap().unwrap().1;
        let prod = get(Some("prod"));
        let infra = prod["infra"].as_table().unwrap();
        assert_eq!(infra["timeout_minutes"].as_integer(), Some(90));
        let params = infra["parameters"].as_table().unwrap();
        assert_eq!(params["Size"].as_str(), Some("large"));
        assert_eq!(params["Keep"].as_str(), Some("yes"));
        assert!(!prod.contains_key("environments"));
        // The file's own environment (dev) has no table: the file as written.
        let dev = get(None);
        assert_eq!(dev["infra"]["timeout_minutes"].as_integer(), Some(30));
        assert!(!dev.contains_key("metrics"));
        let test = get(Some("test"));
        assert!(merged("[project]\nname = \"p\"\n", None).unwrap().is_none());
        assert_eq!(test["metrics"]["namespace"].as_str(), Some("T"));
    }

    #[test]
    fn an_environment_may_not_choose_itself() {
        let text = "[project]\nname = \"p\"\n[environments.prod.project]\nenvironment = \"dev\"\n";
        assert!(merged(text, Some("prod"))
            .unwrap_err()
            .contains("environments.prod"));
        assert!(merged("environments = 3\n[project]\nname = \"p\"\n", None).is_err());
    }
}
