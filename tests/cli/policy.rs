//! The generated IAM policies against what the commands really call: each
//! command runs its scenarios with the request log on (ARTIFACT_REQUEST_LOG),
//! then `artifact policy --check` evaluates every logged request against that
//! command's policy (action, resource ARN, conditions). Every request must be
//! allowed, and every action a policy grants must be made by some scenario.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{assert_failure, assert_success};
use crate::deploy_infra::Project;
use crate::local_aws::{artifact_aws_env, boto, unique};

const NAMESPACE: &str = "Test/Policy";
const MB6: usize = 6 * 1024 * 1024;

/// A project whose commands log their requests, one log per command.
struct Logged {
    p: Project,
    logs: tempfile::TempDir,
    role: String,
}

impl Logged {
    fn new(sample: &str) -> Logged {
        let p = Project::unpacked_of(sample);
        let role = boto(
            "iam = boto3.client('iam')\nprint(json.dumps(iam.create_role(RoleName=sys.argv[1], AssumeRolePolicyDocument='{}')['Role']['Arn']))",
            &[&unique("cfn-role")],
        )
        .as_str()
        .unwrap()
        .to_string();
        boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
        let signing_key = boto(
            "print(json.dumps(boto3.client('kms').create_key(KeyUsage='SIGN_VERIFY', KeySpec='ECC_NIST_P256')['KeyMetadata']['Arn']))",
            &[],
        );
        let signing_key = signing_key.as_str().unwrap().to_string();
        let bucket = p.bucket();
        p.sample.edit("artifact.toml", |t| {
            let t = t.replacen(
                "[pack]\n",
                &format!("[pack]\ncache_url = \"s3://{bucket}/pack-cache\"\n"),
                1,
            );
            format!(
                "{t}\n[history]\nkeep = 5\n\n[metrics]\nnamespace = \"{NAMESPACE}\"\n\n[sync]\nmultipart_threshold = 5242880\npart_size = 5242880\n\n[provenance]\nkms_key = \"{signing_key}\"\n"
            )
        });
        Logged {
            p,
            logs: tempfile::tempdir().unwrap(),
            role,
        }
    }

    fn log(&self, command: &str) -> PathBuf {
        self.logs.path().join(format!("{command}.log"))
    }

    fn env<'a>(&'a self, log: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("PROJECT_NAME", self.p.name.as_str()),
            ("CODEBUILD_RESOLVED_SOURCE_VERSION", "0123456789abcdef0123"),
            ("CLOUDFORMATION_ROLE_ARN", self.role.as_str()),
            ("ARTIFACT_REQUEST_LOG", log),
        ]
    }

    /// Runs `artifact <command> args…`, logging into the command's log.
    fn run(&self, command: &str, args: &[&str]) -> Output {
        let log = self.log(command).display().to_string();
        let mut all = vec![command];
        all.extend_from_slice(args);
        artifact_aws_env(self.p.sample.dir.path(), &all, &self.env(&log))
    }

    fn ok(&self, command: &str, args: &[&str]) {
        assert_success(&self.run(command, args));
    }

    /// `artifact policy --command C --check <C's log> --json`.
    fn check(&self, command: &str, extra: &[&str]) -> serde_json::Value {
        let log = self.log(command).display().to_string();
        let mut args = vec!["policy", "--command", command, "--check", &log, "--json"];
        args.extend_from_slice(extra);
        let out = artifact_aws_env(self.p.sample.dir.path(), &args, &self.env(""));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(doc["denied"], serde_json::json!([]), "{command}: {doc:#}");
        assert!(out.status.success(), "{command}: {doc:#}");
        doc
    }

    fn bucket(&self) -> String {
        self.p.bucket()
    }
}

/// An unfinished multipart upload of `key`, as a killed run leaves one.
fn unfinished_upload(bucket: &str, key: &str) {
    boto(
        "s3.create_multipart_upload(Bucket=sys.argv[1], Key=sys.argv[2])",
        &[bucket, key],
    );
}

fn strings(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Actions granted in any of `reports` that none of them made.
fn unused(reports: &[&serde_json::Value]) -> BTreeSet<String> {
    let made: BTreeSet<String> = reports.iter().flat_map(|r| strings(&r["made"])).collect();
    reports
        .iter()
        .flat_map(|r| strings(&r["unused"]))
        .filter(|a| !made.contains(&a.to_ascii_lowercase()))
        .collect()
}

fn random_file(path: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every command's requests against its generated policy, over scenarios that
/// reach every call: a failed first create replaced, code and template
/// updates, an empty change set, retention, multipart uploads over ones a
/// killed run left, the site released three times, a rollback of both.
#[test]
fn every_request_of_every_command_is_allowed_and_every_grant_is_used() {
    let l = Logged::new("sample");
    let (p, bucket) = (&l.p, l.bucket());
    // A function with a large file, so its zip goes up in parts.
    random_file(&p.sample.path("lambda/blob.bin"), MB6, 1);
    p.sample.edit("artifact.toml", |t| {
        t.replacen(
            "files = [\"build_and_deploy.py\"]",
            "files = [\"build_and_deploy.py\", \"blob.bin\"]",
            1,
        )
    });

    // pack: a cold pack fills the shared cache, a pack on a clean checkout reads it.
    l.ok("pack", &["-q"]);
    std::fs::remove_dir_all(p.sample.path("build")).unwrap();
    std::fs::remove_dir_all(p.sample.path(".artifact-cache")).unwrap();
    l.ok("pack", &["-q"]);
    l.ok("validate", &["-q"]);

    // deploy-infra: a first create that fails, then replaced.
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replacen("Runtime: !Ref LambdaRuntime", "Runtime: python3.6", 1)
    });
    assert_failure(&l.run("deploy-infra", &["--timeout", "120s"]));
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replace("Runtime: python3.6", "Runtime: !Ref LambdaRuntime")
    });
    l.ok(
        "deploy-infra",
        &["--timeout", "120s", "--replace-failed-stack"],
    );
    // B and C: a comment (CloudFormation finds no change: the empty change set
    // is deleted) and code; D: a real template change and the large zip, over
    // an upload a killed run left; E, F: code. keep = 5 then drops A.
    let latest = |l: &Logged| -> String {
        let out = l.run("history", &["--json"]);
        assert_success(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["id"].as_str().unwrap().to_string()
    };
    let mut ids = Vec::new();
    for (n, template) in [
        (2, "# c1"),
        (3, "# c2"),
        (4, "Outputs:\n  StageD:\n    Value: d"),
        (5, ""),
        (6, ""),
    ] {
        random_file(&p.sample.path("lambda/blob.bin"), MB6, n);
        if !template.is_empty() {
            p.sample.edit("cfn/master-template.yaml", |t| {
                if template.starts_with('#') {
                    t.replace("\n# c1\n", "\n").replace("\n# c2\n", "\n")
                        + &format!("\n{template}\n")
                } else {
                    t.replace("\n# c1\n", "\n")
                        .replace("\n# c2\n", "\n")
                        .replace("Outputs:\n", &format!("{template}\n"))
                }
            });
        }
        l.ok("pack", &["-q"]);
        unfinished_upload(&bucket, "lambda/frontend-builder.zip");
        l.ok("deploy-infra", &["--timeout", "120s"]);
        ids.push(latest(&l));
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 5, "every deploy is recorded: {ids:?}");
    // deploy-frontend: three releases (a replaced chunk goes after one
    // release), a large file over a left upload.
    random_file(&p.sample.path("frontend/dist/assets/big.bin"), MB6, 3);
    l.ok("deploy-frontend", &["--timeout", "120s"]);
    let site = format!("{}-dev-frontend", p.name);
    for n in 1..=2u64 {
        std::fs::remove_file(p.sample.path("frontend/dist/assets/index-4f2a9c1e.js")).ok();
        let chunk = format!("frontend/dist/assets/index-r{n}.js");
        std::fs::write(p.sample.path(&chunk), format!("console.log({n});\n")).unwrap();
        random_file(&p.sample.path("frontend/dist/assets/big.bin"), MB6, 3 + n);
        p.sample.edit("frontend/dist/index.html", |t| {
            format!("{t}<!-- release {n} -->\n")
        });
        unfinished_upload(&site, "assets/big.bin");
        l.ok("deploy-frontend", &["--timeout", "120s", "--wait"]);
    }

    // sync: a folder to a prefix, again after a file went (--delete), over a left upload.
    let dir = p.sample.path("frontend/dist");
    let to = format!("s3://{bucket}/static");
    l.ok("sync", &[dir.to_str().unwrap(), &to, "-q"]);
    std::fs::remove_file(p.sample.path("frontend/dist/favicon.svg")).unwrap();
    random_file(&p.sample.path("frontend/dist/assets/big.bin"), MB6, 9);
    unfinished_upload(&bucket, "static/assets/big.bin");
    l.ok("sync", &[dir.to_str().unwrap(), &to, "--delete", "-q"]);

    // rollback: to B (a real template change back), to C (only the comment
    // differs: an empty change set), then the site to its previous release.
    l.ok(
        "rollback",
        &["--infra", "--to", &ids[0], "--timeout", "120s", "-q"],
    );
    l.ok(
        "rollback",
        &["--infra", "--to", &ids[1], "--timeout", "120s", "-q"],
    );
    unfinished_upload(&site, "assets/big.bin");
    l.ok("rollback", &["--frontend", "--timeout", "120s", "-q"]);
    // history of both logs; verify of a zip against its signed provenance.
    l.ok("history", &["--frontend", "-q"]);
    l.ok("verify", &["build/lambda/api-handler.zip", "-q"]);
    l.ok("config-js", &["-q"]);

    let reports: Vec<(&str, serde_json::Value)> = [
        ("pack", vec![]),
        ("validate", vec![]),
        ("deploy-infra", vec![]),
        ("deploy-frontend", vec![]),
        ("sync", vec!["--sync-to", to.as_str()]),
        ("rollback", vec![]),
        ("history", vec![]),
        ("verify", vec![]),
        ("config-js", vec![]),
    ]
    .into_iter()
    .map(|(c, extra)| (c, l.check(c, &extra)))
    .collect();
    for (c, r) in &reports {
        assert!(r["requests"].as_u64().unwrap() > 0, "{c}: {r:#}");
        if *c != "deploy-infra" {
            assert_eq!(r["unused"], serde_json::json!([]), "{c}: {r:#}");
        }
    }

    // Layers: the second sample adds ListLayerVersions and PublishLayerVersion,
    // and its second deploy GetLayerVersion (a version is reused by its bytes).
    let layered = Logged::new("sample-layer");
    layered.ok("pack", &["-q"]);
    layered.ok("deploy-infra", &["--timeout", "120s"]);
    layered.ok("deploy-infra", &["--timeout", "120s"]);
    let with_layers = layered.check("deploy-infra", &[]);
    let infra = &reports[2].1;
    assert_eq!(
        unused(&[infra, &with_layers]),
        BTreeSet::new(),
        "{infra:#}\n{with_layers:#}"
    );
    assert!(strings(&with_layers["made"]).contains("lambda:publishlayerversion"));
}

/// A request outside the policy is reported, and the check fails.
#[test]
fn a_request_the_policy_does_not_allow_fails_the_check() {
    let l = Logged::new("sample");
    let log = l.log("deploy-frontend");
    std::fs::write(
        &log,
        format!(
            "{{\"op\":\"S3.PutObject\",\"method\":\"PUT\",\"url\":\"http://h/{}/other/key\"}}\n",
            l.bucket()
        ),
    )
    .unwrap();
    let args = [
        "policy",
        "--command",
        "deploy-frontend",
        "--check",
        log.to_str().unwrap(),
    ];
    let out = artifact_aws_env(l.p.sample.dir.path(), &args, &l.env(""));
    let err = assert_failure(&out);
    assert!(
        err.contains("denied: s3:PutObject on arn:aws:s3:::"),
        "{err}"
    );
    assert!(err.contains("/other/key"), "{err}");
}

/// The same project file under another name gives ARNs of that name only.
#[test]
fn a_project_named_differently_gets_its_own_arns() {
    let sample = crate::common::Sample::new();
    let policy = |name: &str| -> String {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"));
        crate::local_aws::aws_env(&mut cmd)
            .env("PROJECT_NAME", name)
            .args(["policy", "--account", "123456789012"])
            .current_dir(sample.dir.path());
        let out = cmd.output().unwrap();
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b) = (policy("alpha"), policy("beta"));
    for (text, name, other) in [(&a, "alpha", "beta"), (&b, "beta", "alpha")] {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let infra = doc["deploy-infra"]["Statement"].to_string();
        assert!(
            infra.contains(&format!("arn:aws:s3:::{name}-deployment-dev")),
            "{infra}"
        );
        assert!(infra.contains(&format!("stack/{name}-dev/*")), "{infra}");
        assert!(
            infra.contains(&format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{name}-dev-api-handler"
            )),
            "{infra}"
        );
        let front = doc["deploy-frontend"]["Statement"].to_string();
        assert!(
            front.contains(&format!("arn:aws:s3:::{name}-dev-frontend/*")),
            "{front}"
        );
        assert!(!text.contains(other), "{name}'s policy names {other}");
    }
}

/// What `!Sub`, `!Ref` and `!GetAtt` give for the names in `vars`; anything
/// else is kept as written.
fn evaluate(v: &serde_norway::Value, vars: &[(&str, &str)]) -> serde_json::Value {
    use serde_norway::Value;
    let lookup = |name: &str| -> String {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no value for {name} in the test"))
    };
    match v {
        Value::Tagged(t) => {
            let arg = t.value.as_str().unwrap_or_default();
            let tag = t.tag.to_string();
            let text = match tag.trim_start_matches('!') {
                "Sub" => vars.iter().fold(arg.to_string(), |s, (k, v)| {
                    s.replace(&format!("${{{k}}}"), v)
                }),
                "Ref" | "GetAtt" => lookup(arg),
                other => panic!("{other} is not evaluated here"),
            };
            assert!(!text.contains("${"), "unknown variable in {text}");
            serde_json::Value::String(text)
        }
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), evaluate(v, vars)))
                .collect(),
        ),
        Value::Sequence(s) => s.iter().map(|v| evaluate(v, vars)).collect(),
        Value::String(s) => serde_json::Value::String(s.clone()),
        other => serde_json::to_value(other).unwrap(),
    }
}

/// A statement in one shape: Action, Resource and condition values as
/// sorted lists.
fn normalized(s: &serde_json::Value) -> serde_json::Value {
    let list = |v: &serde_json::Value| -> serde_json::Value {
        let mut items: Vec<String> = match v {
            serde_json::Value::Array(a) => {
                a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
            }
            serde_json::Value::String(x) => vec![x.clone()],
            serde_json::Value::Null => vec![],
            other => panic!("not a list: {other}"),
        };
        items.sort();
        serde_json::json!(items)
    };
    let mut condition = serde_json::Map::new();
    for (op, keys) in s["Condition"].as_object().into_iter().flatten() {
        let keys: serde_json::Map<_, _> = keys
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), list(v)))
            .collect();
        condition.insert(op.clone(), serde_json::Value::Object(keys));
    }
    serde_json::json!({
        "Sid": s["Sid"], "Effect": s["Effect"], "Action": list(&s["Action"]),
        "Resource": list(&s["Resource"]), "Condition": condition,
    })
}

/// The CodeBuild roles of buildspecs/pipeline.yaml hold exactly the
/// statements `artifact policy` generates for the application the pipeline
/// builds (testdata/sample), under the pipeline's names, and nothing else.
#[test]
fn the_pipeline_roles_hold_exactly_the_generated_statements() {
    let text =
        std::fs::read_to_string(crate::common::repo().join("buildspecs/pipeline.yaml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let role_arn = "arn:aws:iam::123456789012:role/pp-ee-cloudformation";
    let vars = [
        ("ProjectName", "pp"),
        ("Environment", "ee"),
        ("AWS::Partition", "aws"),
        ("AWS::Region", "us-east-1"),
        ("AWS::AccountId", "123456789012"),
        ("DeploymentBucket.Arn", "arn:aws:s3:::pp-deployment-ee"),
        ("DeploymentBucket", "pp-deployment-ee"),
        ("CloudFormationExecutionRole.Arn", role_arn),
        ("MetricsNamespace", "Artifact/Pipeline"),
    ];
    let sample = crate::common::Sample::new();
    for (role, command) in [
        ("ValidateRole", "validate"),
        ("BuildRole", "pack"),
        ("DeployInfraRole", "deploy-infra"),
        ("DeployFrontendRole", "deploy-frontend"),
    ] {
        let mut in_template: Vec<serde_json::Value> = doc["Resources"][role]["Properties"]
            ["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{role} has no Policies"))
            .iter()
            .flat_map(|p| {
                evaluate(&p["PolicyDocument"]["Statement"], &vars)
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .map(|s| normalized(&s))
            .collect();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"));
        crate::local_aws::aws_env(&mut cmd)
            .envs([
                ("PROJECT_NAME", "pp"),
                ("ENVIRONMENT", "ee"),
                ("DEPLOYMENT_BUCKET", "pp-deployment-ee"),
                ("CLOUDFORMATION_ROLE_ARN", role_arn),
            ])
            .args([
                "policy",
                "--json",
                "--command",
                command,
                "--account",
                "123456789012",
            ])
            .args([
                "--metrics",
                "Artifact/Pipeline",
                "--cache-url",
                "s3://pp-deployment-ee/pack-cache",
            ])
            .current_dir(sample.dir.path());
        let out = cmd.output().unwrap();
        assert_success(&out);
        let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut generated: Vec<serde_json::Value> = generated[0]["document"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(normalized)
            .collect();
        let by_sid = |a: &serde_json::Value, b: &serde_json::Value| {
            a["Sid"].as_str().cmp(&b["Sid"].as_str())
        };
        in_template.sort_by(by_sid);
        generated.sort_by(by_sid);
        assert_eq!(
            serde_json::json!(in_template),
            serde_json::json!(generated),
            "{role} in buildspecs/pipeline.yaml differs from `artifact policy --command {command}`"
        );
    }
}

/// Every refusal of `policy` says how to fix it.
#[test]
fn each_policy_error_has_a_hint() {
    let s = crate::common::Sample::new();
    std::fs::write(s.path("bad.log"), "not json\n").unwrap();
    for args in [
        &["policy", "--command", "sync"][..],
        &["policy", "--command", "verify"],
        &["policy", "--account", "12"],
        &["policy", "--check", "requests.log"],
        &["policy", "--command", "pack", "--check", "missing.log"],
        &["policy", "--command", "pack", "--check", "bad.log"],
        &["verify", "build/lambda/none.zip"],
    ] {
        let err = assert_failure(&s.run(args));
        let lines: Vec<&str> = err.lines().filter(|l| !l.contains(" WARN ")).collect();
        assert!(
            lines.iter().any(|l| l.starts_with("hint: ")),
            "{args:?}: no hint in\n{err}"
        );
    }
}

/// With nested stacks: their events, outputs and change sets are read, and a
/// rollback restores their templates; every request is allowed.
#[test]
fn the_requests_nested_stacks_add_are_allowed() {
    let l = Logged::new("sample-nested");
    let p = &l.p;
    let functions = "cfn/functions/functions.yaml";
    l.ok("pack", &["-q"]);
    l.ok("deploy-infra", &["--timeout", "120s"]);
    p.sample.edit(functions, |t| {
        t.replacen("MemorySize: 256", "MemorySize: 512", 1)
    });
    l.ok("deploy-infra", &["--timeout", "120s"]);
    // A nested change set that fails, then a nested resource that fails.
    let topics = "cfn/messaging/topics.yaml";
    let good = std::fs::read_to_string(p.sample.path(topics)).unwrap();
    p.sample.edit(topics, |t| {
        t.replacen(
            "Outputs:",
            "  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Ref Nope}\nOutputs:",
            1,
        )
    });
    assert_failure(&l.run("deploy-infra", &["--timeout", "120s"]));
    std::fs::write(p.sample.path(topics), good).unwrap();
    p.sample.edit(functions, |t| {
        t.replacen("Runtime: !Ref Runtime", "Runtime: python3.6", 1)
    });
    assert_failure(&l.run("deploy-infra", &["--timeout", "120s"]));
    p.sample.edit(functions, |t| {
        t.replacen("Runtime: python3.6", "Runtime: !Ref Runtime", 1)
    });
    l.ok("rollback", &["--infra", "--timeout", "120s", "-q"]);
    l.ok("deploy-frontend", &["--timeout", "120s"]);
    for c in ["deploy-infra", "rollback", "deploy-frontend"] {
        let r = l.check(c, &[]);
        assert!(r["requests"].as_u64().unwrap() > 0, "{c}: {r:#}");
    }
    let made = strings(&l.check("deploy-infra", &[])["made"]);
    for action in [
        "cloudformation:describestackevents",
        "cloudformation:describechangeset",
        "cloudformation:describestackresources",
    ] {
        assert!(made.contains(action), "{action}: {made:?}");
    }
}
