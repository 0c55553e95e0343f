//! `testdata/sample-real`: a repository in the shapes real ones have (names
//! by pattern and by hand, a folder per function, a shared package, the site
//! inside a zip) packs, validates and deploys with no template edit.

use std::io::Read;

use crate::common::{assert_failure, assert_success, Sample};
use crate::deploy_infra::Project;
use crate::local_aws::boto;

const FUNCTIONS: [&str; 4] = ["api", "orchestrator", "site-builder", "worker"];

fn zip_files(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().to_string(), bytes)
        })
        .collect()
}

#[test]
fn validate_passes_with_no_template_edit() {
    let s = Sample::of("sample-real");
    let out = s.run(&["validate", "--offline", "--json"]);
    assert_success(&out);
    let r: artifact::validate::ValidateReport = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<(&str, &str)> = r
        .functions
        .iter()
        .map(|f| (f.function.as_str(), f.deployed_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("api", "orders-api-dev"),
            ("orchestrator", "orders-dr-orch-sf"),
            ("site-builder", "orders-site-builder-dev"),
            ("worker", "orders-worker-dev"),
        ]
    );
    assert!(
        r.functions.iter().all(|f| f.found.is_some()),
        "{:?}",
        r.functions
    );
}

#[test]
fn a_name_pattern_that_differs_from_the_templates_is_explained() {
    let s = Sample::of("sample-real");
    s.edit("artifact.toml", |t| {
        t.replace(
            "function = \"{project}-{function}-{environment}\"",
            "function = \"{project}-{environment}-{function}\"",
        )
    });
    let out = s.run(&["validate", "--offline"]);
    let err = assert_failure(&out);
    assert!(
        err.contains("set [naming] function = \"{project}-{function}-{environment}\""),
        "{err}"
    );
}

#[test]
fn pack_places_own_folders_shared_code_and_the_site() {
    let s = Sample::of("sample-real").without_bytecode();
    let r = s.pack(&[]);
    let deployed: Vec<&str> = FUNCTIONS
        .iter()
        .map(|f| r.manifest.functions[*f].deployed_name.as_str())
        .collect();
    assert_eq!(
        deployed,
        [
            "orders-api-dev",
            "orders-dr-orch-sf",
            "orders-site-builder-dev",
            "orders-worker-dev"
        ]
    );
    let names = |f: &str| -> Vec<String> {
        zip_files(&s.path(&format!("build/lambda/{f}.zip")))
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.ends_with('/'))
            .collect()
    };
    assert_eq!(
        names("api"),
        ["index.py", "shared/__init__.py", "shared/responses.py"]
    );
    assert_eq!(
        names("worker"),
        [
            "index.py",
            "jobs.py",
            "shared/__init__.py",
            "shared/responses.py"
        ]
    );
    assert_eq!(
        names("site-builder"),
        [
            "index.py",
            "shared/__init__.py",
            "shared/responses.py",
            "site/assets/app-1a2b3c.js",
            "site/assets/vendor-7f3e2a1b.js",
            "site/index.html",
        ]
    );
    // Every handler imports from its zip alone and answers.
    for f in FUNCTIONS {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in zip_files(&s.path(&format!("build/lambda/{f}.zip"))) {
            if name.ends_with('/') {
                continue;
            }
            let p = dir.path().join(&name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        let out = std::process::Command::new("python3")
            .args(["-I", "-c", "import sys; sys.path.insert(0, '.'); import index; print(index.handler({}, None)['statusCode'])"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200", "{f}");
    }
    // A second pack changes nothing; so does a fresh copy (same bytes).
    let again = Sample::of("sample-real").without_bytecode().pack(&[]);
    assert_eq!(again.manifest, r.manifest);
}

#[test]
fn deploy_infra_creates_the_functions_under_their_real_names() {
    let p = Project::unpacked_of("sample-real");
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, artifact::cfn::Outcome::Changed);
    let listed = boto(
        "print(json.dumps(sorted(f['FunctionName'] for f in lam.list_functions()['Functions'] if f['FunctionName'].startswith(sys.argv[1] + '-'))))",
        &[&p.name],
    );
    let want: Vec<String> = ["api-dev", "dr-orch-sf", "site-builder-dev", "worker-dev"]
        .iter()
        .map(|s| format!("{}-{s}", p.name))
        .collect();
    assert_eq!(listed, serde_json::json!(want));
    // Nothing changed: nothing to do, no code update.
    let again = p.deploy(&[]);
    assert_eq!(again.outcome, artifact::cfn::Outcome::Unchanged);
}

/// Each bad layout or name: one error naming the key, nothing written.
#[test]
fn bad_names_and_layouts_name_the_key_and_write_nothing() {
    let orch = "name = \"{project}-dr-orch-sf\"";
    let too_long = format!("name = \"{}\"", "x".repeat(65));
    let cases = [
        (
            "function = \"{project}-{function}-{environment}\"",
            "function = \"{project}-{fn}\"",
            "naming.function",
        ),
        (orch, too_long.as_str(), "functions.orchestrator.name"),
        (
            orch,
            "name = \"{project}-{account}\"",
            "functions.orchestrator.name",
        ),
        (
            "path = \"lambda/shared\"",
            "path = \"lambda/common\"",
            "pack.shared[0]",
        ),
        (
            "path = \"../../frontend/dist\"",
            "path = \"../../../outside\"",
            "functions.site-builder.files",
        ),
        (
            "source = \"lambda/api\"",
            "source = \"lambda/none\"",
            "functions.api.source",
        ),
    ];
    for (from, to, key) in cases {
        let s = Sample::of("sample-real");
        s.edit("artifact.toml", |t| {
            assert!(t.contains(from), "{from}");
            t.replace(from, to)
        });
        let unset = ["AWS_ACCOUNT_ID", "CODEBUILD_BUILD_ARN"];
        let out = crate::common::artifact_without(s.dir.path(), &["pack"], &unset);
        let err = assert_failure(&out);
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        assert!(err.contains("hint:"), "{key}: {err}");
        assert!(!s.path("build").exists(), "{key}: something was written");
    }
}

#[test]
fn a_finding_outside_pack_source_is_named_from_the_root_and_its_hint_works_when_pasted() {
    let s = Sample::of("sample-real");
    std::fs::write(
        s.path("frontend/dist/assets/leak.js"),
        "const slack = \"xoxb-1234567890-1234567890123-abcdefghijABCDEFGHIJklmn\";\n",
    )
    .unwrap();
    let err = assert_failure(&s.run(&["pack"]));
    assert!(
        err.contains("  frontend/dist/assets/leak.js:1: a Slack token"),
        "{err}"
    );
    let entry: String = err
        .lines()
        .skip_while(|l| *l != "[[scan.allow]]")
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        entry.contains("path = \"frontend/dist/assets/leak.js\""),
        "{err}"
    );
    s.edit("artifact.toml", |t| format!("{t}\n{entry}"));
    s.pack(&[]);
}

#[test]
fn each_environment_gets_its_own_names_parameters_and_tags() {
    let s = Sample::of("sample-real");
    let validate = |env: &str| {
        let out = s.run(&["validate", "--offline", "--json", "--environment", env]);
        assert_success(&out);
        let r: artifact::validate::ValidateReport = serde_json::from_slice(&out.stdout).unwrap();
        r.functions
            .into_iter()
            .map(|f| f.deployed_name)
            .collect::<Vec<_>>()
    };
    // prod's table names the site builder as the template's !If does in prod.
    assert_eq!(
        validate("prod"),
        [
            "orders-api-prod",
            "orders-dr-orch-sf",
            "orders-site-builder",
            "orders-worker-prod"
        ]
    );
    assert_eq!(validate("dev")[2], "orders-site-builder-dev");
    // Parameters and tags: the environment's parameter file, values from the build.
    let p = Project::unpacked_of("sample-real");
    let plan = |env: &str, build: Option<&str>| {
        let mut vars = vec![("PROJECT_NAME", p.name.as_str()), ("ENVIRONMENT", env)];
        if let Some(b) = build {
            vars.push(("CODEBUILD_BUILD_ID", b));
        }
        let dir = p.sample.dir.path();
        assert_success(&crate::local_aws::artifact_aws_env(
            dir,
            &["pack", "-q"],
            &vars,
        ));
        crate::local_aws::artifact_aws_env(dir, &["deploy-infra", "--dry-run", "--json"], &vars)
    };
    boto(
        "s3.create_bucket(Bucket=sys.argv[1])",
        &[&format!("{}-deployment-prod", p.name)],
    );
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    for (env, build, runtime, tags) in [
        (
            "dev",
            Some("orders:42"),
            "python3.12",
            vec![("build", "orders:42")],
        ),
        (
            "prod",
            None,
            "python3.13",
            vec![("build", "local"), ("criticality", "high")],
        ),
    ] {
        let out = plan(env, build);
        assert_success(&out);
        let r: artifact::cfn::InfraReport = serde_json::from_slice(&out.stdout).unwrap();
        let plan = r.plan.unwrap();
        assert_eq!(plan.passed_parameters["Runtime"], runtime, "{env}");
        assert_eq!(plan.passed_parameters["Environment"], env);
        let wanted: Vec<(String, String)> = plan
            .tags
            .iter()
            .filter_map(|d| Some((d.key.clone(), d.wanted.clone()?)))
            .collect();
        let want: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(wanted, want, "{env}");
    }
}

#[test]
fn bad_environments_and_parameters_name_the_key() {
    type Breaks<'a> = &'a dyn Fn(&Sample);
    let cases: [(&str, Breaks, &str); 3] = [
        (
            "infra.parameters_file",
            &|s: &Sample| {
                std::fs::write(s.path("cfn/params/dev.json"), r#"{"Runtime": "x"}"#).unwrap();
            },
            "neither parameter file shape",
        ),
        (
            "infra.tags.owner",
            &|s: &Sample| {
                s.edit("artifact.toml", |t| {
                    t.replace(
                        "[infra.tags]\n",
                        "[infra.tags]\nowner = \"env:TEAM_OWNER\"\n",
                    )
                });
            },
            "TEAM_OWNER is not set",
        ),
        (
            "environments.dev",
            &|s: &Sample| {
                s.edit("artifact.toml", |t| {
                    format!("{t}\n[environments.dev.infra]\nstack = \"x\"\n")
                });
            },
            "unknown field `stack`",
        ),
    ];
    for (key, break_it, says) in cases {
        let s = Sample::of("sample-real");
        break_it(&s);
        let err = assert_failure(&crate::common::artifact_without(
            s.dir.path(),
            &["pack"],
            &["TEAM_OWNER"],
        ));
        assert!(err.contains(says), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
        assert!(!s.path("build").exists(), "{key}");
    }
}

#[test]
fn deploy_frontend_writes_the_sites_own_config_from_the_stack() {
    let p = Project::unpacked_of("sample-real");
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    p.deploy(&[]);
    let out = p.run(&["deploy-frontend", "--json"]);
    assert_success(&out);
    let site = format!("{}-site-dev", p.name);
    let text = boto(
        "print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key='aws-config.json')['Body'].read().decode()))",
        &[&site],
    );
    let config: serde_json::Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
    let outputs = boto(
        "print(json.dumps({o['OutputKey']: o['OutputValue'] for o in cfn.describe_stacks(StackName=sys.argv[1])['Stacks'][0]['Outputs']}))",
        &[&p.stack()],
    );
    assert_eq!(config["userPoolId"], outputs["CognitoUserPoolId"]);
    assert_eq!(config["userPoolClientId"], outputs["CognitoClientId"]);
    assert_eq!(config["apiEndpoint"], outputs["ApiEndpoint"]);
    assert_eq!(config["environment"], "dev");
    assert_eq!(config["features"]["exports"], true);
    assert!(config["region"].as_str().is_some_and(|r| !r.is_empty()));
    // Never cached; no aws-config.js beside it.
    let cache = boto(
        "print(json.dumps(s3.head_object(Bucket=sys.argv[1], Key='aws-config.json').get('CacheControl')))",
        &[&site],
    );
    assert_eq!(cache, "no-cache, no-store, must-revalidate");
    let keys = boto(
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []))))",
        &[&site],
    );
    assert!(
        !keys
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "aws-config.js"),
        "{keys}"
    );
    // `config` prints the same file; `config-js` is the same command.
    for name in ["config", "config-js"] {
        let out = p.run(&[name]);
        assert_success(&out);
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, config, "{name}");
    }
    // An output no stack has is named, with the stacks searched; nothing goes up.
    p.sample.edit("artifact.toml", |t| {
        t.replace("output:ApiEndpoint", "output:NoSuchOutput")
    });
    let err = assert_failure(&p.run(&["deploy-frontend"]));
    assert!(err.contains("NoSuchOutput"), "{err}");
}

#[test]
fn a_no_echo_parameter_is_passed_but_never_printed_or_recorded() {
    let p = Project::unpacked_of("sample-real");
    let secret = "tok-9f8e7d6c5b4a39281706";
    let vars = [("PROJECT_NAME", p.name.as_str()), ("ALERTS_TOKEN", secret)];
    let dir = p.sample.dir.path();
    assert_success(&crate::local_aws::artifact_aws_env(
        dir,
        &["pack", "-q"],
        &vars,
    ));
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    for args in [
        &["deploy-infra", "--dry-run", "--json", "-vv"][..],
        &["deploy-infra", "--json", "-vv", "--timeout", "120s"][..],
    ] {
        let out = crate::local_aws::artifact_aws_env(dir, args, &vars);
        assert_success(&out);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(secret), "{args:?} printed the NoEcho value");
    }
    // The stack has it; the history record does not.
    let passed = boto(
        "print(json.dumps([q['ParameterValue'] for q in cfn.describe_stacks(StackName=sys.argv[1])['Stacks'][0]['Parameters'] if q['ParameterKey'] == 'AlertsToken']))",
        &[&p.stack()],
    );
    assert_eq!(passed.as_array().map(Vec::len), Some(1));
    let records = boto(
        "print(json.dumps([s3.get_object(Bucket=sys.argv[1], Key=o['Key'])['Body'].read().decode() for o in s3.list_objects_v2(Bucket=sys.argv[1], Prefix='deployments/').get('Contents', [])]))",
        &[&p.bucket()],
    );
    let text = records.to_string();
    assert!(text.contains("AlertsToken"), "{text}");
    assert!(
        !text.contains(secret),
        "the history recorded the NoEcho value"
    );
}

/// `{account}` in a name: commands that reach AWS ask STS once when nothing
/// set tells the account; offline validate says it needed it.
#[test]
fn the_account_in_a_bucket_name_comes_from_sts_when_not_set() {
    let p = Project::unpacked_of("sample-real");
    p.sample.edit("artifact.toml", |t| {
        t.replacen(
            "[infra]\n",
            "[infra]\ndeployment_bucket = \"{project}-{account}-{environment}\"\n",
            1,
        )
    });
    p.pack();
    // The local server's account.
    let bucket = format!("{}-123456789012-dev", p.name);
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&bucket]);
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, artifact::cfn::Outcome::Changed);
    assert_eq!(
        r.requests.get("STS.GetCallerIdentity"),
        None,
        "counted in the deploy's own clients? {:?}",
        r.requests
    );
    let out = p.run(&["validate", "--offline"]);
    let err = assert_failure(&out);
    assert!(
        err.contains("infra.deployment_bucket")
            && err.contains("{account}")
            && err.contains("GetCallerIdentity"),
        "{err}"
    );
    // With AWS_ACCOUNT_ID set, no call is needed, and that account is used.
    let out = crate::local_aws::artifact_aws_env(
        p.sample.dir.path(),
        &["validate", "--offline"],
        &[
            ("PROJECT_NAME", &p.name),
            ("AWS_ACCOUNT_ID", "123456789012"),
        ],
    );
    assert_success(&out);
}

/// `[naming] zip_key`: the zips go to the keys the templates' S3Key name, a
/// redeploy compares them there, and bad keys name the key.
#[test]
fn zips_go_to_the_keys_the_templates_name() {
    let p = Project::unpacked_of("sample-real");
    p.sample.edit("artifact.toml", |t| {
        t.replacen(
            "[naming]\n",
            "[naming]\nzip_key = \"artifacts/{project}/{function}.zip\"\n",
            1,
        )
    });
    p.sample.edit("cfn/main-stack.yaml", |t| {
        t.replace("S3Key: lambda/", "S3Key: !Sub \"artifacts/${ProjectName}/")
            .replace(".zip\n", ".zip\"\n")
    });
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, artifact::cfn::Outcome::Changed);
    let keys = boto(
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1], Prefix='artifacts/').get('Contents', []))))",
        &[&p.bucket()],
    );
    let keys: Vec<String> = serde_json::from_value(keys).unwrap();
    for f in FUNCTIONS {
        let key = format!("artifacts/{}/{f}.zip", p.name);
        assert!(keys.contains(&key), "{key}: {keys:?}");
    }
    let none = boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1], Prefix='lambda/').get('KeyCount', 0)))",
        &[&p.bucket()],
    );
    assert_eq!(none, 0, "nothing under the default folder");
    // Unchanged: compared at those keys. One handler: that function's code only.
    let again = p.deploy(&[]);
    assert_eq!(again.outcome, artifact::cfn::Outcome::Unchanged);
    assert_eq!(again.zips.uploaded, 0);
    p.sample
        .edit("lambda/api/index.py", |t| format!("{t}# edited\n"));
    p.pack();
    let r = p.deploy(&[]);
    let updated: Vec<&str> = r
        .functions
        .iter()
        .filter(|f| f.action == artifact::lambda::CodeAction::Updated)
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(updated, ["api"]);
    // Bad keys: each names naming.zip_key, nothing written.
    for (bad, why) in [
        ("lambda/{function}", "ends in .zip"),
        ("cfn/{function}.zip", "keeps its own objects"),
        ("lambda/all.zip", "would both upload to"),
        ("{function}/code.zip", "share no folder"),
    ] {
        let s = Sample::of("sample-real");
        s.edit("artifact.toml", |t| {
            t.replacen("[naming]\n", &format!("[naming]\nzip_key = \"{bad}\"\n"), 1)
        });
        let err = assert_failure(&s.run(&["pack"]));
        assert!(
            err.contains("naming.zip_key") && err.contains(why),
            "{bad}: {err}"
        );
        assert!(!s.path("build").exists(), "{bad}");
    }
}

/// The deployed site, loaded by headless Chromium from the site bucket as a
/// CDN serves it, reads the values deploy-frontend wrote into its config.
#[test]
fn the_deployed_site_reads_its_config_in_a_browser() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let browser = Command::new(crate::common::repo().join("scripts/browser"))
        .arg("path")
        .output()
        .expect("run scripts/browser");
    assert!(
        browser.status.success(),
        "{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let browser = String::from_utf8(browser.stdout)
        .unwrap()
        .trim()
        .to_string();
    let p = Project::unpacked_of("sample-real");
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    p.deploy(&[]);
    assert_success(&p.run(&["deploy-frontend"]));
    let site = format!("{}-site-dev", p.name);
    let mut cmd = Command::new(crate::common::repo().join(".venv/bin/python"));
    let mut server = crate::local_aws::aws_env(&mut cmd)
        .arg(crate::common::repo().join("scripts/site_from_bucket.py"))
        .arg(&site)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve the site");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("ready ")
        .expect("site server ready");
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &format!("http://127.0.0.1:{port}/index.html"),
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run the browser");
    drop(server.stdin.take());
    let _ = server.wait();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let shown = dom
        .split("<div id=\"root\">")
        .nth(1)
        .and_then(|r| r.split("</div>").next())
        .unwrap_or_default()
        .to_string();
    let outputs = boto(
        "print(json.dumps({o['OutputKey']: o['OutputValue'] for o in cfn.describe_stacks(StackName=sys.argv[1])['Stacks'][0]['Outputs']}))",
        &[&p.stack()],
    );
    let want = [
        "us-east-1",
        outputs["CognitoUserPoolId"].as_str().unwrap(),
        outputs["CognitoClientId"].as_str().unwrap(),
        outputs["ApiEndpoint"].as_str().unwrap(),
        "dev",
    ]
    .join(" ");
    assert_eq!(shown, want, "{dom}");
}
