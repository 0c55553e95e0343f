//! A request log against a policy: each logged AWS request becomes the IAM
//! requests AWS would authorize (action, resource ARN, condition keys), and
//! each must be allowed; actions the policy grants that no request made are
//! listed as unused.

use std::collections::BTreeSet;

use serde::Serialize;

use super::document::{PolicyDocument, PolicyInputs};
use super::eval::{allows, IamRequest};
use crate::aws::log::{percent_decode, LoggedRequest};

fn iam(action: String, resource: String, context: &[(&str, String)]) -> IamRequest {
    IamRequest {
        action,
        resource,
        context: context
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// Host and decoded path segments of a logged URL.
fn host_and_path(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split_once('/').unwrap_or((rest, ""))
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

/// The bucket and key of an S3 URL, path-style or virtual-hosted.
fn s3_location(url: &str) -> (String, String) {
    let (host, path) = host_and_path(url);
    let virtual_host = host
        .find(".s3.")
        .or_else(|| host.find(".s3-"))
        .filter(|_| !host.starts_with("s3."));
    match virtual_host {
        Some(i) => (host[..i].to_string(), percent_decode(path)),
        None => {
            let (b, k) = path.split_once('/').unwrap_or((path, ""));
            (percent_decode(b), percent_decode(k))
        }
    }
}

/// What AWS authorizes for one logged request, in `partition`, `region` and
/// `account`.
pub fn iam_requests(r: &LoggedRequest, inputs: &PolicyInputs) -> Vec<IamRequest> {
    let (service, op) = r.op.split_once('.').unwrap_or(("", &r.op));
    let (partition, region, account) = (&inputs.partition, &inputs.region, &inputs.account);
    let regional =
        |svc: &str, rest: &str| format!("arn:{partition}:{svc}:{region}:{account}:{rest}");
    match service {
        "S3" => s3_requests(op, r, partition),
        "CloudFormation" => {
            let p = &r.params;
            let resource = match p.get("StackName") {
                Some(s) if s.starts_with("arn:") => s.clone(),
                Some(s) => regional("cloudformation", &format!("stack/{s}/id")),
                None => "*".into(),
            };
            let mut context = vec![];
            if let Some(cs) = p.get("ChangeSetName") {
                let name = cs
                    .split_once(":changeSet/")
                    .map_or(cs.as_str(), |(_, rest)| {
                        rest.split('/').next().unwrap_or(rest)
                    });
                context.push(("cloudformation:ChangeSetName", name.to_string()));
            }
            let mut out = vec![iam(format!("cloudformation:{op}"), resource, &context)];
            if let Some(role) = p.get("RoleARN") {
                let service = (
                    "iam:PassedToService",
                    "cloudformation.amazonaws.com".to_string(),
                );
                out.push(iam("iam:PassRole".into(), role.clone(), &[service]));
            }
            out
        }
        "Lambda" => {
            let (_, path) = host_and_path(&r.url);
            let parts: Vec<String> = path.split('/').map(percent_decode).collect();
            let resource = match (parts.get(1).map(String::as_str), parts.get(2)) {
                (Some("functions"), Some(f)) if f.starts_with("arn:") => f.clone(),
                (Some("functions"), Some(f)) => regional("lambda", &format!("function:{f}")),
                (Some("layers"), Some(_)) if op == "ListLayerVersions" => "*".into(),
                // GetLayerVersion: /layers/<name>/versions/<n>, a version's ARN.
                (Some("layers"), Some(l)) => match (parts.get(3).map(String::as_str), parts.get(4))
                {
                    (Some("versions"), Some(n)) => regional("lambda", &format!("layer:{l}:{n}")),
                    _ => regional("lambda", &format!("layer:{l}")),
                },
                _ => "*".into(),
            };
            vec![iam(format!("lambda:{op}"), resource, &[])]
        }
        "CloudFront" => {
            let (_, path) = host_and_path(&r.url);
            let id = path.split('/').nth(2).unwrap_or_default();
            let resource = format!("arn:{partition}:cloudfront::{account}:distribution/{id}");
            vec![iam(format!("cloudfront:{op}"), resource, &[])]
        }
        "KMS" => {
            let key = r.params.get("KeyId").cloned().unwrap_or_default();
            let (resource, context) = kms_resource(&key, inputs);
            vec![iam(format!("kms:{op}"), resource, &context)]
        }
        "CloudWatch" => {
            let ns = r.params.get("Namespace").cloned().unwrap_or_default();
            vec![iam(
                format!("cloudwatch:{op}"),
                "*".into(),
                &[("cloudwatch:namespace", ns)],
            )]
        }
        // GetCallerIdentity needs no permission: IAM always allows it.
        "STS" if op == "GetCallerIdentity" => Vec::new(),
        _ => vec![iam(r.op.clone(), "*".into(), &[])],
    }
}

/// The key ARN a KMS call names, and the alias it was named by, if any.
pub(super) fn kms_resource(key: &str, i: &PolicyInputs) -> (String, Vec<(&'static str, String)>) {
    let (p, region, account) = (&i.partition, &i.region, &i.account);
    if let Some(alias) = key
        .split_once(":alias/")
        .map(|(_, a)| format!("alias/{a}"))
        .or_else(|| key.starts_with("alias/").then(|| key.to_string()))
    {
        return (
            format!("arn:{p}:kms:{region}:{account}:key/*"),
            vec![("kms:RequestAlias", alias)],
        );
    }
    if key.starts_with("arn:") {
        return (key.to_string(), vec![]);
    }
    (format!("arn:{p}:kms:{region}:{account}:key/{key}"), vec![])
}

fn s3_requests(op: &str, r: &LoggedRequest, partition: &str) -> Vec<IamRequest> {
    let (bucket, key) = s3_location(&r.url);
    let object = |b: &str, k: &str| format!("arn:{partition}:s3:::{b}/{k}");
    let bucket_arn = format!("arn:{partition}:s3:::{bucket}");
    let one = |action: &str, resource: String| vec![iam(format!("s3:{action}"), resource, &[])];
    match op {
        "GetObject" | "HeadObject" => one("GetObject", object(&bucket, &key)),
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            one("PutObject", object(&bucket, &key))
        }
        "AbortMultipartUpload" => one("AbortMultipartUpload", object(&bucket, &key)),
        "DeleteObject" => one("DeleteObject", object(&bucket, &key)),
        "DeleteObjects" => r
            .keys
            .iter()
            .map(|k| iam("s3:DeleteObject".into(), object(&bucket, k), &[]))
            .collect(),
        "CopyObject" => {
            let source = percent_decode(r.copy_source.as_deref().unwrap_or_default());
            let source = source.trim_start_matches('/');
            let source = source.split_once("?versionId=").map_or(source, |(s, _)| s);
            let (sb, sk) = source.split_once('/').unwrap_or((source, ""));
            vec![
                iam("s3:PutObject".into(), object(&bucket, &key), &[]),
                iam("s3:GetObject".into(), object(sb, sk), &[]),
            ]
        }
        "ListObjectsV2" | "ListObjects" => {
            let prefix = query_value(&r.query, "prefix").unwrap_or_default();
            vec![iam(
                "s3:ListBucket".into(),
                bucket_arn,
                &[("s3:prefix", prefix)],
            )]
        }
        "HeadBucket" => one("ListBucket", bucket_arn),
        "ListMultipartUploads" => one("ListBucketMultipartUploads", bucket_arn),
        other => one(other, bucket_arn),
    }
}

/// A log checked against a policy.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Logged requests read.
    pub requests: usize,
    /// Authorizations checked (a copy is two, a batch delete one per key).
    pub authorizations: usize,
    /// What the policy does not allow, each once, with the operation that needed it.
    pub denied: Vec<(String, IamRequest)>,
    /// Actions the policy grants that no request made.
    pub unused: Vec<String>,
    /// Every action the requests needed, allowed or not.
    pub made: Vec<String>,
}

/// Checks every line of `log` against `policy`.
pub fn check(log: &[LoggedRequest], policy: &PolicyDocument, inputs: &PolicyInputs) -> CheckReport {
    let mut denied = BTreeSet::new();
    let mut made = BTreeSet::new();
    let mut authorizations = 0;
    for r in log {
        for req in iam_requests(r, inputs) {
            authorizations += 1;
            made.insert(req.action.to_ascii_lowercase());
            if allows(policy, &req).is_none() {
                denied.insert((r.op.clone(), req));
            }
        }
    }
    let unused = policy
        .statements
        .iter()
        .flat_map(|s| s.actions.iter())
        .filter(|a| !made.contains(&a.to_ascii_lowercase()))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    CheckReport {
        requests: log.len(),
        authorizations,
        denied: denied.into_iter().collect(),
        unused,
        made: made.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn inputs() -> PolicyInputs {
        PolicyInputs {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            cache: None,
            sync_to: None,
            metrics: None,
            site_bucket: None,
            nested_stacks: false,
        }
    }

    fn logged(op: &str, method: &str, url: &str, query: &str) -> LoggedRequest {
        LoggedRequest {
            op: op.into(),
            method: method.into(),
            url: url.into(),
            query: query.into(),
            copy_source: None,
            keys: vec![],
            params: BTreeMap::new(),
        }
    }

    #[test]
    fn s3_requests_name_objects_buckets_and_prefixes() {
        let i = inputs();
        let r = logged(
            "S3.HeadObject",
            "HEAD",
            "http://127.0.0.1:5000/b/lambda/a%20b.zip",
            "",
        );
        assert_eq!(
            iam_requests(&r, &i)[0].resource,
            "arn:aws:s3:::b/lambda/a b.zip"
        );
        assert_eq!(iam_requests(&r, &i)[0].action, "s3:GetObject");
        let r = logged(
            "S3.ListObjectsV2",
            "GET",
            "https://b.s3.us-east-1.amazonaws.com/",
            "list-type=2&prefix=cfn%2F",
        );
        let got = &iam_requests(&r, &i)[0];
        assert_eq!(
            (got.action.as_str(), got.resource.as_str()),
            ("s3:ListBucket", "arn:aws:s3:::b")
        );
        assert_eq!(got.context["s3:prefix"], "cfn/");
        let mut r = logged(
            "S3.CopyObject",
            "PUT",
            "http://h/b/history/zips/x",
            "x-id=CopyObject",
        );
        r.copy_source = Some("site/assets%2Fa.js".into());
        let got = iam_requests(&r, &i);
        assert_eq!(got[1].resource, "arn:aws:s3:::site/assets/a.js");
        assert_eq!(got[1].action, "s3:GetObject");
        let mut r = logged("S3.DeleteObjects", "POST", "http://h/b/", "delete");
        r.keys = vec!["a".into(), "b".into()];
        assert_eq!(iam_requests(&r, &i).len(), 2);
    }

    #[test]
    fn other_services_name_stacks_functions_layers_and_distributions() {
        let i = inputs();
        let mut r = logged(
            "CloudFormation.CreateChangeSet",
            "POST",
            "https://cloudformation.us-east-1.amazonaws.com/",
            "",
        );
        r.params = BTreeMap::from([
            ("StackName".to_string(), "app-dev".to_string()),
            ("ChangeSetName".to_string(), "artifact-1".to_string()),
            (
                "RoleARN".to_string(),
                "arn:aws:iam::123456789012:role/cfn".to_string(),
            ),
        ]);
        let got = iam_requests(&r, &i);
        assert_eq!(
            got[0].resource,
            "arn:aws:cloudformation:us-east-1:123456789012:stack/app-dev/id"
        );
        assert_eq!(got[0].context["cloudformation:ChangeSetName"], "artifact-1");
        assert_eq!(got[1].action, "iam:PassRole");
        for (op, method, url, resource) in [
            (
                "Lambda.UpdateFunctionCode",
                "PUT",
                "http://h/2015-03-31/functions/app-dev-api/code",
                "arn:aws:lambda:us-east-1:123456789012:function:app-dev-api",
            ),
            (
                "Lambda.ListLayerVersions",
                "GET",
                "http://h/2018-10-31/layers/app-dev-deps/versions",
                "*",
            ),
            (
                "Lambda.PublishLayerVersion",
                "POST",
                "http://h/2018-10-31/layers/app-dev-deps/versions",
                "arn:aws:lambda:us-east-1:123456789012:layer:app-dev-deps",
            ),
            (
                "Lambda.GetLayerVersion",
                "GET",
                "http://h/2018-10-31/layers/app-dev-deps/versions/3",
                "arn:aws:lambda:us-east-1:123456789012:layer:app-dev-deps:3",
            ),
            (
                "CloudFront.CreateInvalidation",
                "POST",
                "http://h/2020-05-31/distribution/E123/invalidation",
                "arn:aws:cloudfront::123456789012:distribution/E123",
            ),
        ] {
            let got = iam_requests(&logged(op, method, url, ""), &i);
            assert_eq!(got[0].resource, resource, "{op}");
        }
    }

    #[test]
    fn kms_keys_are_named_by_arn_or_by_the_alias_asked_for() {
        let i = inputs();
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab";
        assert_eq!(kms_resource(arn, &i), (arn.to_string(), vec![]));
        assert_eq!(
            kms_resource("1234abcd-12ab", &i).0,
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab"
        );
        for alias in [
            "alias/provenance",
            "arn:aws:kms:us-east-1:123456789012:alias/provenance",
        ] {
            assert_eq!(
                kms_resource(alias, &i),
                (
                    "arn:aws:kms:us-east-1:123456789012:key/*".to_string(),
                    vec![("kms:RequestAlias", "alias/provenance".to_string())]
                )
            );
        }
    }
}
