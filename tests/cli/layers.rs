//! `[layers]` deployed on the local AWS server: a layer version is published
//! only when its zip changed, and its ARN reaches the functions.

use artifact::cfn::layers::LayerAction;
use artifact::cfn::Outcome;

use crate::common::{assert_failure, FUNCTIONS};
use crate::deploy_infra::Project;
use crate::local_aws::boto;

fn layered() -> Project {
    let p = Project::unpacked_of("sample-layer");
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    p
}

/// The layer ARNs a function has.
fn function_layers(p: &Project, function: &str) -> Vec<String> {
    let v = boto(
        "print(json.dumps([l['Arn'] for l in lam.get_function_configuration(FunctionName=sys.argv[1]).get('Layers', [])]))",
        &[&format!("{}-dev-{function}", p.name)],
    );
    serde_json::from_value(v).unwrap()
}

fn versions(p: &Project) -> usize {
    boto(
        "print(len(lam.list_layer_versions(LayerName=sys.argv[1])['LayerVersions']))",
        &[&format!("{}-dev-deps", p.name)],
    )
    .as_u64()
    .unwrap() as usize
}

#[test]
fn a_layer_is_published_once_and_again_only_when_its_zip_changes() {
    let p = layered();
    // The functions hold only their own files; the layer holds the shared folder under python/.
    let m = p.manifest();
    let f = &m.functions["api-handler"];
    let pyc = f.bytecode.as_ref().map_or(0, |b| b.files);
    assert_eq!(f.file_count - pyc, 2);
    assert!(m.layers["deps"].file_count >= 3);

    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    assert_eq!(r.layers.len(), 1);
    assert_eq!(r.layers[0].action, LayerAction::Publish);
    let arn = r.layers[0].arn.clone().unwrap();
    assert!(
        arn.contains(&format!(":layer:{}-dev-deps:", p.name)),
        "{arn}"
    );
    assert_eq!(r.requests.get("Lambda.PublishLayerVersion"), Some(&1));
    assert_eq!(r.zips.uploaded, 12, "six zips and their SBOMs");
    for f in FUNCTIONS {
        assert_eq!(function_layers(&p, f), std::slice::from_ref(&arn), "{f}");
    }

    // A fresh checkout packs the same bytes: the version is reused, nothing changes.
    std::fs::remove_dir_all(p.sample.path("build")).unwrap();
    std::fs::remove_dir_all(p.sample.path(".artifact-cache")).unwrap();
    p.pack();
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Unchanged, "{:?}", r.plan);
    assert_eq!(r.layers[0].action, LayerAction::Reuse);
    assert_eq!(r.layers[0].arn.as_deref(), Some(arn.as_str()));
    assert!(!r.requests.contains_key("Lambda.PublishLayerVersion"));
    assert_eq!(versions(&p), 1);

    // A changed dependency: one new version, which every function then uses.
    p.sample.edit("lambda/package/crhelper/__init__.py", |t| {
        format!("{t}# changed\n")
    });
    p.pack();
    let dry = p.deploy(&["--dry-run"]);
    assert_eq!(dry.layers[0].action, LayerAction::Publish);
    assert_eq!(versions(&p), 1, "a dry run published");
    let r = p.deploy(&[]);
    assert_eq!(r.outcome, Outcome::Changed);
    let new_arn = r.layers[0].arn.clone().unwrap();
    assert_ne!(new_arn, arn);
    assert_eq!(versions(&p), 2);
    for f in FUNCTIONS {
        assert_eq!(
            function_layers(&p, f),
            std::slice::from_ref(&new_arn),
            "{f}"
        );
    }
}

#[test]
fn a_template_without_the_layer_parameter_is_refused_before_anything_is_created() {
    let p = layered();
    p.sample.edit("cfn/master-template.yaml", |t| {
        t.replace("  DepsLayerArn:\n", "  OtherLayerArn:\n")
            .replace("!Ref DepsLayerArn", "!Ref OtherLayerArn")
    });
    let (err, _) = p.deploy_fails(&[]);
    assert!(
        err.contains("layer `deps`: the master template master-template.yaml declares no parameter DepsLayerArn"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let stacks = boto(
        "print(json.dumps([s['StackName'] for s in cfn.list_stacks()['StackSummaries']]))",
        &[],
    );
    assert!(!stacks.to_string().contains(&p.stack()), "{stacks}");
    let out = p.run(&["deploy-infra"]);
    assert_failure(&out);
}

/// A version planted with the zip's marker in its description and other bytes
/// is never reused: the deploy publishes the real zip.
#[test]
fn a_planted_layer_version_with_the_marker_and_other_bytes_is_not_reused() {
    let p = layered();
    let sha = &p.manifest().layers["deps"].sha256;
    let planted = boto(
        r#"
import io, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('python/crhelper/__init__.py', "import os; os.system('curl x')\n")
v = lam.publish_layer_version(LayerName=sys.argv[1], Description=sys.argv[2], Content={'ZipFile': buf.getvalue()})
print(json.dumps(v['LayerVersionArn']))
"#,
        &[
            &format!("{}-dev-deps", p.name),
            &format!("artifact sha256={sha}"),
        ],
    );
    let r = p.deploy(&[]);
    assert_eq!(r.layers[0].action, LayerAction::Publish, "{:?}", r.layers);
    let arn = r.layers[0].arn.clone().unwrap();
    assert_ne!(Some(arn.as_str()), planted.as_str());
    assert_eq!(versions(&p), 2);
    for f in FUNCTIONS {
        assert_eq!(function_layers(&p, f), std::slice::from_ref(&arn), "{f}");
    }
    // The real version is reused from then on, though the planted one is newer-looking too.
    let r = p.deploy(&[]);
    assert_eq!(r.layers[0].action, LayerAction::Reuse);
    assert_eq!(r.layers[0].arn.as_deref(), Some(arn.as_str()));
}
