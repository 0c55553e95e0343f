//! Snapshots of `artifact validate`.

use crate::validate::{FunctionCheck, NestedCheck, TemplateCheck, ValidateReport};

#[test]
fn validate_with_a_problem_and_without() {
    let mut report = ValidateReport {
        imports: vec![],
        templates: vec![TemplateCheck {
            file: "cfn/master-template.yaml".into(),
            bytes: 18_402,
            fits_inline: true,
            validate_template: "ok".into(),
        }],
        nested: vec![
            NestedCheck {
                stack: "cfn/master-template.yaml: Functions".into(),
                template: Some("functions/functions.yaml".into()),
                checked: true,
            },
            NestedCheck {
                stack: "cfn/master-template.yaml: Shared".into(),
                template: None,
                checked: false,
            },
        ],
        functions: vec![
            FunctionCheck {
                function: "api-handler".into(),
                deployed_name: "shop-dev-api-handler".into(),
                found: Some("cfn/lambda.yaml: ApiHandlerFunction".into()),
                checked: true,
            },
            FunctionCheck {
                function: "reporter".into(),
                deployed_name: "shop-dev-reporter".into(),
                found: None,
                checked: true,
            },
        ],
        problems: vec![
            "function `reporter`: no AWS::Lambda::Function is named shop-dev-reporter".into(),
        ],
        ok: false,
    };
    let failing = crate::commands::validate::render(&report).join("\n");
    report.functions[1].checked = false;
    let unchecked = crate::commands::validate::render(&report).join("\n");
    report.functions.pop();
    report.problems.clear();
    report.ok = true;
    let passing = crate::commands::validate::render(&report).join("\n");
    super::snap(
        "validate_with_a_problem_and_without",
        &format!("{failing}\n---\n{unchecked}\n---\n{passing}"),
    );
}
