//! Deployment history and rollback on the local AWS server.

use artifact::cfn::Outcome;
use artifact::history::rollback::RollbackReport;
use artifact::history::Entry;
use artifact::pack::Manifest;

use crate::common::{assert_failure, assert_only_reads, assert_success, FUNCTIONS};
use crate::deploy_infra::Project;
use crate::local_aws::boto;

fn history(p: &Project) -> Vec<Entry> {
    let out = p.run(&["history", "--json"]);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rollback(p: &Project, extra: &[&str]) -> RollbackReport {
    let mut args = vec!["rollback", "--json", "--timeout", "120s"];
    args.extend_from_slice(extra);
    let out = p.run(&args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn deployed_template(p: &Project) -> String {
    boto(
        "print(json.dumps(cfn.get_template(StackName=sys.argv[1])['TemplateBody']))",
        &[&p.stack()],
    )
    .as_str()
    .unwrap()
    .to_string()
}

/// Every function's code and the template are the ones of `manifest` and `template`.
fn assert_deployed(p: &Project, manifest: &Manifest, template: &str) {
    for f in FUNCTIONS {
        assert_eq!(p.code_sha(f), manifest.functions[f].code_sha256, "{f}");
    }
    assert_eq!(deployed_template(p), template);
}

/// Deploy B: one handler and the template changed.
fn change_and_deploy(p: &Project, stage: &str) {
    p.sample.edit("lambda/poller/execution_poller.py", |t| {
        format!("{t}# {stage}\n")
    });
    p.sample.edit("cfn/master-template.yaml", |t| {
        format!("{t}  Stage{stage}:\n    Value: {stage}\n")
    });
    p.pack();
    assert_eq!(p.deploy(&[]).outcome, Outcome::Changed);
}

#[test]
fn a_rollback_restores_the_previous_deployment_and_a_second_one_undoes_it() {
    let p = Project::new();
    let a = p.deploy(&[]);
    assert!(a.history.is_some());
    let (manifest_a, template_a) = (p.manifest(), deployed_template(&p));
    change_and_deploy(&p, "B");
    let (manifest_b, template_b) = (p.manifest(), deployed_template(&p));
    assert_ne!(template_a, template_b);
    // An identical redeploy is no new deployment.
    let again = p.deploy(&[]);
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.history, None);
    let h = history(&p);
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(Some(&h[1].id), a.history.as_ref(), "newest first");

    let dry = rollback(&p, &["--dry-run"]);
    assert_only_reads(&dry.requests);
    assert_eq!(dry.plan.target, h[1].id);
    assert!(dry.plan.change_set.is_some());
    assert_deployed(&p, &manifest_b, &template_b);

    let back = rollback(&p, &[]);
    assert_eq!(back.outcome, "rolled back");
    assert_deployed(&p, &manifest_a, &template_a);
    assert_eq!(
        crate::common::updated(&back.functions),
        ["execution-poller"]
    );
    let h = history(&p);
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].rollback_of.as_ref(), a.history.as_ref());

    // The latest is the rollback: one step back is B.
    let forward = rollback(&p, &[]);
    assert_eq!(forward.outcome, "rolled back");
    assert_deployed(&p, &manifest_b, &template_b);
    // Back at B, a rollback to B has nothing to do.
    let again = rollback(&p, &["--to", &forward.plan.target]);
    assert_eq!(again.outcome, "nothing to do");
    assert_eq!(history(&p).len(), 4);
}

#[test]
fn a_deployment_dropped_by_retention_is_refused_and_nothing_changes() {
    let p = Project::new();
    p.sample
        .edit("artifact.toml", |t| format!("{t}\n[history]\nkeep = 2\n"));
    let a = p.deploy(&[]).history.unwrap();
    change_and_deploy(&p, "B");
    change_and_deploy(&p, "C");
    let (manifest_c, template_c) = (p.manifest(), deployed_template(&p));
    let h = history(&p);
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|e| e.id != a));
    // A's own zip of the changed handler is gone from the kept bytes.
    let kept = boto(
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1], Prefix='history/zips/').get('Contents', []))))",
        &[&p.bucket()],
    );
    assert_eq!(kept.as_array().unwrap().len(), 5 + 1, "{kept}");

    let out = p.run(&["rollback", "--to", &a]);
    let err = assert_failure(&out);
    assert!(
        err.contains(&format!("no deployment {a} in the history")),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_deployed(&p, &manifest_c, &template_c);
    // The site cannot be rolled back yet: refused, not ignored.
    let err = assert_failure(&p.run(&["rollback", "--frontend"]));
    assert!(err.contains("--frontend"), "{err}");
}
