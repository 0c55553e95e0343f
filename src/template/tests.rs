use super::*;

fn eval_with(yaml: &str) -> Option<String> {
    let doc: Value = serde_norway::from_str(yaml).unwrap();
    let mut ctx = Context::with_params(BTreeMap::from([
        ("ProjectName".to_string(), "proj".to_string()),
        ("Environment".to_string(), "dev".to_string()),
    ]));
    ctx.conditions = doc.get("Conditions").and_then(Value::as_mapping);
    ctx.evaluate(doc.get("Name").unwrap())
}

fn eval(yaml: &str) -> Option<String> {
    eval_with(yaml)
}

#[test]
fn function_names_are_evaluated_like_cloudformation_does() {
    assert_eq!(eval("Name: plain").as_deref(), Some("plain"));
    assert_eq!(
        eval("Name: !Sub '${ProjectName}-${Environment}-api'").as_deref(),
        Some("proj-dev-api")
    );
    assert_eq!(
        eval("Name: {Fn::Sub: '${ProjectName}-x'}").as_deref(),
        Some("proj-x")
    );
    assert_eq!(
        eval("Name: !Sub ['${P}-${Environment}', {P: !Ref ProjectName}]").as_deref(),
        Some("proj-dev")
    );
    assert_eq!(
        eval("Name: !Join ['-', [!Ref ProjectName, !Ref Environment, api]]").as_deref(),
        Some("proj-dev-api")
    );
    assert_eq!(
        eval("Name: !Sub '${!Literal}-${ProjectName}'").as_deref(),
        Some("${Literal}-proj")
    );
    assert_eq!(eval("Name: !Sub '${Fn.Arn}'"), None);
    assert_eq!(eval("Name: !GetAtt X.Name"), None);
}

#[test]
fn if_takes_the_branch_its_condition_gives() {
    let conditions = "Conditions:\n  IsProd: !Equals [!Ref Environment, prod]\n  IsDev: {Fn::Equals: [!Ref Environment, dev]}\n  NotProd: !Not [!Condition IsProd]\n  Both: !And [!Condition IsDev, !Condition NotProd]\n  Either: !Or [!Condition IsProd, {Condition: IsDev}]\n  Unknown: !Equals [!Ref AWS::AccountId, '1']\n  Loop: !Not [!Condition Loop]\n";
    let with = |name: &str| eval_with(&format!("{conditions}Name: {name}"));
    assert_eq!(with("!If [IsProd, big, small]").as_deref(), Some("small"));
    assert_eq!(
        with("!If [IsDev, !Sub '${ProjectName}-d', x]").as_deref(),
        Some("proj-d")
    );
    assert_eq!(with("{Fn::If: [NotProd, a, b]}").as_deref(), Some("a"));
    assert_eq!(with("!If [Both, a, b]").as_deref(), Some("a"));
    assert_eq!(with("!If [Either, a, b]").as_deref(), Some("a"));
    // What cannot be told offline stays unknown, and a loop ends.
    assert_eq!(with("!If [Unknown, a, b]"), None);
    assert_eq!(with("!If [Missing, a, b]"), None);
    assert_eq!(with("!If [Loop, a, b]"), None);
    assert_eq!(with("!If [IsProd, a]"), None);
}

#[test]
fn master_parameters_are_declared_names_defaults_and_dynamic_types() {
    let doc: Value = serde_norway::from_str(
        "Parameters:\n  A: {Type: String, Default: x}\n  B: {Type: CommaDelimitedList, Default: [p, q]}\n  C: {Type: Number, Default: 3}\n  D: {Type: String}\nResources: {}\n",
    )
    .unwrap();
    let p = master_parameters(&doc);
    assert_eq!(p.declared.len(), 4);
    assert_eq!(p.defaults.get("A").map(String::as_str), Some("x"));
    assert_eq!(p.defaults.get("B").map(String::as_str), Some("p,q"));
    assert_eq!(p.defaults.get("C").map(String::as_str), Some("3"));
    assert!(!p.defaults.contains_key("D"));
    assert!(!p.has_dynamic);
    assert!(p.no_echo.is_empty());
    let secret: Value = serde_norway::from_str(
        "Parameters:\n  Token: {Type: String, NoEcho: true}\n  Quoted: {Type: String, NoEcho: 'true'}\n  Open: {Type: String, NoEcho: false}\n",
    )
    .unwrap();
    let mut no_echo: Vec<String> = master_parameters(&secret).no_echo.into_iter().collect();
    no_echo.sort();
    assert_eq!(no_echo, ["Quoted", "Token"]);
    let ssm: Value = serde_norway::from_str(
        "Parameters:\n  A: {Type: 'AWS::SSM::Parameter::Value<String>', Default: /x}\n",
    )
    .unwrap();
    assert!(master_parameters(&ssm).has_dynamic);
}

fn settings_in(dir: &Path) -> Settings {
    let text = "[project]\nname = \"p\"\n[infra]\nmaster_template = \"master.yaml\"\n";
    Settings::parse(&dir.join("artifact.toml"), text, &Default::default()).unwrap()
}

#[test]
fn a_set_is_read_once_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_in(dir.path());
    let cfn = &settings.infra.templates;
    std::fs::create_dir_all(cfn.join("nested")).unwrap();
    std::fs::write(
        cfn.join("master.yaml"),
        "Parameters:\n  Environment: {Type: String, Default: dev}\nResources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n      FunctionName: !Sub 'p-${Environment}-a'\n      Runtime: python3.12\nOutputs:\n  Site: {Value: !Ref SiteBucket}\n",
    )
    .unwrap();
    std::fs::write(cfn.join("nested/bad.yaml"), "Resources: [unclosed\n").unwrap();
    std::fs::write(cfn.join("nested/empty.json"), "{}").unwrap();
    std::fs::write(cfn.join("notes.txt"), "not a template").unwrap();
    std::fs::create_dir_all(cfn.join("params")).unwrap();
    std::fs::write(
        cfn.join("params/dev.json"),
        r#"[{"ParameterKey":"A","ParameterValue":"b"}]"#,
    )
    .unwrap();
    std::fs::write(cfn.join("params/prod.json"), r#"{"Parameters":{"A":"c"}}"#).unwrap();
    let before = parses();
    let set = TemplateSet::read(&settings);
    assert!(parses() >= before + 3);
    let files: Vec<&str> = set.templates.iter().map(|t| t.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "cfn/master.yaml",
            "cfn/nested/bad.yaml",
            "cfn/nested/empty.json"
        ]
    );
    let problems: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("cfn/nested/bad.yaml: not valid YAML or JSON"));
    assert_eq!(problems[1], "cfn/nested/empty.json: no Resources section");
    assert!(!set.all_parse());
    let found = set.functions(&settings, None);
    let f = &found.by_name["p-dev-a"];
    assert_eq!(f.location, "cfn/master.yaml: F");
    assert_eq!(f.runtime.as_deref(), Some("python3.12"));
    assert_eq!(found.unknown, 0);
    assert_eq!(set.output_bucket(&settings, "Site"), None);
}

#[test]
fn a_missing_folder_or_master_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_in(dir.path());
    let set = TemplateSet::read(&settings);
    assert!(matches!(
        set.problems[..],
        [TemplateProblem::NoFolder { .. }]
    ));
    std::fs::create_dir_all(&settings.infra.templates).unwrap();
    std::fs::write(
        settings.infra.templates.join("other.yaml"),
        "Resources: {}\n",
    )
    .unwrap();
    let set = TemplateSet::read(&settings);
    assert_eq!(
        set.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        ["cfn/master.yaml: the master template does not exist"]
    );
    assert!(set.master().is_none());
}
