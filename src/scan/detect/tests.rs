//! Each kind found, with its line and masked; look-alikes not. Secrets are
//! put together at run time, so no file of the project holds one.

use super::*;

fn kinds(name: &str, text: &str) -> Vec<(usize, Kind, String)> {
    scan_bytes(name, text.as_bytes())
        .into_iter()
        .map(|h| (h.line, h.kind, h.masked))
        .collect()
}

fn key_id() -> String {
    ["AKIA", "Z7VQ3MB2XK4PLWTN"].concat()
}

fn secret_key() -> String {
    ["h8Kq2mZr9TfW4xLp", "7VbN3cYd6GsJ1aEu", "0RkQ5oPi"].concat()
}

#[test]
fn an_access_key_id_with_its_secret_nearby_is_found_and_masked() {
    let text = format!(
        "import boto3\n\nclient = boto3.client(\n    aws_access_key_id=\"{}\",\n    aws_secret_access_key=\"{}\",\n)\n",
        key_id(),
        secret_key()
    );
    let found = kinds("lambda/index.py", &text);
    assert!(
        found.contains(&(4, Kind::AwsAccessKey, "AKIA************".into())),
        "{found:?}"
    );
    // The secret alone under its name is an assignment too.
    assert!(
        found.iter().any(|f| f.0 == 5 && f.1 == Kind::Assignment),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|f| f.2.contains("Z7VQ")),
        "unmasked: {found:?}"
    );
}

#[test]
fn an_access_key_id_alone_or_the_documentation_pair_is_not_a_finding() {
    let alone = format!("KEY_ID = \"{}\"\n", key_id());
    assert_eq!(kinds("a.py", &alone), vec![]);
    let docs = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    assert_eq!(kinds("credentials.ini", docs), vec![]);
    let far = format!("{}\n\n\n\n\n\n\n\nx = \"{}\"\n", key_id(), secret_key());
    assert_eq!(
        kinds("a.py", &far)
            .iter()
            .filter(|f| f.1 == Kind::AwsAccessKey)
            .count(),
        0,
        "a secret eight lines away is not the key's"
    );
}

#[test]
fn private_keys_are_found_but_not_placeholders_or_public_keys() {
    let line = "MIIEowIBAAKCAQEAz8Hk3mQ9vX2pL7rT5wY1bN4cF6gJ0sD8aE2uV9iO3kR7lM5n";
    let body = format!("{line}\n{line}\nQx");
    for label in [
        "RSA PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "PRIVATE KEY",
        "EC PRIVATE KEY",
    ] {
        let text = format!("\n-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
        assert_eq!(
            kinds("key.pem", &text),
            vec![(2, Kind::PrivateKey, "----************".into())],
            "{label}"
        );
    }
    let escaped = format!(
        "KEY = \"-----BEGIN RSA PRIVATE KEY-----\\n{}\\n\"",
        body.replace('\n', "")
    );
    assert_eq!(kinds("a.py", &escaped).len(), 1);
    assert_eq!(
        kinds("a.py", "doc = '-----BEGIN RSA PRIVATE KEY-----\\n...'"),
        vec![]
    );
    let public = format!("-----BEGIN PUBLIC KEY-----\n{body}\n");
    assert_eq!(kinds("a.pem", &public), vec![]);
}

#[test]
fn github_gitlab_and_slack_tokens_are_found() {
    let gh = ["ghp_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"].concat();
    let gl = ["glpat-", "Xy3_Zq8-Lm2Np5Rt7Vw9"].concat();
    let slack = ["xoxb-", "123456789012-1234567890123-AbCdEfGhIjKlMnOp"].concat();
    let hook = [
        "https://hooks.slack.com/services/",
        "T0123ABCD/B0456EFGH/",
        "aBcDeFgHiJkLmNoPqRsTuVwX",
    ]
    .concat();
    let text = format!("a = '{gh}'\nb = '{gl}'\nc = '{slack}'\nd = '{hook}'\n");
    let under_name = kinds("a.py", &format!("token = '{gl}'\n"));
    assert_eq!(
        under_name,
        vec![(1, Kind::GitlabToken, "glpa************".into())],
        "once"
    );
    let found = kinds("config.js", &text);
    assert_eq!(
        found,
        vec![
            (1, Kind::GithubToken, "ghp_************".into()),
            (2, Kind::GitlabToken, "glpa************".into()),
            (3, Kind::SlackToken, "xoxb************".into()),
            (4, Kind::SlackWebhook, "aBcD************".into()),
        ]
    );
    // Prefixes in ordinary words and documentation are not tokens.
    assert_eq!(
        kinds("a.md", "use ghp_yourtoken or xoxb-your-token-here\n"),
        vec![]
    );
}

#[test]
fn env_files_are_findings_but_examples_are_not() {
    let text = "# local settings\nexport DB_PASSWORD=hunter2\n";
    assert_eq!(
        kinds("app/.env", text),
        vec![(2, Kind::EnvFile, "DB_PASSWORD=hunt***".into())]
    );
    assert_eq!(kinds("app/.env.example", text), vec![]);
    assert_eq!(kinds("app/.env", "# nothing set\nEMPTY=\n"), vec![]);
}

#[test]
fn random_values_under_secret_names_are_found_and_ordinary_ones_are_not() {
    let found = kinds("settings.py", "DB_PASSWORD = \"q8Zr!vT2#mLx9Wb4\"\n");
    assert_eq!(
        found,
        vec![(1, Kind::Assignment, "q8Zr************".into())]
    );
    let json = kinds("c.json", "{\"client_secret\": \"Jd93kLq0ZmX7vB2nRt5Y\"}");
    assert_eq!(json.len(), 1, "{json:?}");
    let yaml = kinds("app.yaml", "db:\n  password: Wq7Lz2Xv9Rb4Nc8M\n");
    assert_eq!(yaml.len(), 1, "{yaml:?}");
    for ordinary in [
        "password = get_password()\n",
        "token = \"Authorization\"\n",
        "secret_name = \"my-app-secret\"\n",
        "password = \"${DB_PASSWORD}\"\n",
        "api_key = \"your-api-key-here-1234\"\n",
        "TOKEN_ENDPOINT = \"https://example.com/oauth2/token\"\n",
        "secret = \"aaaaaaaaaaaaaaaa1\"\n",
        "\"ChangeToken\": \"abcd12f2-46da-4fdb-b8d5-fbd4c466928f\",\n",
        "\"output_token\": \"StreamDescription.Shards[-1].ShardId\",\n",
        "\"NextContinuationToken\": \"1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg==\",\n",
        "\"PasswordLastUsed\": \"2016-09-08T21:47:36Z\",\n",
        "\"Password\": \"SomeKindOfPassword123!@#\",\n",
        "\"OldPassword\": \"3s0K_;xh4~8XXI\"\n",
        "\"token_url\": \"https://sts.googleapis.com/v1/oauth/token\",\n",
        "TOKEN_TYPE = \"urn:ietf:params:aws:token-type:aws4_request\"\n",
        "\"SecretArn\": \"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbC123\"\n",
        "\"CredentialsKeysApi\": \"okta.api.o_auth2_credentials_keys_api2\",\n",
        "IMDS_TOKEN_PATH = \"/metadata/identity/oauth2/token\"\n",
        "_CREDENTIALS_KEY = 'google_oauth2_credentials'\n",
    ] {
        assert_eq!(kinds("a.py", ordinary), vec![], "{ordinary}");
    }
    // Unquoted values count in config files only.
    assert_eq!(kinds("a.py", "password = Wq7Lz2Xv9Rb4Nc8M\n"), vec![]);
}

#[test]
fn binary_files_are_skipped() {
    let mut bytes = b"\x7fELF\0\0\0".to_vec();
    bytes.extend(format!("{} {}", key_id(), secret_key()).as_bytes());
    assert_eq!(scan_bytes("lib.so", &bytes), vec![]);
}

#[test]
fn entropy_counts_bits_per_character() {
    assert_eq!(entropy("aaaa"), 0.0);
    assert!((entropy("abcd") - 2.0).abs() < 1e-9);
}

#[test]
fn a_truncated_key_in_documentation_is_not_one() {
    let line = "MIIEowIBAAKCAQEAz8Hk3mQ9vX2pL7rT5wY1bN4cF6gJ0sD8aE2uV9iO3kR7lM5n";
    let truncated =
        format!("e.g. `-----BEGIN RSA PRIVATE KEY-----{line}\\\\n.-----END RSA PRIVATE KEY-----`");
    assert_eq!(kinds("a.py", &truncated), vec![]);
}

#[test]
fn values_in_python_docstrings_are_examples_but_token_shapes_there_count() {
    let gl = ["glpat-", "Xy3_Zq8-Lm2Np5Rt7Vw9"].concat();
    let token_line = format!("    token {gl}");
    let text = [
        "def f():",
        "    \"\"\"Example:",
        "",
        "    >>> f(oauth_token_secret='2kjshdfp92i34asdasd')",
        token_line.as_str(),
        "    \"\"\"",
        "    KEY = '''",
        "    password = 'q8Zr!vT2#mLx9Wb4'",
        "    '''",
        "",
    ]
    .join("\n");
    let found = kinds("lib.py", &text);
    assert_eq!(
        found,
        vec![
            (5, Kind::GitlabToken, "glpa************".into()),
            (8, Kind::Assignment, "q8Zr************".into()),
        ],
        "{text}"
    );
    assert_eq!(python_docstring_lines(text.as_bytes()), vec![(2, 6)]);
    // The same text outside Python is not read as docstrings.
    assert_eq!(kinds("lib.md", &text).len(), 3);
}

#[test]
fn design_tokens_in_a_minified_bundle_are_not_secrets_but_keys_there_still_are() {
    let tokens: String = (0..20)
        .map(|i| {
            format!(
                "{{token:\"awsui_token_{i}x9k2_abc1{i}\",className:\"awsui_root_18wu0_{i}3x\"}},"
            )
        })
        .collect();
    let bundle = format!("var e=[{tokens}];var secretToken=\"awsui_in-inline-token_1wx3x_123\";\n");
    assert!(scan_bytes("assets/vendor-1a2b3c.js", bundle.as_bytes()).is_empty());
    // The same assignment outside a bundle is still looked at.
    let plain = "secretToken = \"awsui_in-inline-token_1wx3x_123\"\n";
    assert_eq!(scan_bytes("settings.py", plain.as_bytes()).len(), 1);
    // A random value in a bundle is still a finding, and so are keys of their own shape.
    let random = format!("{bundle}var apiSecret=\"q8Xf2LmN9pR3tY7wZk4V\";\n");
    let hits = scan_bytes("assets/vendor-1a2b3c.js", random.as_bytes());
    assert_eq!(hits.len(), 1, "{hits:?}");
    let slack =
        format!("{bundle}var s=\"xoxb-1234567890-1234567890123-abcdefghijABCDEFGHIJklmn\";\n");
    assert_eq!(scan_bytes("app.min.js", slack.as_bytes()).len(), 1);
}
