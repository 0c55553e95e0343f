//! `deploy-infra --all-targets` across accounts (assumed roles) and regions,
//! in waves, against the local server (it keeps one backend per account
//! behind each assumed role, and per region).

use crate::common::{assert_failure, assert_success};
use crate::deploy_infra::Project;
use crate::local_aws::boto;

const HOME: &str = "123456789012";
const OTHER: &str = "111111111111";

/// Three targets: two accounts, two regions, two waves.
fn targets(tolerance: &str, parallel: usize) -> String {
    format!(
        r#"
[deploy]
max_parallel = {parallel}
failure_tolerance = {tolerance}

[[targets]]
name = "home"
account = "{HOME}"
region = "us-east-1"

[[targets]]
name = "eu"
account = "{OTHER}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{OTHER}:role/deploy"

[[targets]]
name = "second"
account = "{OTHER}"
region = "us-east-1"
role_arn = "arn:aws:iam::{OTHER}:role/deploy"
wave = 2
"#
    )
}

/// Python: a client of `service` in (account, region), through the role.
const CLIENT: &str = r#"
_make = boto3.client
def client(service, account, region):
    if account == '123456789012':
        return _make(service, region_name=region)
    c = _make('sts').assume_role(RoleArn='arn:aws:iam::%s:role/deploy' % account, RoleSessionName='test')['Credentials']
    return _make(service, region_name=region, aws_access_key_id=c['AccessKeyId'],
                 aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])
"#;

/// Each target's environment, account and region.
const ALL: [(&str, &str, &str); 3] = [
    ("dev", HOME, "us-east-1"),
    ("dev", OTHER, "eu-west-1"),
    ("dev", OTHER, "us-east-1"),
];

fn regional_bucket(p: &Project, (env, account, region): (&str, &str, &str)) -> String {
    format!("{}-deployment-{env}-{account}-{region}", p.name)
}

fn project(tolerance: &str, parallel: usize, buckets: &[(&str, &str, &str)]) -> Project {
    let p = Project::new();
    p.sample.edit("artifact.toml", |t| {
        format!(
            "{t}\n[infra]\ndeployment_bucket = \"{{project}}-deployment-{{environment}}-{{account}}-{{region}}\"\n{}",
            targets(tolerance, parallel)
        )
    });
    // S3's bucket names are global and IAM's role names are per account:
    // the sample names both per account and region, as a template deployed to
    // many accounts and regions must.
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replace(
            "BucketName: !Sub \"${ProjectName}-${Environment}-frontend\"",
            "BucketName: !Sub \"${ProjectName}-${Environment}-frontend-${AWS::AccountId}-${AWS::Region}\"",
        )
        .replace(
            "RoleName: !Sub \"${ProjectName}-${Environment}-lambda\"",
            "RoleName: !Sub \"${ProjectName}-${Environment}-lambda-${AWS::Region}\"",
        )
    });
    for &(env, account, region) in buckets {
        boto(
            &format!("{CLIENT}\nkw = {{}} if sys.argv[3] == 'us-east-1' else {{'CreateBucketConfiguration': {{'LocationConstraint': sys.argv[3]}}}}\nclient('s3', sys.argv[2], sys.argv[3]).create_bucket(Bucket=sys.argv[1], **kw)"),
            &[&regional_bucket(&p, (env, account, region)), account, region],
        );
    }
    p
}

fn deploy(p: &Project, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut args = vec!["deploy-infra", "--json", "--timeout", "180s"];
    args.extend_from_slice(extra);
    let out = p.run(&args);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON document:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc)
}

fn results(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_string(),
                t["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn all_targets_deploy_in_their_own_account_and_region_then_change_nothing() {
    let p = project("0", 4, &ALL);
    let (out, doc) = deploy(&p, &["--all-targets"]);
    assert_success(&out);
    assert_eq!(
        results(&doc),
        pairs(&[
            ("home", "changed"),
            ("eu", "changed"),
            ("second", "changed")
        ])
    );
    assert_eq!(doc["tolerance_held"], true);
    // Wave 2 takes the zips wave 1 uploaded by a server-side copy, sending
    // none of their bytes again.
    let second = &doc["targets"][2]["detail"];
    assert!(
        second
            .as_str()
            .unwrap()
            .contains("zips 10 uploaded (10 copied from another target's bucket)"),
        "{doc:#}"
    );
    // Each stack stands in its own account and region, its functions' code
    // taken from that region's bucket.
    let seen = boto(
        &format!(
            "{CLIENT}\nout = []\nfor env, account, region, bucket in json.loads(sys.argv[2]):\n    st = client('cloudformation', account, region).describe_stacks(StackName=sys.argv[1] + '-' + env)['Stacks'][0]['StackStatus']\n    keys = [o['Key'] for o in client('s3', account, region).list_objects_v2(Bucket=bucket).get('Contents', [])]\n    fn = client('lambda', account, region).get_function_configuration(FunctionName='%s-%s-api-handler' % (sys.argv[1], env))['FunctionName']\n    out.append([st, sum(k.startswith('lambda/') and k.endswith('.zip') for k in keys), fn])\nprint(json.dumps(out))"
        ),
        &[
            &p.name,
            &serde_json::to_string(
                &ALL.iter()
                    .map(|&(e, a, r)| (e, a, r, regional_bucket(&p, (e, a, r))))
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        ],
    );
    for s in seen.as_array().unwrap() {
        assert_eq!(s[0], "CREATE_COMPLETE", "{seen}");
        assert_eq!(s[1], 5, "five zips in each region's bucket: {seen}");
    }
    let (out, doc) = deploy(&p, &["--all-targets"]);
    assert_success(&out);
    assert_eq!(
        results(&doc),
        pairs(&[
            ("home", "unchanged"),
            ("eu", "unchanged"),
            ("second", "unchanged")
        ])
    );
    // One target alone, by name.
    let (out, doc) = deploy(&p, &["--target", "eu"]);
    assert_success(&out);
    assert_eq!(results(&doc), pairs(&[("eu", "unchanged")]));
    // Each target's history is in its own bucket: one deployment each, its own.
    let mut ids = std::collections::BTreeSet::new();
    for t in ["home", "eu", "second"] {
        let out = p.run(&["history", "--target", t, "--json"]);
        assert_success(&out);
        let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(entries.as_array().unwrap().len(), 1, "{t}: {entries}");
        ids.insert(entries[0]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 3, "{ids:?}");
    rollback_every_target_one_step(&p, &ids);
}

/// A second deployment everywhere, then every target back one step, each to
/// its own first deployment; `history --all-targets` shows each target's.
fn rollback_every_target_one_step(p: &Project, first: &std::collections::BTreeSet<String>) {
    p.sample.edit("lambda/poller/execution_poller.py", |t| {
        format!("{t}# second deployment\n")
    });
    p.pack();
    let (out, doc) = deploy(p, &["--all-targets"]);
    assert_success(&out);
    let changed = pairs(&[
        ("home", "changed"),
        ("eu", "changed"),
        ("second", "changed"),
    ]);
    assert_eq!(results(&doc), changed);
    let err = assert_failure(&p.run(&["rollback", "--infra", "--all-targets", "--to", "x"]));
    assert!(
        err.contains("names one target's deployment, but 3 targets"),
        "{err}"
    );
    let out = p.run(&[
        "rollback",
        "--infra",
        "--all-targets",
        "--json",
        "--timeout",
        "180s",
    ]);
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results(&doc), changed, "{doc:#}");
    let out = p.run(&["history", "--all-targets", "--json"]);
    assert_success(&out);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut back_to = std::collections::BTreeSet::new();
    for (h, name) in all.as_array().unwrap().iter().zip(["home", "eu", "second"]) {
        assert_eq!(h["target"], name, "{all:#}");
        let d = h["deployments"].as_array().unwrap();
        assert_eq!(d.len(), 3, "deploy, deploy, rollback: {all:#}");
        back_to.insert(d[0]["rollback_of"].as_str().unwrap().to_string());
    }
    assert_eq!(
        &back_to, first,
        "each target back to its own first deployment"
    );
}

#[test]
fn a_failure_within_the_tolerance_lets_the_waves_finish() {
    // No bucket for "eu": that target fails.
    let p = project("1", 4, &[ALL[0], ALL[2]]);
    let (out, doc) = deploy(&p, &["--all-targets"]);
    assert_success(&out);
    assert_eq!(
        results(&doc),
        pairs(&[("home", "changed"), ("eu", "failed"), ("second", "changed")])
    );
    let eu = &doc["targets"][1]["detail"];
    assert!(
        eu.as_str().unwrap().contains(&regional_bucket(&p, ALL[1])),
        "{eu}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("within [deploy] failure_tolerance"));
}

#[test]
fn past_the_tolerance_later_waves_never_start() {
    let p = project("0", 1, &[ALL[0], ALL[2]]);
    let (out, doc) = deploy(&p, &["--all-targets"]);
    let err = assert_failure(&out);
    assert!(err.contains("failure_tolerance"), "{err}\n{doc}");
    assert_eq!(
        results(&doc),
        pairs(&[
            ("home", "changed"),
            ("eu", "failed"),
            ("second", "not started")
        ])
    );
    assert_eq!(doc["tolerance_held"], false);
    let stacks = boto(
        &format!("{CLIENT}\nprint(json.dumps([s['StackName'] for s in client('cloudformation', sys.argv[1], 'us-east-1').describe_stacks()['Stacks']]))"),
        &[OTHER],
    );
    assert!(
        !stacks.as_array().unwrap().iter().any(|s| s == &p.stack()),
        "the second wave deployed nothing: {stacks}"
    );
}

#[test]
fn bad_targets_are_named_and_nothing_is_deployed() {
    let p = project("0", 4, &[ALL[0]]);
    let cases = [
        (
            "region = \"eu-west-1\"",
            "region = \"eu-middle-7\"",
            "targets.eu.region",
        ),
        (
            "role_arn = \"arn:aws:iam::111111111111:role/deploy\"\nwave = 2",
            "role_arn = \"arn:aws:iam::111111111111:user/deploy\"\nwave = 2",
            "targets.second.role_arn",
        ),
        ("name = \"second\"", "name = \"eu\"", "targets.eu.name"),
        ("wave = 2", "wave = 3", "targets.second.wave"),
    ];
    let original = std::fs::read_to_string(p.sample.path("artifact.toml")).unwrap();
    for (from, to, key) in cases {
        assert!(original.contains(from), "{from}");
        std::fs::write(
            p.sample.path("artifact.toml"),
            original.replacen(from, to, 1),
        )
        .unwrap();
        let (out, _) = deploy(&p, &["--all-targets"]);
        let err = assert_failure(&out);
        assert!(err.contains(key), "{key} not in {err}");
    }
    std::fs::write(p.sample.path("artifact.toml"), &original).unwrap();
    let (out, _) = deploy(&p, &["--target", "nowhere"]);
    let err = assert_failure(&out);
    assert!(err.contains("--target nowhere"), "{err}");
    assert!(err.contains("home, eu, second"), "{err}");
    // None of the refused runs created a stack.
    let stacks = boto(
        "print(json.dumps([s['StackName'] for s in cfn.describe_stacks()['Stacks']]))",
        &[],
    );
    assert!(
        !stacks.as_array().unwrap().iter().any(|s| s == &p.stack()),
        "{stacks}"
    );
}

/// Assumed credentials are asked for again while a deploy runs: a 5-second
/// session is inside the SDK's renewal margin (10 s before expiry) from the
/// start, so the one deploy assumes the role again for later requests (with
/// the target's external id) and succeeds on the renewed credentials. With an
/// hour's session the same renewal happens 10 s before the hour.
/// `deploy-infra --target eu` with one more variable set.
fn deploy_eu(p: &Project, var: (&str, &str)) -> std::process::Output {
    crate::local_aws::artifact_aws_env(
        p.sample.dir.path(),
        &[
            "deploy-infra",
            "--json",
            "--timeout",
            "180s",
            "--target",
            "eu",
        ],
        &[("PROJECT_NAME", &p.name), var],
    )
}

#[test]
fn credentials_are_renewed_during_a_deploy() {
    let p = project("0", 4, &[ALL[1]]);
    p.sample.edit("artifact.toml", |t| {
        t.replace(
            "role_arn = \"arn:aws:iam::111111111111:role/deploy\"\n\n",
            "role_arn = \"arn:aws:iam::111111111111:role/deploy\"\nexternal_id = \"renewal-check\"\n\n",
        )
    });
    let out = deploy_eu(&p, ("ARTIFACT_ROLE_SESSION_SECONDS", "5"));
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results(&doc), pairs(&[("eu", "changed")]));
    // The server's record of every role session it handed out.
    let sessions = boto(
        "import urllib.request\ndata = json.load(urllib.request.urlopen(sys.argv[1] + '/_artifact/assumed-roles'))\nprint(json.dumps([r['session_name'] for r in data if r['external_id'] == 'renewal-check']))",
        &[&crate::local_aws::server().endpoint],
    );
    let sessions = sessions.as_array().unwrap();
    assert!(
        sessions.len() >= 2,
        "assumed once only: {sessions:?} in {}s",
        doc["targets"][0]["seconds"]
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.as_str().unwrap().starts_with("artifact-")
                && s.as_str().unwrap().ends_with("-eu")),
        "{sessions:?}"
    );
}

/// `artifact policy`: the pipeline's own deploy-infra policy may assume the
/// targets' roles; `--target eu` gives that role's own policy, in its account
/// and region, and every request of a deploy to it is allowed by it.
#[test]
fn each_target_roles_policy_allows_its_deploy_and_the_pipeline_may_assume_it() {
    let p = project("0", 4, &[ALL[1]]);
    // Offline, {account} in the bucket's name is AWS_ACCOUNT_ID's (or the target's).
    let policy = |extra: &[&str]| {
        let mut args = vec!["policy", "--command", "deploy-infra"];
        args.extend_from_slice(extra);
        let out = crate::local_aws::artifact_aws_env(
            p.sample.dir.path(),
            &args,
            &[("PROJECT_NAME", &p.name), ("AWS_ACCOUNT_ID", HOME)],
        );
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let own = policy(&[]);
    assert!(own.contains("\"sts:AssumeRole\""), "{own}");
    assert!(
        own.contains("arn:aws:iam::111111111111:role/deploy"),
        "{own}"
    );
    let eu = policy(&["--target", "eu"]);
    assert!(!eu.contains("sts:AssumeRole"), "{eu}");
    assert!(eu.contains(":eu-west-1:111111111111:"), "{eu}");
    assert!(eu.contains(&regional_bucket(&p, ALL[1])), "{eu}");
    // Every target's role at once: one section each, its own account and bucket.
    let all: serde_json::Value =
        serde_json::from_str(&policy(&["--all-targets", "--json"])).unwrap();
    let sections = all.as_array().unwrap();
    assert_eq!(sections.len(), 3, "{all:#}");
    for (section, (name, (env, account, region))) in
        sections
            .iter()
            .zip([("home", ALL[0]), ("eu", ALL[1]), ("second", ALL[2])])
    {
        assert_eq!(section["target"], name);
        assert_eq!(section["account"], account);
        let text = section["policies"].to_string();
        assert!(
            text.contains(&regional_bucket(&p, (env, account, region))),
            "{name}: {text}"
        );
        assert!(!text.contains("sts:AssumeRole"), "{name}: {text}");
    }
    let out = p.run(&[
        "policy",
        "--command",
        "deploy-infra",
        "--wave",
        "1",
        "--check",
        "x.log",
    ]);
    let err = assert_failure(&out);
    assert!(
        err.contains("--check reads one target's request log"),
        "{err}"
    );

    let log = p.sample.path("eu-requests.log");
    let out = deploy_eu(&p, ("ARTIFACT_REQUEST_LOG", log.to_str().unwrap()));
    assert_success(&out);
    let out = p.run(&[
        "policy",
        "--command",
        "deploy-infra",
        "--target",
        "eu",
        "--check",
        log.to_str().unwrap(),
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["denied"], serde_json::json!([]), "{doc:#}");
    assert!(out.status.success(), "{doc:#}");
    assert!(
        doc["requests"].as_u64().unwrap() > 10,
        "the log holds the deploy: {doc:#}"
    );
}

/// `deploy-frontend --target A --target B`: each target's site goes to the
/// bucket its own stack's outputs name, in its own account, and each target
/// writes a summary file of its own.
#[test]
fn deploy_frontend_sends_each_targets_site_to_its_own_bucket() {
    crate::local_aws::server();
    let s = crate::common::Sample::new();
    let name = crate::local_aws::unique("fs");
    s.edit("artifact.toml", |t| {
        format!(
            "{t}\n[infra]\ndeployment_bucket = \"{{project}}-deployment-{{environment}}-{{account}}-{{region}}\"\n{}",
            targets("0", 4)
        )
    });
    // In each account: the deployment bucket, the site bucket and a stack
    // whose outputs name them (as the deploy_frontend tests make one).
    // STACK_SCRIPT's boto3.client calls go to the account and region given.
    let setup = format!(
        "{CLIENT}\nA, R = sys.argv[4], sys.argv[5]\nboto3.client = lambda service, **kw: client(service, A, R)\ns3 = boto3.client('s3')\ncfn = boto3.client('cloudformation')\ns3.create_bucket(Bucket=sys.argv[6])\n{}",
        crate::deploy_frontend::STACK_SCRIPT
    );
    for account in [HOME, OTHER] {
        boto(
            &setup,
            &[
                &name,
                &format!("{name}-site-{account}"),
                "{}",
                account,
                "us-east-1",
                &format!("{name}-deployment-dev-{account}-us-east-1"),
            ],
        );
    }
    let run = || {
        let out = crate::local_aws::artifact_aws_env(
            s.dir.path(),
            &[
                "deploy-frontend",
                "--json",
                "--target",
                "home",
                "--target",
                "second",
            ],
            &[("PROJECT_NAME", &name)],
        );
        assert_success(&out);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        results(&doc)
    };
    assert_eq!(run(), pairs(&[("home", "changed"), ("second", "changed")]));
    for account in [HOME, OTHER] {
        let keys = boto(
            &format!("{CLIENT}\nprint(json.dumps([o['Key'] for o in client('s3', sys.argv[2], 'us-east-1').list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])]))"),
            &[&format!("{name}-site-{account}"), account],
        );
        let keys: Vec<String> = serde_json::from_value(keys).unwrap();
        assert!(
            keys.iter().any(|k| k == "index.html"),
            "{account}: {keys:?}"
        );
        assert!(
            keys.iter().any(|k| k == "aws-config.js"),
            "{account}: {keys:?}"
        );
    }
    for t in ["home", "second"] {
        assert!(
            s.path(&format!("deployment-summary.{t}.json")).exists(),
            "{t}"
        );
    }
    assert_eq!(
        run(),
        pairs(&[("home", "unchanged"), ("second", "unchanged")])
    );
}
