//! `artifact validate` on the sample, and on broken copies.

use artifact::validate::ValidateReport;

use crate::common::{assert_failure, assert_success, Sample};
use crate::local_aws::artifact_aws;

fn validate(s: &Sample) -> (std::process::Output, ValidateReport) {
    let out = artifact_aws(s.dir.path(), &["validate", "--json"]);
    let report = serde_json::from_slice(&out.stdout).expect("one JSON document");
    (out, report)
}

#[test]
fn the_sample_is_valid() {
    let s = Sample::new();
    let (out, r) = validate(&s);
    assert_success(&out);
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.templates[0].validate_template, "ok");
    assert!(r.templates[0].fits_inline);
    assert_eq!(r.functions.len(), 5);
    assert!(r.functions.iter().all(|f| f.found.is_some()));
}

#[test]
fn every_problem_is_reported_at_once() {
    let s = Sample::new();
    std::fs::write(
        s.path("cfn/broken.yaml"),
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n   Properties: [\n",
    )
    .unwrap();
    std::fs::write(s.path("cfn/empty.yaml"), "Description: nothing here\n").unwrap();
    std::fs::write(
        s.path("cfn/huge.json"),
        format!(
            "{{\"Resources\": {{}}, \"x\": \"{}\"}}",
            "y".repeat(1_048_576)
        ),
    )
    .unwrap();
    s.edit("cfn/master-template.yaml", |t| {
        t.replace("${Environment}-execution-finder", "${Environment}-finder")
    });
    let (out, r) = validate(&s);
    let err = assert_failure(&out);
    assert!(!r.ok);
    let all = r.problems.join("\n");
    assert!(all.contains("cfn/broken.yaml: not valid YAML"), "{all}");
    assert!(all.contains("line 4"), "{all}");
    assert!(
        all.contains("cfn/empty.yaml: no Resources section"),
        "{all}"
    );
    assert!(
        all.contains("cfn/huge.json") && all.contains("1048576-byte limit"),
        "{all}"
    );
    // The service's ValidateTemplate refuses the template without Resources too.
    assert!(all.contains("cfn/empty.yaml: ValidateTemplate:"), "{all}");
    // A template that does not parse may hold any function: none is reported
    // missing while one does not parse (no spurious "NOT FOUND").
    assert!(!all.contains("function `"), "{all}");
    assert!(r.functions.iter().all(|f| !f.checked));
    assert_eq!(r.problems.len(), 4, "{all}");
    assert!(err.contains("validation found 4 problem(s)"), "{err}");
    assert!(err.contains("problem: cfn/broken.yaml"), "{err}");

    // Once it parses, the renamed function is found missing.
    std::fs::remove_file(s.path("cfn/broken.yaml")).unwrap();
    let (_, r) = validate(&s);
    let all = r.problems.join("\n");
    assert!(
        all.contains("function `execution-finder`: no AWS::Lambda::Function in cfn is named aws-elasticdrs-orchestrator-dev-execution-finder"),
        "{all}"
    );
    assert_eq!(r.problems.len(), 4, "{all}");
}

#[test]
fn a_bad_project_file_is_a_validation_failure_too() {
    let s = Sample::new();
    s.edit("artifact.toml", |t| {
        t.replace("[pack]", "[pack]\nsauce = 1")
    });
    let out = artifact_aws(s.dir.path(), &["validate", "--offline"]);
    let err = assert_failure(&out);
    assert!(err.contains("sauce"), "{err}");
}
