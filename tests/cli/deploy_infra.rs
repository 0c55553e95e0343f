//! `artifact deploy-infra` against the local AWS server.

use artifact::cfn::{InfraReport, Outcome};
use artifact::pack::Manifest;

use crate::common::{assert_failure, assert_success, Sample, FUNCTIONS};
use crate::local_aws::{artifact_aws_env, boto, unique};

/// The sample under a project name of its own, packed, with its deployment bucket.
pub(crate) struct Project {
    pub(crate) sample: Sample,
    pub(crate) name: String,
}

impl Project {
    pub(crate) fn new() -> Project {
        let p = Project::unpacked();
        p.pack();
        boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
        p
    }

    pub(crate) fn unpacked() -> Project {
        Project::unpacked_of("sample")
    }

    /// A copy of `testdata/<sample>` under a project name of its own.
    pub(crate) fn unpacked_of(sample: &str) -> Project {
        crate::local_aws::server();
        Project {
            sample: Sample::of(sample),
            name: unique("p"),
        }
    }

    pub(crate) fn bucket(&self) -> String {
        format!("{}-deployment-dev", self.name)
    }

    pub(crate) fn stack(&self) -> String {
        format!("{}-dev", self.name)
    }

    pub(crate) fn run(&self, args: &[&str]) -> std::process::Output {
        artifact_aws_env(
            self.sample.dir.path(),
            args,
            &[
                ("PROJECT_NAME", &self.name),
                ("CODEBUILD_RESOLVED_SOURCE_VERSION", "0123456789abcdef0123"),
            ],
        )
    }

    pub(crate) fn pack(&self) {
        assert_success(&self.run(&["pack", "-q"]));
    }

    pub(crate) fn deploy(&self, extra: &[&str]) -> InfraReport {
        // A bounded wait: a stack that never settles fails the test, not CI.
        let mut args = vec!["deploy-infra", "--json", "--timeout", "120s"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub(crate) fn deploy_fails(&self, extra: &[&str]) -> (String, serde_json::Value) {
        let mut args = vec!["deploy-infra", "--json", "--timeout", "120s"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let err = assert_failure(&out);
        let doc = serde_json::from_slice(&out.stdout).unwrap();
        (err, doc)
    }

    pub(crate) fn manifest(&self) -> Manifest {
        Manifest::load(&self.sample.path("build/lambda/manifest.json")).unwrap()
    }

    pub(crate) fn code_sha(&self, function: &str) -> String {
        boto(
            "print(json.dumps(lam.get_function_configuration(FunctionName=sys.argv[1])['CodeSha256']))",
            &[&format!("{}-dev-{function}", self.name)],
        )
        .as_str()
        .unwrap()
        .to_string()
    }

    pub(crate) fn stack_status(&self) -> String {
        boto(
            "print(json.dumps(cfn.describe_stacks(StackName=sys.argv[1])['Stacks'][0]['StackStatus']))",
            &[&self.stack()],
        )
        .as_str()
        .unwrap()
        .to_string()
    }

    pub(crate) fn outputs_file(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.sample.path("stack-outputs.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

#[test]
fn a_first_deploy_creates_and_a_second_one_does_nothing() {
    let p = Project::new();
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.change_set_type.as_deref(), Some("CREATE"));
    let cs = r.change_set.clone().unwrap();
    assert!(cs.starts_with("artifact-0123456789ab-"), "{cs}");
    assert_eq!(r.stack_status.as_deref(), Some("CREATE_COMPLETE"));
    // Five zips and their SBOMs.
    assert_eq!(r.zips.uploaded, 10);
    let added: Vec<&str> = r.changes.iter().map(|c| c.logical_id.as_str()).collect();
    for id in [
        "LambdaRole",
        "ApiHandlerFunction",
        "FrontendBucket",
        "Distribution",
        "UserPool",
    ] {
        assert!(added.contains(&id), "{id} not in {added:?}");
    }
    assert!(r.changes.iter().all(|c| c.action == "Add"));
    assert!(r
        .template_url
        .ends_with(&format!("/{}/cfn/master-template.yaml", p.bucket())));
    // The stack made the functions from the packed zips: nothing left to update.
    let m = p.manifest();
    for f in FUNCTIONS {
        assert_eq!(p.code_sha(f), m.functions[f].code_sha256, "{f}");
    }
    assert!(r
        .functions
        .iter()
        .all(|f| f.action == artifact::lambda::CodeAction::Unchanged));
    let outputs = p.outputs_file();
    assert!(outputs
        .iter()
        .any(|o| o["OutputKey"] == "ApiHandlerFunctionArn"
            && o["OutputValue"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{}-dev-api-handler", p.name))));

    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Unchanged);
    assert_eq!(r.change_set, None);
    assert_eq!(r.zips.uploaded + r.templates.uploaded, 0);
    for op in [
        "CloudFormation.CreateChangeSet",
        "CloudFormation.ExecuteChangeSet",
        "Lambda.UpdateFunctionCode",
        "S3.PutObject",
    ] {
        assert!(!r.requests.contains_key(op), "{op} in {:?}", r.requests);
    }
    let total: u64 = r.requests.values().sum();
    assert!(total <= 15, "{total} requests: {:?}", r.requests);
    assert_eq!(p.outputs_file(), outputs);
}

/// `[infra] mode = "express"` per environment: the change set carries
/// CloudFormation's `DeploymentConfig` (its shape is checked against SDK
/// mocks in the unit tests; the local server accepts and ignores it), and
/// the deploy behaves as a standard one otherwise.
#[test]
fn express_mode_deploys_and_a_second_run_does_nothing() {
    let p = Project::new();
    p.sample.edit("artifact.toml", |t| {
        format!("{t}\n[environments.dev.infra]\nmode = \"express\"\n")
    });
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.stack_status.as_deref(), Some("CREATE_COMPLETE"));
    assert_eq!(p.deploy(&[]).outcome, Outcome::Unchanged);
}

#[test]
fn a_template_change_updates_the_stack_and_its_outputs() {
    let p = Project::new();
    p.deploy(&[]);
    p.sample.edit("cfn/master-template.yaml", |t| {
        format!("{t}  Stage:\n    Value: !Sub \"${{Environment}}-stage\"\n")
    });
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.change_set_type.as_deref(), Some("UPDATE"));
    assert_eq!(r.templates.uploaded, 1);
    assert_eq!(r.stack_status.as_deref(), Some("UPDATE_COMPLETE"));
    assert!(p
        .outputs_file()
        .iter()
        .any(|o| o["OutputKey"] == "Stage" && o["OutputValue"] == "dev-stage"));
}

#[test]
fn one_handler_change_updates_exactly_one_function() {
    let p = Project::new();
    p.deploy(&[]);
    let before: Vec<String> = FUNCTIONS.iter().map(|f| p.code_sha(f)).collect();
    p.sample.edit("lambda/poller/execution_poller.py", |t| {
        t.replace("POLLING", "POLLED")
    });
    p.pack();
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.change_set, None, "the stack itself did not change");
    assert_eq!(r.zips.uploaded, 2, "the zip and its SBOM");
    assert_eq!(crate::common::updated(&r.functions), ["execution-poller"]);
    assert_eq!(r.requests.get("Lambda.UpdateFunctionCode"), Some(&1));
    let m = p.manifest();
    for (i, f) in FUNCTIONS.iter().enumerate() {
        let now = p.code_sha(f);
        assert_eq!(now, m.functions[*f].code_sha256);
        assert_eq!(now == before[i], *f != "execution-poller", "{f}");
    }
}

#[test]
fn a_failing_update_rolls_back_and_names_the_resource_and_reason() {
    let p = Project::new();
    p.deploy(&[]);
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replacen(
            "Runtime: !Ref LambdaRuntime\n      Handler: execution_poller",
            "Runtime: python2.7\n      Handler: execution_poller",
            1,
        )
    });
    let (err, doc) = p.deploy_fails(&[]);
    assert!(err.contains("UPDATE_ROLLBACK_COMPLETE"), "{err}");
    assert!(err.contains("ExecutionPollerFunction"), "{err}");
    assert!(err.contains("python2.7 is no longer supported"), "{err}");
    assert_eq!(doc["outcome"], "failed");
    assert_eq!(p.stack_status(), "UPDATE_ROLLBACK_COMPLETE");
    // The stack can be updated again once the template is fixed.
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replace("Runtime: python2.7", "Runtime: !Ref LambdaRuntime")
    });
    let r = p.deploy(&[]);
    assert_eq!(r.change_set_type.as_deref(), Some("UPDATE"));
}

#[test]
fn a_failed_first_create_needs_replace_failed_stack() {
    let p = Project::new();
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replacen("Runtime: !Ref LambdaRuntime", "Runtime: python3.6", 1)
    });
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("ROLLBACK_COMPLETE"), "{err}");
    assert!(err.contains("ApiHandlerFunction"), "{err}");
    assert!(err.contains("--replace-failed-stack"), "{err}");
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replace("Runtime: python3.6", "Runtime: !Ref LambdaRuntime")
    });
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("ROLLBACK_COMPLETE"), "{err}");
    assert!(
        err.contains(
            "hint: fix the cause shown in its events, then deploy with --replace-failed-stack"
        ),
        "{err}"
    );
    let r = p.deploy(&["--replace-failed-stack"]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.change_set_type.as_deref(), Some("CREATE"));
    assert_eq!(p.stack_status(), "CREATE_COMPLETE");
}

#[test]
fn no_execute_leaves_the_change_set_for_review_and_the_next_deploy_creates() {
    let p = Project::new();
    let r = p.deploy(&["--no-execute"]);
    assert_eq!(r.outcome, Outcome::Review);
    assert_eq!(r.changes.len(), 11);
    assert_eq!(p.stack_status(), "REVIEW_IN_PROGRESS");
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.change_set_type.as_deref(), Some("CREATE"));
    assert_eq!(p.stack_status(), "CREATE_COMPLETE");
}

#[test]
fn dry_run_changes_nothing() {
    let p = Project::new();
    let r = p.deploy(&["--dry-run"]);
    assert_eq!(r.outcome, Outcome::DryRun);
    assert_eq!(r.change_set_type.as_deref(), Some("CREATE"));
    assert_eq!(
        r.zips.uploaded, 10,
        "would upload five zips and their SBOMs"
    );
    crate::common::assert_only_reads(&r.requests);
    let plan = r.plan.unwrap();
    assert_eq!(plan.step, artifact::cfn::StackStep::Create);
    assert!(plan
        .change_set
        .unwrap()
        .starts_with("artifact-0123456789ab-"));
    let keys = boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1]).get('KeyCount', 0)))",
        &[&p.bucket()],
    );
    assert_eq!(keys, 0);
    assert!(!p.sample.path("stack-outputs.json").exists());
    let exists = boto(
        "import botocore\ntry:\n    cfn.describe_stacks(StackName=sys.argv[1]); print('true')\nexcept botocore.exceptions.ClientError:\n    print('false')",
        &[&p.stack()],
    );
    assert_eq!(exists, false);
}

#[test]
fn dry_run_on_a_deployed_stack_lists_parameters_and_code_it_would_change() {
    let p = Project::new();
    p.deploy(&[]);
    let status = p.stack_status();
    let deployed = p.code_sha("api-handler");
    p.sample
        .edit("lambda/index.py", |t| format!("{t}\n# edited\n"));
    p.pack();
    p.sample.edit("artifact.toml", |t| {
        t.replace("[pack]", "[infra.tags]\nteam = \"payments\"\n\n[pack]")
    });
    let r = p.deploy(&["--dry-run"]);
    crate::common::assert_only_reads(&r.requests);
    let plan = r.plan.unwrap();
    assert_eq!(plan.step, artifact::cfn::StackStep::Update);
    assert_eq!(plan.tags.len(), 1, "{:?}", plan.tags);
    assert_eq!(plan.tags[0].wanted.as_deref(), Some("payments"));
    let would: Vec<&str> = plan
        .functions
        .iter()
        .filter(|f| f.action == artifact::lambda::CodeAction::WouldUpdate)
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(would, ["api-handler"], "{:?}", plan.functions);
    assert_eq!(p.stack_status(), status);
    assert_eq!(
        p.code_sha("api-handler"),
        deployed,
        "the code is not updated in a dry run"
    );
}

#[test]
fn a_function_the_stack_does_not_create_is_named() {
    let p = Project::unpacked();
    p.sample.edit("artifact.toml", |t| {
        format!("{t}\n[functions.reporter]\nfiles = [\"index.py\"]\ndependencies = false\n")
    });
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    let (err, _) = p.deploy_fails(&[]);
    // Refused before anything is created, as validate would.
    assert!(
        err.contains(&format!(
            "no AWS::Lambda::Function in the templates is named {}-dev-reporter",
            p.name
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: the stack must create each function"),
        "{err}"
    );
    // Nothing uploaded, and no failed deployment recorded: a refusal changes nothing.
    let keys = boto(
        "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])]))",
        &[&p.bucket()],
    );
    assert_eq!(keys, serde_json::json!([]), "nothing uploaded");
    let exists = boto(
        "import botocore\ntry:\n    cfn.describe_stacks(StackName=sys.argv[1]); print('true')\nexcept botocore.exceptions.ClientError:\n    print('false')",
        &[&p.stack()],
    );
    assert_eq!(exists, false, "no stack created");
}

#[test]
fn names_at_and_over_the_limits() {
    let p = Project::new();
    let at = format!("s{}", "a".repeat(127));
    p.sample.edit("artifact.toml", |t| {
        t.replace(
            "[pack]",
            &format!("[infra]\nstack_name = \"{at}\"\n\n[pack]"),
        )
    });
    let r = p.deploy(&["--dry-run"]);
    assert_eq!(r.stack, at);
    p.sample
        .edit("artifact.toml", |t| t.replace(&at, &format!("{at}b")));
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("129 characters long; at most 128"), "{err}");
}

#[test]
fn the_pipeline_template_deploys_with_deploy_infra() {
    crate::local_aws::server();
    let s = Sample::new();
    let name = unique("pl");
    boto(
        "s3.create_bucket(Bucket=sys.argv[1])",
        &[&format!("{name}-bootstrap-dev")],
    );
    let buildspecs = crate::common::repo().join("buildspecs");
    crate::common::copy_tree(&buildspecs, &s.path("pipeline"));
    let out = artifact_aws_env(
        s.dir.path(),
        &[
            "deploy-infra",
            "--config",
            "pipeline/artifact.toml",
            "--json",
            "--timeout",
            "120s",
        ],
        &[("PROJECT_NAME", &name)],
    );
    assert_success(&out);
    let r: InfraReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.outcome, Outcome::Changed);
    let keys: Vec<&str> = r.outputs.iter().map(|o| o.key.as_str()).collect();
    assert!(
        keys.contains(&"PipelineName") && keys.contains(&"DeploymentBucketName"),
        "{keys:?}"
    );
    assert!(s.path("pipeline/pipeline-outputs.json").exists());
}

#[test]
fn a_missing_bucket_a_missing_manifest_and_a_huge_template() {
    let p = Project::unpacked();
    p.pack();
    let (err, _) = p.deploy_fails(&[]);
    assert!(
        err.contains(&format!("deployment bucket {} does not exist", p.bucket())),
        "{err}"
    );
    assert!(err.contains("hint: create the deployment bucket"), "{err}");

    std::fs::remove_file(p.sample.path("build/lambda/manifest.json")).unwrap();
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("no pack manifest"), "{err}");
    assert!(err.contains("hint: run artifact pack first"), "{err}");

    p.pack();
    let big = format!("# {}\n", "x".repeat(1_048_576));
    std::fs::write(p.sample.path("cfn/nested.yaml"), big).unwrap();
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("cfn/nested.yaml"), "{err}");
    assert!(err.contains("1048576-byte limit"), "{err}");
}

#[test]
fn a_zip_changed_after_pack_or_a_manifest_of_another_project_is_refused() {
    let p = Project::new();
    // Same size, other bytes: only the hash tells.
    let zip = p.sample.path("build/lambda/api-handler.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let last = bytes.len() - 30;
    bytes[last] ^= 0xff;
    std::fs::write(&zip, &bytes).unwrap();
    let (err, _) = p.deploy_fails(&[]);
    assert!(
        err.contains("api-handler.zip changed since it was packed"),
        "{err}"
    );
    assert!(err.contains("hint: run artifact pack"), "{err}");
    let keys = boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1], Prefix='lambda/').get('KeyCount', 0)))",
        &[&p.bucket()],
    );
    assert_eq!(keys, 0, "no zip was uploaded");
    // A refusal before anything changed is not a failed deployment: nothing is recorded.
    let records = boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1], Prefix='deployments/').get('KeyCount', 0)))",
        &[&p.bucket()],
    );
    assert_eq!(records, 0, "a refusal was recorded as a deployment");

    p.pack();
    let out = artifact_aws_env(
        p.sample.dir.path(),
        &["deploy-infra", "--dry-run"],
        &[("PROJECT_NAME", &p.name), ("ENVIRONMENT", "prod")],
    );
    let err = assert_failure(&out);
    assert!(
        err.contains(&format!("was packed for {}-dev", p.name)),
        "{err}"
    );
    assert!(
        err.contains(&format!("this deploy is for {}-prod", p.name)),
        "{err}"
    );
}

/// How many times the run whose stderr is `err` parsed template `file`.
fn parses_of(err: &str, file: &str) -> usize {
    err.matches(&format!("parsed template {file}")).count()
}

#[test]
fn deploy_infra_parses_each_template_once_per_run() {
    let p = Project::new();
    std::fs::create_dir_all(p.sample.path("cfn/nested")).unwrap();
    std::fs::write(
        p.sample.path("cfn/nested/alarms.yaml"),
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut env = vec![("PROJECT_NAME", p.name.as_str())];
        env.push(("RUST_LOG", "artifact::template=debug"));
        let out = artifact_aws_env(p.sample.dir.path(), args, &env);
        assert_success(&out);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A create, then a run that changes nothing: each template read once in each.
    for _ in 0..2 {
        let err = run(&["deploy-infra", "--timeout", "120s"]);
        assert_eq!(parses_of(&err, "cfn/master-template.yaml"), 1, "{err}");
        assert_eq!(parses_of(&err, "cfn/nested/alarms.yaml"), 1, "{err}");
    }
    // validate reads the set once too.
    let err = run(&["validate", "--offline"]);
    assert_eq!(parses_of(&err, "cfn/master-template.yaml"), 1, "{err}");
}

/// Swaps api-handler's zip for one of other bytes and edits manifest.json to
/// match it (size, SHA-256, CodeSha256): what an attacker between Build and
/// Deploy would do.
pub(crate) fn swap_zip_and_edit_manifest(sample: &Sample) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let zip = sample.path("build/lambda/api-handler.zip");
    let other = sample.path("build/lambda/execution-finder.zip");
    let bytes = std::fs::read(&other).unwrap();
    std::fs::write(&zip, &bytes).unwrap();
    let sha = sha2::Sha256::digest(&bytes);
    let path = sample.path("build/lambda/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let f = &mut m["functions"]["api-handler"];
    f["sha256"] = artifact::util::hex(&sha).into();
    f["code_sha256"] = base64::engine::general_purpose::STANDARD.encode(sha).into();
    f["zip_size"] = bytes.len().into();
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[test]
fn a_swapped_zip_with_a_manifest_edited_to_match_is_refused_by_its_provenance() {
    let p = Project::new();
    swap_zip_and_edit_manifest(&p.sample);
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("provenance.intoto.jsonl"), "{err}");
    assert!(err.contains("api-handler.zip"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let keys = boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1], Prefix='lambda/').get('KeyCount', 0)))",
        &[&p.bucket()],
    );
    assert_eq!(keys, 0, "no zip was uploaded");
    // Without a provenance at all, nothing is deployed either.
    p.pack();
    std::fs::remove_file(p.sample.path("build/lambda/provenance.intoto.jsonl")).unwrap();
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("provenance.intoto.jsonl"), "{err}");
}
