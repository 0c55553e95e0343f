//! Deployment history and rollback on the local AWS server.

use artifact::cfn::Outcome;
use artifact::commands::RollbackDocument;
use artifact::history::Entry;
use artifact::pack::Manifest;
use artifact::rollback::RollbackReport;

use crate::common::{assert_failure, assert_only_reads, assert_success, FUNCTIONS};
use crate::deploy_infra::Project;
use crate::local_aws::boto;

fn history(p: &Project) -> Vec<Entry> {
    let out = p.run(&["history", "--json"]);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `rollback --infra`: the stack's part of the report.
fn rollback(p: &Project, extra: &[&str]) -> RollbackReport {
    let mut args = vec!["rollback", "--infra", "--json", "--timeout", "120s"];
    args.extend_from_slice(extra);
    let out = p.run(&args);
    assert_success(&out);
    let doc: RollbackDocument = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.frontend.is_none());
    doc.infra.unwrap()
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
    // The listing people ask for is the output: stdout, one row each.
    let out = p.run(&["history"]);
    assert_success(&out);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&h[0].id) && listed.contains(&h[1].id),
        "{listed}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&h[0].id));

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

    let out = p.run(&["rollback", "--infra", "--to", &a]);
    let err = assert_failure(&out);
    assert!(
        err.contains(&format!("no deployment {a} in the history")),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_deployed(&p, &manifest_c, &template_c);
    // --to must say whose deployment it names.
    let err = assert_failure(&p.run(&["rollback", "--to", &a]));
    assert!(err.contains("--infra or --frontend"), "{err}");
}

/// Every site object but artifact's own: key -> [md5 of the bytes, Cache-Control, Content-Type].
fn site_objects(s: &crate::deploy_frontend::Site) -> serde_json::Value {
    objects_of(&s.bucket)
}

fn objects_of(bucket: &str) -> serde_json::Value {
    boto(
        r#"
import hashlib
out = {}
for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', []):
    k = o['Key']
    if k.startswith('.artifact-'):
        continue
    g = s3.get_object(Bucket=sys.argv[1], Key=k)
    out[k] = [hashlib.md5(g['Body'].read()).hexdigest(), g.get('CacheControl'), g.get('ContentType')]
print(json.dumps(out))
"#,
        &[bucket],
    )
}

#[test]
fn the_site_goes_back_to_its_previous_release_uploading_only_what_differs() {
    let s = crate::deploy_frontend::Site::new();
    boto(
        "s3.create_bucket(Bucket=sys.argv[1])",
        &[&format!("{}-deployment-dev", s.name)],
    );
    let a = s.deploy(&[]);
    assert!(a.history.is_some());
    let objects_a = site_objects(&s);
    s.release(2);
    let b = s.deploy(&[]);
    assert!(b.history.is_some());
    assert_ne!(site_objects(&s), objects_a);

    let dry = s.run(&["rollback", "--frontend", "--dry-run", "--json"]);
    assert_success(&dry);
    let doc: RollbackDocument = serde_json::from_slice(&dry.stdout).unwrap();
    assert!(doc.infra.is_none());
    assert_only_reads(&doc.frontend.unwrap().requests);

    let out = s.run(&["rollback", "--frontend", "--json"]);
    assert_success(&out);
    let r = serde_json::from_slice::<RollbackDocument>(&out.stdout)
        .unwrap()
        .frontend
        .unwrap();
    // A's chunk was still there (kept for open tabs): only index.html goes up.
    assert_eq!(r.uploaded.files, 1, "{:?}", r.plan);
    let invalidated = r.invalidation.map(|i| i.paths).unwrap_or_default();
    assert!(
        invalidated.contains(&"/index.html".to_string()),
        "{invalidated:?}"
    );
    // Every object of A is back with its bytes and headers; B's chunk stays for open tabs.
    let now = site_objects(&s);
    for (key, want) in objects_a.as_object().unwrap() {
        assert_eq!(&now[key], want, "{key}");
    }
    assert!(now.get("assets/index-r2.js").is_some(), "{now}");
    // The site's history tells the rollback from the releases.
    let index = boto(
        "print(json.dumps(json.loads(s3.get_object(Bucket=sys.argv[1], Key='deployments/site-index.json')['Body'].read())))",
        &[&format!("{}-deployment-dev", s.name)],
    );
    let rows = index["deployments"].as_array().unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last["outcome"], "rolled back", "{index:#}");
    assert_eq!(
        last["rollback_of"],
        a.history.unwrap().as_str(),
        "{index:#}"
    );
    assert_eq!(rows[0]["outcome"], "changed", "{index:#}");
    // The rollback is itself a release: rolling back again returns to B.
    let out = s.run(&["rollback", "--frontend", "--json"]);
    assert_success(&out);
    assert!(site_objects(&s)["index.html"] != objects_a["index.html"]);
}

#[test]
fn rollback_of_both_brings_back_the_stack_the_code_and_the_site() {
    let p = Project::new();
    let deploy_site = || -> artifact::frontend::FrontendReport {
        let out = p.run(&["deploy-frontend", "--json", "--timeout", "120s"]);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    p.deploy(&[]);
    let site = deploy_site().bucket;
    let (manifest_a, template_a, site_a) = (p.manifest(), deployed_template(&p), objects_of(&site));
    assert!(site_a.get("aws-config.js").is_some(), "{site_a}");
    // B: a handler, the template and a site asset change.
    change_and_deploy(&p, "B");
    p.sample
        .edit("frontend/dist/assets/index-8b3d07aa.css", |t| {
            format!("{t}\nbody{{color:red}}\n")
        });
    deploy_site();
    assert_ne!(objects_of(&site), site_a);

    let out = p.run(&["rollback", "--json", "--timeout", "120s"]);
    assert_success(&out);
    let doc: RollbackDocument = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc.infra.unwrap().outcome, "rolled back");
    let front = doc.frontend.unwrap();
    assert_eq!(
        front.uploaded.files, 1,
        "the stylesheet alone: {:?}",
        front.plan
    );
    assert_deployed(&p, &manifest_a, &template_a);
    let now = objects_of(&site);
    for (key, want) in site_a.as_object().unwrap() {
        assert_eq!(&now[key], want, "{key}");
    }
}

#[test]
fn a_damaged_index_is_an_error_and_retention_deletes_nothing() {
    let p = Project::new();
    p.sample
        .edit("artifact.toml", |t| format!("{t}\n[history]\nkeep = 2\n"));
    p.deploy(&[]);
    change_and_deploy(&p, "B");
    let kept = || {
        boto(
            "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1], Prefix='history/').get('Contents', []))))",
            &[&p.bucket()],
        )
    };
    let before = kept();
    // The index cut short, as a write that broke off leaves it.
    boto(
        "b = s3.get_object(Bucket=sys.argv[1], Key='deployments/index.json')['Body'].read()\ns3.put_object(Bucket=sys.argv[1], Key='deployments/index.json', Body=b[: len(b) // 2])\nprint('null')",
        &[&p.bucket()],
    );
    // A third deploy would drop the first from retention: it deploys, warns, deletes nothing.
    change_and_deploy(&p, "C");
    let after = kept();
    let after = after.as_array().unwrap();
    for k in before.as_array().unwrap() {
        assert!(
            after.contains(k),
            "retention deleted {k} past a damaged index"
        );
    }
    let out = p.run(&["history"]);
    let err = assert_failure(&out);
    assert!(err.contains("deployments/index.json is damaged"), "{err}");
    assert!(
        err.contains("hint: restore it from the bucket's versions"),
        "{err}"
    );
}

/// Runs adding to the same index at once each add their entry: the index is
/// written only if it is still the one read (S3's conditional writes), else
/// read again, so none overwrites another's.
#[test]
fn index_entries_added_at_once_are_all_kept() {
    use artifact::history::{store, Entry};
    let server = crate::local_aws::server();
    let bucket = crate::local_aws::bucket("index-race");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = 6;
    let index = rt.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&server.endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let clients = artifact::aws::Clients::from_config(config);
        let runs = (0..n).map(|i| {
            let clients = clients.clone();
            let bucket = bucket.clone();
            tokio::spawn(async move {
                let entry = Entry {
                    id: format!("run-{i}"),
                    commit: None,
                    started_unix: i,
                    ended_unix: i,
                    outcome: "failed".into(),
                    summary: String::new(),
                    rollback_of: None,
                    keys: Default::default(),
                };
                store::save_failure(&clients, &bucket, entry, 100).await
            })
        });
        for r in futures_util::future::join_all(runs).await {
            r.unwrap().unwrap();
        }
        store::load_index(&clients, &bucket).await.unwrap()
    });
    let mut ids: Vec<&str> = index.deployments.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..n).map(|i| format!("run-{i}")).collect::<Vec<_>>());
}
