//! The stack outputs deploy-frontend and `config` need, read with
//! DescribeStacks: the root stack's, and when a name is not there, those of
//! its nested stacks (one DescribeStackResources, one DescribeStacks each).
//! Every missing or empty one is named, with the stacks searched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config_js::AwsConfig;
use super::error::FrontendError;
use crate::aws::Clients;
use crate::config::Settings;

/// The values read from the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackValues {
    pub stack: String,
    pub api_url: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    pub bucket: String,
    pub distribution_id: String,
    pub url: String,
    pub region: String,
    /// Every output read: the root stack's and, when read, its nested stacks'.
    #[serde(default, skip_serializing_if = "StackOutputs::is_empty")]
    pub outputs: StackOutputs,
}

impl StackValues {
    pub fn aws_config(&self) -> AwsConfig {
        AwsConfig {
            user_pool_id: self.user_pool_id.clone(),
            user_pool_client_id: self.user_pool_client_id.clone(),
            region: self.region.clone(),
            api_endpoint: self.api_url.clone(),
        }
    }
}

/// Outputs by stack: the root first, then nested stacks by logical id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackOutputs {
    pub root: BTreeMap<String, String>,
    pub nested: BTreeMap<String, BTreeMap<String, String>>,
}

/// Why an output could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// In no stack searched (the names of the stacks searched).
    Missing(Vec<String>),
    /// In more than one nested stack, with other values (their logical ids).
    Ambiguous(Vec<String>),
}

impl StackOutputs {
    pub fn is_empty(&self) -> bool {
        self.root.is_empty() && self.nested.is_empty()
    }

    /// Output `name`: the root stack's, else the one nested stack's that has
    /// it (non-empty). Two nested stacks with other values are ambiguous.
    pub fn find(&self, root_name: &str, name: &str) -> Result<&str, Lookup> {
        let usable = |v: &String| !v.trim().is_empty();
        if let Some(v) = self.root.get(name).filter(|v| usable(v)) {
            return Ok(v.trim());
        }
        let found: Vec<(&String, &String)> = self
            .nested
            .iter()
            .filter_map(|(id, o)| Some((id, o.get(name).filter(|v| usable(v))?)))
            .collect();
        match found.as_slice() {
            [] => {
                let mut searched = vec![root_name.to_string()];
                searched.extend(self.nested.keys().cloned());
                Err(Lookup::Missing(searched))
            }
            [(_, v)] => Ok(v.trim()),
            many if many.iter().all(|(_, v)| *v == many[0].1) => Ok(many[0].1.trim()),
            many => Err(Lookup::Ambiguous(
                many.iter().map(|(id, _)| id.to_string()).collect(),
            )),
        }
    }
}

fn stack_error(e: crate::cfn::InfraError) -> FrontendError {
    match e {
        crate::cfn::InfraError::Sync(e) => FrontendError::Sync(e),
        crate::cfn::InfraError::Aws(f) => FrontendError::Aws(f),
        other => FrontendError::Stack(other.to_string()),
    }
}

/// Outputs of the nested stacks of `stack`, by logical id.
async fn nested_outputs(
    clients: &Clients,
    stack: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, FrontendError> {
    let nested = crate::cfn::observe::nested_outputs(&clients.cfn, stack)
        .await
        .map_err(stack_error)?;
    Ok(nested
        .into_iter()
        .map(|(id, outputs)| (id, outputs.into_iter().map(|o| (o.key, o.value)).collect()))
        .collect())
}

/// The output names deploy-frontend and `config` take: the site's bucket,
/// distribution and URL, the default `aws-config.js`'s four when no
/// `[[frontend.config]]` replaces it, and every `output:` a config names.
fn wanted(settings: &Settings) -> Vec<&str> {
    let names = &settings.frontend.outputs;
    let mut wanted = vec![
        names.bucket.as_str(),
        names.distribution_id.as_str(),
        names.url.as_str(),
    ];
    if settings.frontend.config.is_empty() {
        wanted.extend([
            names.api_url.as_str(),
            names.user_pool_id.as_str(),
            names.user_pool_client_id.as_str(),
        ]);
    }
    for c in &settings.frontend.config {
        wanted.extend(c.values.iter().filter_map(|(_, v)| match v {
            crate::config::ValueSource::Output(n) => Some(n.as_str()),
            _ => None,
        }));
    }
    // Each name once (a config value may name the bucket's output too), in order.
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|n| seen.insert(*n));
    wanted
}

/// Reads the outputs the site needs; every missing or empty one is named.
pub async fn read_outputs(
    clients: &Clients,
    settings: &Settings,
) -> Result<StackValues, FrontendError> {
    let stack = &settings.frontend.stack_name;
    let view = crate::cfn::describe(&clients.cfn, stack)
        .await
        .map_err(stack_error)?
        .ok_or_else(|| FrontendError::NoStack {
            stack: stack.clone(),
        })?;
    let mut outputs = StackOutputs {
        root: view.outputs.into_iter().map(|o| (o.key, o.value)).collect(),
        nested: BTreeMap::new(),
    };
    let wanted = wanted(settings);
    if wanted.iter().any(|n| outputs.find(stack, n).is_err()) {
        outputs.nested = nested_outputs(clients, stack).await?;
    }
    let mut missing = Vec::new();
    for n in &wanted {
        match outputs.find(stack, n) {
            Ok(_) => {}
            Err(Lookup::Missing(_)) => missing.push(n.to_string()),
            Err(Lookup::Ambiguous(stacks)) => {
                return Err(FrontendError::AmbiguousOutput {
                    name: n.to_string(),
                    stacks,
                })
            }
        }
    }
    if !missing.is_empty() {
        let nested: Vec<&str> = outputs.nested.keys().map(String::as_str).collect();
        let stack = if nested.is_empty() {
            stack.clone()
        } else {
            format!("{stack} (nor its nested stacks {})", nested.join(", "))
        };
        return Err(FrontendError::MissingOutputs {
            stack,
            names: missing,
        });
    }
    let get = |n: &str| outputs.find(stack, n).unwrap_or_default().to_string();
    let names = &settings.frontend.outputs;
    Ok(StackValues {
        stack: stack.clone(),
        api_url: get(&names.api_url),
        user_pool_id: get(&names.user_pool_id),
        user_pool_client_id: get(&names.user_pool_client_id),
        bucket: get(&names.bucket),
        distribution_id: get(&names.distribution_id),
        url: get(&names.url),
        region: clients.region().to_string(),
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> StackOutputs {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        StackOutputs {
            root: m(&[("Bucket", "site"), ("Empty", " ")]),
            nested: BTreeMap::from([
                (
                    "Auth".to_string(),
                    m(&[("UserPoolId", "eu_1"), ("Shared", "x")]),
                ),
                (
                    "Cdn".to_string(),
                    m(&[("DistributionId", "E1"), ("Shared", "y"), ("Same", "z")]),
                ),
                ("Api".to_string(), m(&[("Same", "z")])),
            ]),
        }
    }

    #[test]
    fn outputs_come_from_the_root_then_the_one_nested_stack_that_has_them() {
        let o = outputs();
        assert_eq!(o.find("app", "Bucket"), Ok("site"));
        assert_eq!(o.find("app", "UserPoolId"), Ok("eu_1"));
        assert_eq!(o.find("app", "DistributionId"), Ok("E1"));
        assert_eq!(o.find("app", "Same"), Ok("z"));
        assert_eq!(
            o.find("app", "Shared"),
            Err(Lookup::Ambiguous(vec!["Auth".into(), "Cdn".into()]))
        );
        assert_eq!(
            o.find("app", "Empty"),
            Err(Lookup::Missing(vec![
                "app".into(),
                "Api".into(),
                "Auth".into(),
                "Cdn".into()
            ]))
        );
    }
}
