//! `testdata/sample-nested`: a master template over eight nested stacks that
//! pass values by `!GetAtt <Nested>.Outputs.<Name>`, deployed, redeployed,
//! updated, failed and rolled back on the local server.

use artifact::cfn::Outcome;

use crate::common::assert_failure;
use crate::deploy_infra::Project;
use crate::local_aws::boto;

const FUNCTIONS: &str = "functions/functions.yaml";

/// The nested sample under a project name of its own, packed, with its bucket.
fn project() -> Project {
    let p = Project::unpacked_of("sample-nested");
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    p
}

/// A fresh checkout of the same project (same name, same bucket), packed.
fn checkout_of(p: &Project) -> Project {
    let fresh = Project {
        sample: crate::common::Sample::of("sample-nested"),
        name: p.name.clone(),
    };
    fresh.pack();
    fresh
}

fn edit_cfn(p: &Project, rel: &str, from: &str, to: &str) {
    p.sample.edit(&format!("cfn/{rel}"), |t| {
        assert!(t.contains(from), "{rel} has no {from:?}");
        t.replacen(from, to, 1)
    });
}

fn memory(p: &Project, function: &str) -> u64 {
    boto(
        "print(json.dumps(lam.get_function_configuration(FunctionName=sys.argv[1])['MemorySize']))",
        &[&format!("{}-{function}-dev", p.name)],
    )
    .as_u64()
    .unwrap()
}

/// Nested stack ARNs of the root, by logical id.
fn nested_ids(p: &Project) -> serde_json::Value {
    boto(
        "print(json.dumps({r['LogicalResourceId']: r['PhysicalResourceId'] for r in cfn.describe_stack_resources(StackName=sys.argv[1])['StackResources'] if r['ResourceType'] == 'AWS::CloudFormation::Stack'}))",
        &[&p.stack()],
    )
}

#[test]
fn a_nested_application_deploys_redeploys_as_a_no_op_and_updates_only_what_changed() {
    let p = project();
    // validate follows every TemplateURL (pseudo parameters included) to its template.
    let out = p.run(&["validate", "--offline", "--json"]);
    crate::common::assert_success(&out);
    let v: artifact::validate::ValidateReport = serde_json::from_slice(&out.stdout).unwrap();
    let named: Vec<(&str, Option<&str>)> = v
        .nested
        .iter()
        .map(|n| (n.stack.as_str(), n.template.as_deref()))
        .collect();
    assert_eq!(named.len(), 8, "{named:?}");
    assert!(
        named.contains(&("cfn/main-stack.yaml: Auth", Some("auth/cognito.yaml"))),
        "{named:?}"
    );
    assert!(named.iter().all(|(_, t)| t.is_some()), "{named:?}");
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    let ids = nested_ids(&p);
    assert_eq!(ids.as_object().unwrap().len(), 8, "{ids}");
    assert_eq!(memory(&p, "api"), 256);
    // stack-outputs.json: the root's outputs, then each nested stack's.
    let rows = p.outputs_file();
    let key = |k: &str| rows.iter().find(|o| o["OutputKey"] == k).cloned();
    assert!(key("ApiEndpoint").is_some(), "{rows:?}");
    let bucket = key("Site.SiteBucketName").unwrap();
    assert_eq!(bucket["OutputValue"], format!("{}-site-dev", p.name));
    assert_eq!(bucket["Stack"], "Site");
    assert!(key("Monitoring.AlertsTopicArn").is_some(), "{rows:?}");
    // The output whose condition is false is not there.
    assert!(key("Monitoring.WorkerErrorsAlarmArn").is_none(), "{rows:?}");

    // A fresh checkout deploys nothing: no change set, no code update.
    let fresh = checkout_of(&p);
    let again = fresh.deploy(&[]);
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.change_set, None);
    assert_eq!(again.templates.uploaded, 0);

    // One nested template edited: the dry run names that nested stack only,
    // then the deploy updates it, in place.
    edit_cfn(&fresh, FUNCTIONS, "MemorySize: 256", "MemorySize: 512");
    let dry = fresh.deploy(&["--dry-run"]);
    let plan = dry.plan.unwrap();
    let changed: Vec<&str> = plan
        .nested
        .iter()
        .filter(|n| n.template_changed)
        .map(|n| n.stack.as_str())
        .collect();
    assert_eq!(changed, ["Functions"]);
    assert_eq!(plan.nested.len(), 8);
    let r = fresh.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.templates.uploaded, 1);
    let root_rows: Vec<(&str, &str)> = r
        .changes
        .iter()
        .filter(|c| !c.logical_id.contains('/'))
        .map(|c| (c.action.as_str(), c.logical_id.as_str()))
        .collect();
    assert_eq!(root_rows, [("Modify", "Functions")], "{:?}", r.changes);
    assert!(
        r.changes
            .iter()
            .any(|c| c.logical_id == "Functions/ApiFunction" && c.action == "Modify"),
        "the nested change set's rows are listed: {:?}",
        r.changes
    );
    assert_eq!(memory(&fresh, "api"), 512);
    assert_eq!(
        nested_ids(&fresh),
        ids,
        "nested stacks are updated in place"
    );

    // One handler edited: only that function's code, no change set.
    fresh
        .sample
        .edit("lambda/api/index.py", |t| format!("{t}# edited\n"));
    fresh.pack();
    let r = fresh.deploy(&[]);
    assert_eq!(r.change_set, None);
    let actions: Vec<(String, String)> = r
        .functions
        .iter()
        .map(|f| (f.function.clone(), format!("{:?}", f.action)))
        .collect();
    assert_eq!(
        actions,
        [
            ("api".to_string(), "Updated".to_string()),
            ("worker".to_string(), "Unchanged".to_string())
        ]
    );
}

/// A deploy that fails: all it printed, and its one `error:` line.
fn failed_deploy(p: &Project) -> (String, String) {
    let err = assert_failure(&p.run(&["deploy-infra", "--timeout", "120s"]));
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string();
    (err, line)
}

#[test]
fn a_failure_inside_a_nested_stack_is_explained_in_one_error_line() {
    let p = project();
    p.deploy(&[]);
    edit_cfn(&p, FUNCTIONS, "Runtime: !Ref Runtime", "Runtime: python3.6");
    let (err, line) = failed_deploy(&p);
    assert!(
        line.contains("first failure: Functions/ApiFunction (AWS::Lambda::Function)")
            && line.contains("python3.6 is no longer supported"),
        "{err}"
    );
    // The nested stack's events were followed, prefixed with its logical id.
    assert!(
        err.contains("UPDATE_FAILED                Functions/ApiFunction"),
        "{err}"
    );
}

#[test]
fn a_failed_nested_change_set_names_the_nested_stack_and_reason_and_none_is_left() {
    let p = project();
    p.deploy(&[]);
    edit_cfn(
        &p,
        "messaging/topics.yaml",
        "Outputs:",
        "  DeadLetters:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Ref NoSuchParameter\nOutputs:",
    );
    let (err, line) = failed_deploy(&p);
    assert!(
        line.contains("in nested stack Messaging: Template format error: Unresolved resource dependencies [NoSuchParameter]"),
        "{err}"
    );
    // No FAILED change set is left, on the root or on the nested stack.
    let messaging = nested_ids(&p)["Messaging"].as_str().unwrap().to_string();
    for stack in [p.stack(), messaging] {
        let left = boto(
            "print(json.dumps([c['ChangeSetName'] for c in cfn.list_change_sets(StackName=sys.argv[1])['Summaries'] if c['Status'] == 'FAILED' and sys.argv[1] in (c['StackName'], c['StackId'])]))",
            &[&stack],
        );
        assert_eq!(
            left,
            serde_json::json!([]),
            "{stack}: no change set is left behind"
        );
    }
}

#[test]
fn rollback_restores_every_template_of_the_set() {
    let p = project();
    p.deploy(&[]);
    let key = format!("cfn/{FUNCTIONS}");
    let read = |p: &Project| {
        boto(
            "print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read().decode()))",
            &[&p.bucket(), &key],
        )
    };
    let first = read(&p);
    edit_cfn(&p, FUNCTIONS, "MemorySize: 256", "MemorySize: 1024");
    p.deploy(&[]);
    assert_eq!(memory(&p, "api"), 1024);
    let out = p.run(&["rollback", "--infra", "--json", "--timeout", "120s"]);
    crate::common::assert_success(&out);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &r["infra"];
    assert_eq!(r["outcome"], "rolled back", "{r}");
    assert_eq!(
        r["plan"]["nested_templates"],
        serde_json::json!([FUNCTIONS]),
        "{r}"
    );
    // The nested template's change is undone, and its key holds the old bytes.
    assert_eq!(memory(&p, "api"), 256);
    assert_eq!(read(&p), first);
}

/// Each bad TemplateURL or nested template: an error naming the template and
/// the resource, and nothing uploaded or created.
#[test]
fn bad_nested_stacks_are_refused_before_anything_is_uploaded() {
    let main = "main-stack.yaml";
    let huge = format!("# {}\nOutputs:", "x".repeat(1_100_000));
    type Edit<'a> = (&'a str, &'a str, &'a str);
    let cases: Vec<(&str, Vec<Edit>, &str, &str)> = vec![
        (
            "missing key",
            vec![(main, "cfn/api/api.yaml", "cfn/api/apis.yaml")],
            "cfn/main-stack.yaml: Api:",
            "names key cfn/api/apis.yaml",
        ),
        (
            "other bucket",
            vec![(
                main,
                "https://${DeploymentBucketName}.s3.amazonaws.com/cfn/iam/roles.yaml",
                "https://someone-elses-bucket.s3.amazonaws.com/cfn/iam/roles.yaml",
            )],
            "cfn/main-stack.yaml: Iam:",
            "names bucket someone-elses-bucket",
        ),
        (
            "s3 url",
            vec![(
                main,
                "https://${DeploymentBucketName}.s3.amazonaws.com/cfn/site/site.yaml",
                "s3://${DeploymentBucketName}/cfn/site/site.yaml",
            )],
            "cfn/main-stack.yaml: Site:",
            "not s3:// URLs",
        ),
        (
            "does not parse",
            vec![("data/tables.yaml", "Resources:", "Resources: [")],
            "cfn/main-stack.yaml: Data:",
            "cfn/data/tables.yaml does not parse",
        ),
        (
            "cycle",
            vec![
                (
                    FUNCTIONS,
                    "Outputs:",
                    "  Loop:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: !Sub \"https://${DeploymentBucketName}.s3.amazonaws.com/cfn/api/api.yaml\"\nOutputs:",
                ),
                (
                    "api/api.yaml",
                    "Outputs:",
                    "  Back:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: https://BUCKET.s3.amazonaws.com/cfn/functions/functions.yaml\nOutputs:",
                ),
            ],
            "cfn/functions/functions.yaml: Loop:",
            "cycle: cfn/api/api.yaml → cfn/functions/functions.yaml → cfn/api/api.yaml",
        ),
        (
            "over 1 MB",
            vec![("monitoring/alarms.yaml", "Outputs:", &huge)],
            "cfn/main-stack.yaml: Monitoring:",
            "over CloudFormation's 1048576-byte limit",
        ),
    ];
    for (what, edits, at, why) in cases {
        let p = project();
        for (rel, from, to) in edits {
            let to = to.replace("BUCKET", &p.bucket());
            edit_cfn(&p, rel, from, &to);
        }
        let out = p.run(&["deploy-infra", "--timeout", "60s"]);
        let err = assert_failure(&out);
        assert!(err.contains(at) && err.contains(why), "{what}: {err}");
        let keys = boto(
            "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])]))",
            &[&p.bucket()],
        );
        assert_eq!(keys, serde_json::json!([]), "{what}: nothing uploaded");
        let stacks = boto(
            "print(json.dumps([s['StackName'] for s in cfn.list_stacks()['StackSummaries'] if s['StackName'] == sys.argv[1]]))",
            &[&p.stack()],
        );
        assert_eq!(stacks, serde_json::json!([]), "{what}: no stack");
        // validate names the same problem.
        let out = p.run(&["validate", "--offline"]);
        let err = assert_failure(&out);
        assert!(
            err.contains(at) && err.contains(why),
            "{what}: validate: {err}"
        );
    }
    // A URL for another region than the stack's.
    let p = project();
    let out = crate::local_aws::artifact_aws_env(
        p.sample.dir.path(),
        &["deploy-infra", "--timeout", "60s"],
        &[("PROJECT_NAME", &p.name), ("AWS_REGION", "eu-west-1")],
    );
    let err = assert_failure(&out);
    assert!(
        err.contains("cfn/main-stack.yaml: Iam:") && err.contains("us-east-1 only"),
        "{err}"
    );
}

/// deploy-frontend finds the site's bucket and distribution among the nested
/// stacks' outputs (the root stack has neither).
#[test]
fn deploy_frontend_reads_the_sites_outputs_from_a_nested_stack() {
    let p = project();
    p.deploy(&[]);
    let out = p.run(&["deploy-frontend", "--json"]);
    crate::common::assert_success(&out);
    let site = format!("{}-site-dev", p.name);
    let keys = boto(
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []))))",
        &[&site],
    );
    let keys: Vec<String> = serde_json::from_value(keys).unwrap();
    assert!(keys.contains(&"index.html".to_string()), "{keys:?}");
    assert!(keys.contains(&"assets/app.js".to_string()), "{keys:?}");
    // aws-config.js carries the nested Auth stack's client id.
    let client = boto(
        "print(json.dumps([o['OutputValue'] for o in cfn.describe_stacks(StackName=sys.argv[1])['Stacks'][0]['Outputs'] if o['OutputKey'] == 'UserPoolClientId'][0]))",
        &[nested_ids(&p)["Auth"].as_str().unwrap()],
    );
    let config = boto(
        "print(json.dumps(s3.get_object(Bucket=sys.argv[1], Key='aws-config.js')['Body'].read().decode()))",
        &[&site],
    );
    assert!(
        config.as_str().unwrap().contains(client.as_str().unwrap()),
        "{config} {client}"
    );
}
