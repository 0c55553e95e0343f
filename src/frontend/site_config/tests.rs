use super::*;
use crate::frontend::outputs::StackOutputs;

fn values() -> StackValues {
    let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    StackValues {
        stack: "orders-dev".into(),
        api_url: String::new(),
        user_pool_id: String::new(),
        user_pool_client_id: String::new(),
        bucket: "site".into(),
        distribution_id: "E1".into(),
        url: "https://d.example".into(),
        region: "eu-west-1".into(),
        outputs: StackOutputs {
            root: m(&[("ApiUrl", "https://api/x?a=1&b=<2>")]),
            nested: BTreeMap::from([(
                "Auth".to_string(),
                m(&[("UserPoolId", "eu-west-1_abc"), ("Bad", "a\u{7}b")]),
            )]),
        },
    }
}

fn config(file: &str, format: ConfigFormat, values: &[(&str, ValueSource)]) -> SiteConfig {
    SiteConfig {
        file: file.into(),
        format,
        template: None,
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn render_with(c: &SiteConfig, template: Option<&str>) -> Result<String, FrontendError> {
    let v = values();
    let params = BTreeMap::from([("Environment".to_string(), "dev".to_string())]);
    let env = EnvVars(BTreeMap::from([(
        "CODEBUILD_BUILD_ID".to_string(),
        "b:7".to_string(),
    )]));
    let s = Sources {
        values: &v,
        parameters: &params,
        env: &env,
        project: "orders",
        environment: "dev",
    };
    render(c, template, &s).map(|r| r.text)
}

#[test]
fn json_from_a_template_with_nested_outputs_params_env_and_literals() {
    let c = config(
        "aws-config.json",
        ConfigFormat::Json,
        &[
            ("region", ValueSource::Literal("{region}".into())),
            ("userPoolId", ValueSource::Output("UserPoolId".into())),
            ("apiEndpoint", ValueSource::Output("ApiUrl".into())),
            ("Auth.Cognito.env", ValueSource::Param("Environment".into())),
            ("build", ValueSource::Env("CODEBUILD_BUILD_ID".into())),
        ],
    );
    let template = r#"{"region": "REPLACE_WITH_STACK_OUTPUT", "userPoolId": "REPLACE_WITH_STACK_OUTPUT", "apiEndpoint": "REPLACE_WITH_STACK_OUTPUT", "features": {"beta": false}}"#;
    let text = render_with(&c, Some(template)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["region"], "eu-west-1");
    assert_eq!(v["userPoolId"], "eu-west-1_abc");
    assert_eq!(v["apiEndpoint"], "https://api/x?a=1&b=<2>");
    assert_eq!(v["Auth"]["Cognito"]["env"], "dev");
    assert_eq!(v["build"], "b:7");
    assert_eq!(v["features"]["beta"], false);
    // The same inputs, the same bytes.
    assert_eq!(render_with(&c, Some(template)).unwrap(), text);
}

#[test]
fn js_and_env_are_escaped_for_their_format() {
    let c = config(
        "config.js",
        ConfigFormat::Js {
            global: "APP".into(),
        },
        &[("api", ValueSource::Output("ApiUrl".into()))],
    );
    let text = render_with(&c, None).unwrap();
    assert!(text.starts_with("window.APP = {"), "{text}");
    assert!(!text.contains('<') && !text.contains('&'), "{text}");
    let e = config(
        ".env.production",
        ConfigFormat::Env,
        &[
            ("VITE_REGION", ValueSource::Literal("{region}".into())),
            ("VITE_API", ValueSource::Output("ApiUrl".into())),
        ],
    );
    assert_eq!(
        render_with(&e, None).unwrap(),
        "VITE_API=\"https://api/x?a=1&b=<2>\"\nVITE_REGION=eu-west-1\n"
    );
}

#[test]
fn every_bad_value_is_named() {
    let one = |key: &str, v: ValueSource| config("c.json", ConfigFormat::Json, &[(key, v)]);
    let message = |r: Result<String, FrontendError>| r.unwrap_err().to_string();
    let m = message(render_with(
        &one("x", ValueSource::Output("Nope".into())),
        None,
    ));
    assert!(
        m.contains("no stack has output Nope (searched orders-dev, Auth)"),
        "{m}"
    );
    let m = message(render_with(
        &one("x", ValueSource::Output("Bad".into())),
        None,
    ));
    assert!(m.contains("control character"), "{m}");
    let m = message(render_with(
        &one("x", ValueSource::Param("Nope".into())),
        None,
    ));
    assert!(m.contains("no parameter Nope"), "{m}");
    let m = message(render_with(
        &one("x", ValueSource::Env("NOPE".into())),
        None,
    ));
    assert!(m.contains("NOPE is not set"), "{m}");
    let m = message(render_with(
        &one("region", ValueSource::Literal("r".into())),
        Some(r#"{"a": {"b": "REPLACE_WITH_X"}}"#),
    ));
    assert!(m.contains("value at a.b was not replaced"), "{m}");
    let m = message(render_with(
        &one("region", ValueSource::Literal("r".into())),
        Some("[1]"),
    ));
    assert!(m.contains("not a JSON object"), "{m}");
    let e = config(
        ".env",
        ConfigFormat::Env,
        &[("a.b", ValueSource::Literal("x".into()))],
    );
    assert!(message(render_with(&e, None)).contains("flat values"));
}
