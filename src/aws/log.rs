//! The request log: with `ARTIFACT_REQUEST_LOG=FILE`, every AWS request sent
//! (retries included) adds one JSON line to FILE naming what IAM decides on:
//! the operation, method, URL path and query, the copy source, the keys a
//! batch delete names, and the stack, change set, role, metric namespace and
//! KMS key an operation names. Never a header value beyond the copy source, never
//! credentials, parameter values or object bytes. `artifact policy --check
//! FILE` tells whether the generated policy allows each line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use aws_sdk_s3::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::{Deserialize, Serialize};

/// The environment variable that turns the log on.
pub const REQUEST_LOG_VAR: &str = "ARTIFACT_REQUEST_LOG";

/// One request as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// `Service.Operation`, e.g. `S3.PutObject`.
    pub op: String,
    pub method: String,
    /// Scheme, host and path, percent-encoded as sent.
    pub url: String,
    /// The query string as sent (S3 list prefixes, Lambda versions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// `x-amz-copy-source`: `bucket/key`, percent-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_source: Option<String>,
    /// The keys of an S3 batch delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// StackName, ChangeSetName, RoleARN of a CloudFormation call; Namespace of
    /// PutMetricData; KeyId of a KMS call.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// The parameters of form-encoded (query protocol) bodies worth logging.
const FORM_PARAMS: [&str; 3] = ["StackName", "ChangeSetName", "RoleARN"];

/// The interceptor that writes the log.
#[derive(Debug, Clone)]
pub struct RequestLog {
    path: PathBuf,
}

impl RequestLog {
    /// The log asked for by the environment, if any.
    pub fn from_env() -> Option<RequestLog> {
        std::env::var_os(REQUEST_LOG_VAR)
            .filter(|v| !v.is_empty())
            .map(|v| RequestLog { path: v.into() })
    }

    fn append(&self, line: &LoggedRequest) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(
                "could not add to the request log {}: {e}",
                self.path.display()
            );
        }
    }
}

/// The namespace of a PutMetricData, carried from its input to its request.
#[derive(Debug, Clone)]
struct Namespace(String);

impl Storable for Namespace {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataInput;
        if let Some(ns) = context
            .input()
            .downcast_ref::<PutMetricDataInput>()
            .and_then(|i| i.namespace())
        {
            cfg.interceptor_state().store_put(Namespace(ns.to_string()));
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let op = super::operation_name(cfg);
        let (url, query) = req.uri().split_once('?').unwrap_or((req.uri(), ""));
        let body = req.body().bytes().unwrap_or_default();
        let mut params = BTreeMap::new();
        if req
            .headers()
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
        {
            params = form_params(body, &FORM_PARAMS);
        }
        if req
            .headers()
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/x-amz-json"))
        {
            if let Some(key) = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("KeyId")?.as_str().map(str::to_string))
            {
                params.insert("KeyId".into(), key);
            }
        }
        if let Some(ns) = cfg.load::<Namespace>() {
            params.insert("Namespace".into(), ns.0.clone());
        }
        let keys = if op == "S3.DeleteObjects" {
            delete_keys(body)
        } else {
            Vec::new()
        };
        self.append(&LoggedRequest {
            op,
            method: req.method().to_string(),
            url: url.to_string(),
            query: query.to_string(),
            copy_source: req.headers().get("x-amz-copy-source").map(str::to_string),
            keys,
            params,
        });
        Ok(())
    }
}

/// The named fields of a form-encoded body, decoded.
pub fn form_params(body: &[u8], wanted: &[&str]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| wanted.contains(k))
        .map(|(k, v)| (k.to_string(), percent_decode(&v.replace('+', " "))))
        .collect()
}

/// `%XX` sequences decoded (anything malformed is kept as it is).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `<Key>` values of an S3 DeleteObjects body, unescaped.
pub fn delete_keys(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    text.split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(k, _)| k))
        .map(|k| {
            k.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_give_only_the_named_fields_decoded() {
        let body = b"Action=CreateChangeSet&StackName=app-dev&ChangeSetName=artifact-1&RoleARN=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fcfn&Parameters.member.1.ParameterValue=s3cr3t";
        let p = form_params(body, &FORM_PARAMS);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p["RoleARN"], "arn:aws:iam::123456789012:role/cfn");
        assert_eq!(p["ChangeSetName"], "artifact-1");
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn batch_delete_keys_are_read_from_the_body() {
        let body = b"<Delete><Object><Key>a&amp;b.txt</Key></Object><Object><Key>dir/c</Key></Object><Quiet>true</Quiet></Delete>";
        assert_eq!(delete_keys(body), vec!["a&b.txt", "dir/c"]);
    }
}
