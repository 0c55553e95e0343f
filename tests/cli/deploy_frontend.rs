//! `artifact deploy-frontend` and `artifact config-js` against the local AWS server.

use artifact::frontend::FrontendReport;
use serde_json::json;

use crate::common::{assert_failure, assert_success, Sample};
use crate::local_aws::{artifact_aws_env, boto, unique};

const NO_CACHE: &str = "no-cache, no-store, must-revalidate";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The sample with a stack whose outputs name a real bucket and distribution
/// (made in setup: the local server's CloudFormation has no CloudFront or Cognito).
pub(crate) struct Site {
    pub(crate) sample: Sample,
    pub(crate) name: String,
    pub(crate) bucket: String,
    pub(crate) distribution: String,
}

pub(crate) const STACK_SCRIPT: &str = r#"
name, bucket = sys.argv[1], sys.argv[2]
values = json.loads(sys.argv[3])
s3.create_bucket(Bucket=bucket)
cf = boto3.client('cloudfront')
dist = cf.create_distribution(DistributionConfig={
    'CallerReference': name, 'Comment': '', 'Enabled': True,
    'Origins': {'Quantity': 1, 'Items': [{'Id': 'o', 'DomainName': bucket + '.s3.amazonaws.com',
                'S3OriginConfig': {'OriginAccessIdentity': ''}}]},
    'DefaultCacheBehavior': {'TargetOriginId': 'o', 'ViewerProtocolPolicy': 'redirect-to-https',
                'ForwardedValues': {'QueryString': False, 'Cookies': {'Forward': 'none'}},
                'MinTTL': 0, 'TrustedSigners': {'Enabled': False, 'Quantity': 0}},
})['Distribution']
outputs = {
    'ApiGatewayUrl': 'https://abc123.execute-api.us-east-1.amazonaws.com/prod',
    'UserPoolId': 'us-east-1_AbCdEf123',
    'UserPoolClientId': '4example5client6id',
    'FrontendBucketName': bucket,
    'CloudFrontDistributionId': dist['Id'],
    'CloudFrontUrl': 'https://' + dist['DomainName'],
}
outputs.update(values)
outputs = {k: v for k, v in outputs.items() if v is not None}
template = {
    'Parameters': {k: {'Type': 'String'} for k in outputs},
    'Resources': {'Topic': {'Type': 'AWS::SNS::Topic'}},
    'Outputs': {k: {'Value': {'Ref': k}} for k in outputs},
}
cfn.create_stack(StackName=name + '-dev', TemplateBody=json.dumps(template),
                 Parameters=[{'ParameterKey': k, 'ParameterValue': v} for k, v in outputs.items()])
print(json.dumps(dist['Id']))
"#;

impl Site {
    pub(crate) fn new() -> Site {
        Site::with_outputs(json!({}))
    }

    /// `overrides` replaces output values; `null` leaves an output out.
    pub(crate) fn with_outputs(overrides: serde_json::Value) -> Site {
        crate::local_aws::server();
        let name = unique("f");
        let bucket = format!("{name}-site");
        let distribution = boto(STACK_SCRIPT, &[&name, &bucket, &overrides.to_string()])
            .as_str()
            .unwrap()
            .to_string();
        Site {
            sample: Sample::new(),
            name,
            bucket,
            distribution,
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> std::process::Output {
        artifact_aws_env(
            self.sample.dir.path(),
            args,
            &[("PROJECT_NAME", &self.name)],
        )
    }

    pub(crate) fn deploy(&self, extra: &[&str]) -> FrontendReport {
        let mut args = vec!["deploy-frontend", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub(crate) fn head(&self, key: &str) -> serde_json::Value {
        boto(
            "h = s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])\nprint(json.dumps({'cc': h.get('CacheControl'), 'ct': h.get('ContentType')}))",
            &[&self.bucket, key],
        )
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        let v = boto(
            "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []))))",
            &[&self.bucket],
        );
        serde_json::from_value(v).unwrap()
    }

    /// A new release: the JS chunk gets a new hash, index.html points at it.
    pub(crate) fn release(&self, n: u32) {
        let dist = self.sample.path("frontend/dist");
        for e in std::fs::read_dir(dist.join("assets")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "js") {
                std::fs::remove_file(p).unwrap();
            }
        }
        let chunk = format!("index-r{n}.js");
        std::fs::write(
            dist.join("assets").join(&chunk),
            format!("console.log({n});\n"),
        )
        .unwrap();
        let html = std::fs::read_to_string(dist.join("index.html")).unwrap();
        let start = html.find("/assets/index-").unwrap();
        let end = start + html[start..].find(".js").unwrap() + 3;
        let html = format!("{}/assets/{chunk}{}", &html[..start], &html[end..]);
        std::fs::write(dist.join("index.html"), html).unwrap();
    }
}

#[test]
fn a_first_deploy_uploads_everything_with_rules_and_invalidates_entry_points() {
    let s = Site::new();
    let r = s.deploy(&[]);
    assert_eq!(r.uploaded.files, 5, "four built files and aws-config.js");
    assert_eq!(r.bucket, s.bucket);
    assert_eq!(r.distribution_id, s.distribution);
    assert_eq!(s.head("index.html")["cc"], NO_CACHE);
    assert_eq!(s.head("aws-config.js")["cc"], NO_CACHE);
    assert_eq!(s.head("assets/index-4f2a9c1e.js")["cc"], IMMUTABLE);
    assert_eq!(s.head("favicon.svg")["ct"], "image/svg+xml; charset=utf-8");
    let inv = r.invalidation.unwrap();
    assert_eq!(inv.paths, ["/", "/aws-config.js", "/index.html"]);
    assert!(inv.id.is_some());
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.sample.path("deployment-summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["bucket"], s.bucket.as_str());
    assert_eq!(
        summary["invalidation"]["paths"],
        json!(["/", "/aws-config.js", "/index.html"])
    );
    assert!(summary["url"].as_str().unwrap().starts_with("https://"));
    let out = s.run(&["deploy-frontend"]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("frontend: https://"));
}

#[test]
fn a_redeploy_with_nothing_changed_uploads_and_invalidates_nothing() {
    let s = Site::new();
    s.deploy(&[]);
    let r = s.deploy(&[]);
    assert_eq!(
        r.uploaded.files + r.headers_updated.files + r.deleted.files,
        0
    );
    assert_eq!(r.unchanged.files, 5);
    assert!(r.invalidation.is_none());
    assert!(!r.requests.contains_key("CloudFront.CreateInvalidation"));
    assert!(!r.requests.contains_key("S3.PutObject"), "{:?}", r.requests);
    let total: u64 = r.requests.values().sum();
    assert!(total <= 5, "{total} requests: {:?}", r.requests);
}

#[test]
fn replaced_chunks_stay_one_release_then_go() {
    let s = Site::new();
    s.deploy(&[]);
    s.release(2);
    let r = s.deploy(&[]);
    assert_eq!(r.uploaded.files, 2, "the new chunk and index.html");
    assert_eq!(r.deleted.files, 0);
    assert_eq!(r.kept_from_previous, 1);
    assert_eq!(r.invalidation.unwrap().paths, ["/", "/index.html"]);
    assert!(
        s.keys().contains(&"assets/index-4f2a9c1e.js".to_string()),
        "an open tab still needs it"
    );
    // A retried deploy of the same release is not a new release: the
    // previous one's chunk stays.
    let r = s.deploy(&[]);
    assert_eq!((r.uploaded.files, r.deleted.files), (0, 0));
    assert!(s.keys().contains(&"assets/index-4f2a9c1e.js".to_string()));

    s.release(3);
    let r = s.deploy(&[]);
    assert_eq!(r.deleted.files, 1);
    let keys = s.keys();
    assert!(!keys.contains(&"assets/index-4f2a9c1e.js".to_string()));
    assert!(keys.contains(&"assets/index-r2.js".to_string()));
    assert!(keys.contains(&"assets/index-r3.js".to_string()));
    // The immutable chunk that went needs no invalidation; index.html does.
    assert_eq!(r.invalidation.unwrap().paths, ["/", "/index.html"]);

    // Keeping no earlier deployment deletes the previous chunk at once.
    s.release(4);
    let r = s.deploy(&["--keep-previous", "0"]);
    assert_eq!(r.deleted.files, 2, "r2 (from the kept release) and r3");
}

#[test]
fn a_missing_output_is_named_and_nothing_is_uploaded() {
    let s = Site::with_outputs(json!({"UserPoolId": null, "CloudFrontUrl": "  "}));
    let out = s.run(&["deploy-frontend"]);
    let err = assert_failure(&out);
    assert!(err.contains("UserPoolId"), "{err}");
    assert!(err.contains("CloudFrontUrl"), "{err}");
    assert!(err.contains(&format!("stack {}-dev", s.name)), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(s.keys().is_empty());
}

#[test]
fn hostile_output_values_cannot_break_out_of_aws_config_js() {
    let hostile =
        "us-east-1_\"quote\\backslash\nnewline</script><script>alert(1)</script>\u{2028}&amp;";
    let s = Site::with_outputs(
        json!({"UserPoolId": hostile, "ApiGatewayUrl": "https://x/'; alert(2); '"}),
    );
    let out = s.run(&["config-js", "-o", "aws-config.js"]);
    assert_success(&out);
    let text = std::fs::read_to_string(s.sample.path("aws-config.js")).unwrap();
    assert!(!text.contains("</script>"), "{text}");
    let script = r#"
const vm = require('vm');
const fs = require('fs');
const sandbox = { window: {} };
vm.runInNewContext(fs.readFileSync(process.argv[1], 'utf8'), sandbox);
process.stdout.write(JSON.stringify(sandbox.window.AWS_CONFIG));
"#;
    let node = std::process::Command::new("node")
        .args(["-e", script])
        .arg(s.sample.path("aws-config.js"))
        .output()
        .expect("node is needed to evaluate aws-config.js");
    assert!(
        node.status.success(),
        "{}",
        String::from_utf8_lossy(&node.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&node.stdout).unwrap();
    assert_eq!(
        got,
        json!({
            "Auth": {"Cognito": {
                "userPoolId": hostile,
                "userPoolClientId": "4example5client6id",
                "region": "us-east-1"
            }},
            "API": {"REST": {
                "endpoint": "https://x/'; alert(2); '",
                "region": "us-east-1"
            }}
        })
    );
    // Also inside an HTML page: the script element is not closed early.
    assert_eq!(text.matches("</").count(), 0);
}

#[test]
fn invalidate_modes_and_wait() {
    let s = Site::new();
    let r = s.deploy(&["--invalidate", "none"]);
    assert!(r.invalidation.is_none());
    let r = s.deploy(&["--invalidate", "all", "--wait"]);
    let inv = r.invalidation.unwrap();
    assert_eq!(inv.paths, ["/*"]);
    assert_eq!(inv.status.as_deref(), Some("Completed"));
    // Standard mode: CloudFormation waited for the distribution already.
    assert_eq!(inv.distribution_status, None);
    assert!(!r.requests.contains_key("CloudFront.GetDistribution"));
}

/// The local server's distributions made after this say `InProgress` until
/// their third read (CreateInvalidation reads one, then GetDistribution
/// twice): moto's state manager, for the whole server, and only an
/// express-mode `--wait` reads a distribution's status.
fn distributions_deploy_after_one_read(on: bool) {
    let call = if on {
        "set-transition', data=json.dumps({'model_name': 'cloudfront::distribution', 'transition': {'progression': 'manual', 'times': 3}}).encode()"
    } else {
        "unset-transition', data=json.dumps({'model_name': 'cloudfront::distribution'}).encode()"
    };
    boto(
        &format!("import os, urllib.request\nurllib.request.urlopen(urllib.request.Request(os.environ['AWS_ENDPOINT_URL'] + '/moto-api/state-manager/{call}, method='POST'))\nprint('null')"),
        &[],
    );
}

/// Express mode: CloudFormation reports the stack done before CloudFront
/// has deployed its distribution, so `--wait` first waits for `Deployed`.
#[test]
fn express_mode_waits_for_the_distribution_before_the_invalidation() {
    // Set before the distribution is made: once Deployed, it stays so.
    crate::local_aws::server();
    distributions_deploy_after_one_read(true);
    let s = Site::new();
    s.sample.edit("artifact.toml", |t| {
        format!("{t}\n[environments.dev.infra]\nmode = \"express\"\n")
    });
    let out = s.run(&["deploy-frontend", "--json", "--invalidate", "all", "--wait"]);
    distributions_deploy_after_one_read(false);
    assert_success(&out);
    let r: FrontendReport = serde_json::from_slice(&out.stdout).unwrap();
    let inv = r.invalidation.unwrap();
    assert_eq!(inv.distribution_status.as_deref(), Some("Deployed"));
    assert_eq!(inv.status.as_deref(), Some("Completed"));
    let reads = r.requests.get("CloudFront.GetDistribution").copied();
    assert!(
        reads >= Some(2),
        "InProgress, then Deployed: {:?}",
        r.requests
    );
}

#[test]
fn dry_run_and_a_missing_build() {
    let s = Site::new();
    let r = s.deploy(&["--dry-run"]);
    assert_eq!(r.uploaded.files, 5);
    assert!(s.keys().is_empty());
    crate::common::assert_only_reads(&r.requests);
    let plan = r.plan.expect("the plan is in the report");
    assert_eq!(plan.sync.entry_points.len(), 2, "{:?}", plan.sync);
    assert!(plan.records_history);
    assert!(!s.sample.path("deployment-summary.json").exists());
    // A release later: deletes and an invalidation planned, still only reads.
    s.deploy(&[]);
    s.release(2);
    s.deploy(&[]);
    s.release(3);
    let keys = s.keys();
    let r = s.deploy(&["--dry-run"]);
    crate::common::assert_only_reads(&r.requests);
    assert_eq!(r.deleted.files, 1);
    assert!(r.invalidation.is_some());
    assert_eq!(s.keys(), keys);
    let out = s.run(&["deploy-frontend", "--dist", "nope"]);
    let err = assert_failure(&out);
    assert!(err.contains("nope does not exist"), "{err}");
    assert!(err.contains("hint: build the frontend first"), "{err}");
}

#[test]
fn config_js_dry_run_prints_and_writes_nothing() {
    let s = Site::new();
    let out = s.run(&["config-js", "-o", "public/aws-config.js", "--dry-run"]);
    assert_success(&out);
    assert!(!s.sample.path("public/aws-config.js").exists());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("execute-api.us-east-1.amazonaws.com"),
        "{text}"
    );
    let out = s.run(&["config-js", "-o", "public/aws-config.js"]);
    assert_success(&out);
    assert_eq!(
        std::fs::read_to_string(s.sample.path("public/aws-config.js")).unwrap(),
        text
    );
}

#[test]
fn an_invalidation_that_fails_is_left_pending_for_the_next_run() {
    let s = Site::with_outputs(json!({"CloudFrontDistributionId": "EDOESNOTEXIST1"}));
    let out = s.run(&["deploy-frontend"]);
    let err = assert_failure(&out);
    assert!(err.contains("CreateInvalidation"), "{err}");
    let pending = boto(
        "h = json.loads(s3.get_object(Bucket=sys.argv[1], Key='.artifact-deployments.json')['Body'].read())\nprint(json.dumps(h.get('pending_invalidation', [])))",
        &[&s.bucket],
    );
    assert_eq!(
        pending,
        json!(["/", "/aws-config.js", "/index.html"]),
        "recorded before the invalidation"
    );
    // The next run has nothing to upload but still owes the invalidation.
    let out = s.run(&["deploy-frontend", "--dry-run", "--json"]);
    assert_success(&out);
    let r: FrontendReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.uploaded.files, 0);
    let owed = ["/", "/aws-config.js", "/index.html"];
    assert_eq!(r.invalidation.unwrap().paths, owed);
    assert_eq!(r.plan.unwrap().pending_from_earlier, owed);
}

/// Two releases deployed at once on one site (release pipelines overlap):
/// the second waits for the first's lock, so neither loses the other's new
/// chunk or history record.
#[test]
fn two_deploys_started_together_lose_nothing_of_either() {
    let s = Site::new();
    let deployment = format!("{}-deployment-dev", s.name);
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&deployment]);
    s.deploy(&[]);
    let other = Sample::new();
    crate::common::copy_tree(s.sample.dir.path(), other.dir.path());
    let second = Site {
        sample: other,
        name: s.name.clone(),
        bucket: s.bucket.clone(),
        distribution: s.distribution.clone(),
    };
    s.release(2);
    second.release(3);
    let spawn = |site: &Site| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"));
        crate::local_aws::aws_env(&mut cmd)
            .env("PROJECT_NAME", &site.name)
            .args(["deploy-frontend", "--timeout", "120s"])
            .current_dir(site.sample.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&s), spawn(&second));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_success(&a);
    assert_success(&b);
    let keys = s.keys();
    for chunk in ["assets/index-r2.js", "assets/index-r3.js"] {
        assert!(keys.contains(&chunk.to_string()), "{chunk} lost: {keys:?}");
    }
    // index.html names a chunk that is there.
    let html = boto(
        "print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key='index.html')['Body'].read().decode()))",
        &[&s.bucket],
    );
    let html = html.as_str().unwrap();
    assert!(
        html.contains("index-r2.js") || html.contains("index-r3.js"),
        "{html}"
    );
    let index = boto(
        "print(json.dumps(json.loads(s3.get_object(Bucket=sys.argv[1], Key='deployments/site-index.json')['Body'].read())))",
        &[&deployment],
    );
    let releases = index["deployments"].as_array().unwrap();
    assert_eq!(
        releases.len(),
        3,
        "every release is in the site history: {index:#}"
    );
    // One of the two waited for the other, and said so.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(said.contains("waiting for site"), "{said}");
}
