//! The pipeline: buildspecs that call only what exists, and templates that lint clean.

use std::process::Command;

use crate::common::repo;

const BUILDSPECS: [&str; 5] = [
    "validate.yml",
    "build.yml",
    "test.yml",
    "deploy-infra.yml",
    "deploy-frontend.yml",
];

/// Every `artifact …` line in a buildspec's phase commands: (subcommand, flags).
fn artifact_calls(doc: &serde_norway::Value) -> Vec<(String, Vec<String>)> {
    let mut calls = Vec::new();
    let Some(phases) = doc.get("phases").and_then(|p| p.as_mapping()) else {
        return calls;
    };
    for phase in phases.values() {
        let Some(cmds) = phase.get("commands").and_then(|c| c.as_sequence()) else {
            continue;
        };
        for cmd in cmds.iter().filter_map(|c| c.as_str()) {
            for line in cmd.lines() {
                let mut words = line.split_whitespace();
                if words.next() != Some("artifact") {
                    continue;
                }
                // `artifact --version`: no subcommand.
                let Some(sub) = words.next().filter(|w| !w.starts_with('-')) else {
                    continue;
                };
                let flags = words
                    .filter(|w| w.starts_with("--"))
                    .map(|w| w.split('=').next().unwrap().to_string())
                    .collect();
                calls.push((sub.to_string(), flags));
            }
        }
    }
    calls
}

#[test]
fn buildspecs_parse_and_call_only_subcommands_and_flags_that_exist() {
    let mut seen = Vec::new();
    for name in BUILDSPECS {
        let path = repo().join("buildspecs").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_norway::Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            doc.get("version").and_then(|v| v.as_f64()),
            Some(0.2),
            "{name}"
        );
        for (sub, flags) in artifact_calls(&doc) {
            let help = Command::new(env!("CARGO_BIN_EXE_artifact"))
                .args([&sub, "--help"])
                .output()
                .unwrap();
            assert!(
                help.status.success(),
                "{name}: `artifact {sub}` is not a subcommand"
            );
            let help = String::from_utf8_lossy(&help.stdout);
            for f in &flags {
                assert!(
                    help.contains(f.as_str()),
                    "{name}: `artifact {sub}` has no {f}"
                );
            }
            seen.push(sub);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        ["deploy-frontend", "deploy-infra", "pack", "validate"]
    );
}

#[test]
fn the_cache_folder_is_kept_between_builds() {
    let text = std::fs::read_to_string(repo().join("buildspecs/build.yml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let paths: Vec<&str> = doc["cache"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(paths.contains(&".artifact-cache/**/*"), "{paths:?}");
    let files: Vec<&str> = doc["artifacts"]["files"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(files.contains(&"build/**/*"), "{files:?}");
}

#[test]
fn cfn_lint_finds_nothing_in_the_pipeline_or_the_samples() {
    crate::local_aws::server(); // installs the venv, cfn-lint included
    let out = Command::new(repo().join(".venv/bin/cfn-lint"))
        .arg(repo().join("buildspecs/pipeline.yaml"))
        .arg(repo().join("testdata/sample/cfn/master-template.yaml"))
        .arg(repo().join("testdata/sample-layer/cfn/master-template.yaml"))
        .output()
        .expect("cfn-lint from the project's venv");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pipeline template, deployed on the local server with the mirror on:
/// the stack completes; the mirror's role may push to the repository and
/// nothing else; the dashboard shows the stages and artifact's figures; both
/// alarms notify the topic.
#[test]
fn the_pipeline_template_deploys_with_its_mirror_dashboard_and_alarms() {
    crate::local_aws::server();
    let name = crate::local_aws::unique("pipe");
    let project = format!("p{}", name.replace('-', "").to_lowercase());
    let body = std::fs::read_to_string(repo().join("buildspecs/pipeline.yaml")).unwrap();
    let script = r#"
import time
name, project, body = sys.argv[1], sys.argv[2], sys.argv[3]
params = {'ProjectName': project, 'GitHubRepositoryUrl': 'https://github.com/o/r',
          'GitHubTokenSecretName': 'github-token', 'ToolsBucket': project + '-bootstrap'}
cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=['CAPABILITY_NAMED_IAM'],
                 Parameters=[{'ParameterKey': k, 'ParameterValue': v} for k, v in params.items()])
for _ in range(120):
    stack = cfn.describe_stacks(StackName=name)['Stacks'][0]
    if not stack['StackStatus'].endswith('IN_PROGRESS'):
        break
    time.sleep(0.5)
resources = {r['LogicalResourceId']: r['PhysicalResourceId'] for r in cfn.list_stack_resources(StackName=name)['StackResourceSummaries']}
iam = boto3.client('iam')
role = resources['MirrorRole']
policy = iam.get_role_policy(RoleName=role, PolicyName='mirror')['PolicyDocument']
if isinstance(policy, str):  # moto keeps a template's policy as Python's text of it
    import ast
    policy = ast.literal_eval(policy)
repo = f'arn:aws:codecommit:us-east-1:123456789012:{project}-dev'
cw = boto3.client('cloudwatch')
dashboard = cw.get_dashboard(DashboardName=f'{project}-dev-pipeline')['DashboardBody']
alarms = {a['AlarmName']: a['AlarmActions'] for a in cw.describe_alarms(AlarmNamePrefix=f'{project}-dev-')['MetricAlarms']}
print(json.dumps({'status': stack['StackStatus'], 'resources': sorted(resources), 'policy': policy,
                  'repo': repo, 'dashboard': json.loads(dashboard), 'alarms': alarms, 'topic': resources['NotificationTopic']}))
"#;
    let out = crate::local_aws::boto(script, &[&name, &project, &body]);
    assert_eq!(out["status"], "CREATE_COMPLETE", "{out}");
    let resources: Vec<String> = serde_json::from_value(out["resources"].clone()).unwrap();
    for id in [
        "MirrorProject",
        "MirrorRole",
        "MirrorSourceCredential",
        "Dashboard",
        "PipelineFailedAlarm",
        "BuildSlowerAlarm",
    ] {
        assert!(
            resources.iter().any(|r| r == id),
            "{id} not in {resources:?}"
        );
    }
    // The mirror's role: GitPush on this repository, its own logs, nothing else.
    let statements = out["policy"]["Statement"].as_array().unwrap();
    let push: Vec<&serde_json::Value> = statements
        .iter()
        .filter(|s| s["Action"] == "codecommit:GitPush")
        .collect();
    assert_eq!(push.len(), 1, "{statements:?}");
    assert_eq!(push[0]["Resource"], out["repo"]);
    for s in statements {
        let actions = s["Action"].to_string();
        assert!(
            actions.contains("codecommit:GitPush") || actions.contains("logs:"),
            "{s}"
        );
    }
    // The dashboard: every stage's duration, and artifact's deployments.
    let text = out["dashboard"].to_string();
    for stage in [
        "validate",
        "build",
        "test",
        "deploy-infra",
        "deploy-frontend",
    ] {
        assert!(text.contains(&format!("-dev-{stage}\"")), "{stage}: {text}");
    }
    assert!(text.contains("Artifact/Pipeline") && text.contains("Deployments"));
    // Both alarms notify the topic.
    for alarm in ["pipeline-failed", "build-slower"] {
        let actions = &out["alarms"][format!("{project}-dev-{alarm}")];
        assert_eq!(actions[0], out["topic"], "{alarm}: {}", out["alarms"]);
    }
    let doc: serde_norway::Value = serde_norway::from_str(&body).unwrap();
    // Both buckets: versioned, and incomplete multipart uploads removed.
    for bucket in ["ArtifactBucket", "DeploymentBucket"] {
        let props = &doc["Resources"][bucket]["Properties"];
        assert_eq!(
            props["VersioningConfiguration"]["Status"].as_str(),
            Some("Enabled")
        );
        assert!(
            format!("{:?}", props["LifecycleConfiguration"])
                .contains("AbortIncompleteMultipartUpload"),
            "{bucket}"
        );
    }
}

#[test]
fn every_subcommand_help_ends_with_an_example_of_itself() {
    for sub in [
        "pack",
        "sync",
        "deploy-infra",
        "deploy-frontend",
        "config",
        "validate",
        "history",
        "rollback",
        "verify",
        "policy",
    ] {
        let help = Command::new(env!("CARGO_BIN_EXE_artifact"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "{sub}");
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains(&format!("Example:\n  artifact {sub} ")),
            "`artifact {sub} --help` shows no example:\n{help}"
        );
    }
}

/// What checkov's IAM checks look for in the pipeline template, by its own
/// walk: no statement allows `*` or `<service>:*` (wildcard actions, admin
/// equivalence); every role the stack's role may create must carry the
/// boundary; the KMS key that encrypts the retained buckets is retained too.
#[test]
fn the_pipeline_grants_nothing_admin_equivalent_and_keeps_its_key() {
    let text = std::fs::read_to_string(repo().join("buildspecs/pipeline.yaml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut allows = Vec::new();
    for (name, r) in resources {
        let props = &r["Properties"];
        let mut docs = Vec::new();
        if let Some(policies) = props["Policies"].as_sequence() {
            docs.extend(policies.iter().map(|p| p["PolicyDocument"].clone()));
        }
        if !props["PolicyDocument"].is_null() {
            docs.push(props["PolicyDocument"].clone());
        }
        for d in docs {
            for st in d["Statement"].as_sequence().cloned().unwrap_or_default() {
                if st["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                let actions: Vec<String> = match &st["Action"] {
                    serde_norway::Value::String(a) => vec![a.clone()],
                    serde_norway::Value::Sequence(v) => v
                        .iter()
                        .filter_map(|a| a.as_str().map(String::from))
                        .collect(),
                    _ => Vec::new(),
                };
                for a in actions {
                    allows.push((name.as_str().unwrap().to_string(), a, st.clone()));
                }
            }
        }
    }
    assert!(allows.len() > 50, "statements were read: {}", allows.len());
    for (role, action, _) in &allows {
        assert!(
            action != "*" && !action.ends_with(":*"),
            "{role} allows {action}: a wildcard action"
        );
    }
    let creates: Vec<_> = allows
        .iter()
        .filter(|(_, a, _)| a == "iam:CreateRole")
        .collect();
    assert!(!creates.is_empty());
    for (role, _, st) in creates {
        assert!(
            !st["Condition"]["StringEquals"]["iam:PermissionsBoundary"].is_null(),
            "{role} may create roles without the permissions boundary"
        );
    }
    let key = &doc["Resources"]["ArtifactKey"];
    assert_eq!(key["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(key["UpdateReplacePolicy"].as_str(), Some("Retain"));
}
