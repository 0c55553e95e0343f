//! The stack outputs deploy-frontend and config-js need, read with
//! DescribeStacks; every missing or empty one is named.

use std::collections::HashMap;

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

/// Reads the six outputs; every missing or empty one is named.
pub async fn read_outputs(
    clients: &Clients,
    settings: &Settings,
) -> Result<StackValues, FrontendError> {
    let stack = &settings.frontend.stack_name;
    let view = crate::cfn::describe(&clients.cfn, stack)
        .await
        .map_err(|e| match e {
            crate::cfn::InfraError::Sync(e) => FrontendError::Sync(e),
            crate::cfn::InfraError::Aws(f) => FrontendError::Aws(f),
            other => FrontendError::Stack(other.to_string()),
        })?
        .ok_or_else(|| FrontendError::NoStack {
            stack: stack.clone(),
        })?;
    let outputs: HashMap<String, String> =
        view.outputs.into_iter().map(|o| (o.key, o.value)).collect();
    let names = &settings.frontend.outputs;
    let mut missing = Vec::new();
    let mut get = |name: &str| match outputs.get(name).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => {
            missing.push(name.to_string());
            String::new()
        }
    };
    let values = StackValues {
        stack: stack.clone(),
        api_url: get(&names.api_url),
        user_pool_id: get(&names.user_pool_id),
        user_pool_client_id: get(&names.user_pool_client_id),
        bucket: get(&names.bucket),
        distribution_id: get(&names.distribution_id),
        url: get(&names.url),
        region: clients.region().to_string(),
    };
    if !missing.is_empty() {
        return Err(FrontendError::MissingOutputs {
            stack: stack.clone(),
            names: missing,
        });
    }
    Ok(values)
}
