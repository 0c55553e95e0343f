//! The secret scan through the commands: a finding stops pack, sync and
//! deploy-frontend before anything is written or uploaded, names file and
//! line with the secret masked, and says how to allow a reviewed file;
//! validate lists findings as problems. Secrets are put together at run
//! time, so no file of the project holds one.

use std::path::Path;

use crate::common::{assert_failure, files_below, repo, Sample};
use crate::local_aws::{artifact_aws, bucket};

/// One secret of each kind: (file, its text, the line of the finding, what
/// the error names, the secret's text that must never be printed).
fn secrets() -> Vec<(&'static str, String, usize, &'static str, String)> {
    let key_id = ["AKIA", "Z7VQ3MB2XK4PLWTN"].concat();
    let secret = ["h8Kq2mZr9TfW4xLp", "7VbN3cYd6GsJ1aEu", "0RkQ5oPi"].concat();
    let pem_line = [
        "MIIEowIBAAKCAQEAz8Hk3mQ9vX2pL7rT5wY1bN4cF6gJ",
        "0sD8aE2uV9iO3kR7lM5nQxZ",
    ]
    .concat();
    let pem_body = format!("{pem_line}\n{pem_line}\n{pem_line}");
    let gh = ["ghp_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"].concat();
    let gl = ["glpat-", "Xy3_Zq8-Lm2Np5Rt7Vw9"].concat();
    let slack = ["xoxb-", "123456789012-1234567890123-AbCdEfGhIjKlMnOp"].concat();
    let password = ["q8Zr!vT2", "#mLx9Wb4"].concat();
    vec![
        (
            "index.py",
            format!("\nKEY = \"{key_id}\"\nSECRET = \"{secret}\"\n"),
            2,
            "an AWS access key id with a secret key beside it: AKIA****",
            key_id,
        ),
        (
            "index.py",
            format!(
                "\n\n-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----\n"
            ),
            3,
            "a private key",
            pem_line,
        ),
        (
            "index.py",
            format!("TOKEN = '{gh}'\n"),
            1,
            "a GitHub token: ghp_****",
            gh,
        ),
        (
            "index.py",
            format!("\nURL_TOKEN = '{gl}'\n"),
            2,
            "a GitLab token: glpa****",
            gl,
        ),
        (
            "index.py",
            format!("SLACK = '{slack}'\n"),
            1,
            "a Slack token: xoxb****",
            slack,
        ),
        (
            "index.py",
            format!("DB_PASSWORD = \"{password}\"\n"),
            1,
            "a random-looking value assigned to a secret's name: q8Zr****",
            password.clone(),
        ),
        (
            ".env",
            format!("# local\nDB_PASSWORD={password}\n"),
            2,
            "a .env file with values: DB_PASSWORD=q8Zr****",
            password,
        ),
    ]
}

fn zips(sample: &Sample) -> Vec<String> {
    let out = sample.path("build/lambda");
    if out.exists() {
        files_below(&out)
    } else {
        Vec::new()
    }
}

fn add_env_file(sample: &Sample) {
    sample.edit("artifact.toml", |t| {
        t.replacen(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            "files = [\"index.py\", \"rbac_middleware.py\", \".env\"]",
            1,
        )
    });
}

#[test]
fn pack_stops_on_each_kind_naming_file_and_line_with_the_secret_masked() {
    for (file, text, line, what, secret) in secrets() {
        let sample = Sample::new();
        if file == ".env" {
            add_env_file(&sample);
        }
        let path = sample.path(&format!("lambda/{file}"));
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let at = before.lines().count();
        std::fs::write(&path, format!("{before}{text}")).unwrap();
        let out = sample.run(&["pack"]);
        let err = assert_failure(&out);
        let want = format!("lambda/{file}:{}: {what}", at + line);
        assert!(err.contains(&want), "{want} not in:\n{err}");
        assert!(err.contains("[[scan.allow]]"), "{err}");
        for printed in [&err, &String::from_utf8_lossy(&out.stdout).to_string()] {
            assert!(
                !printed.contains(&secret[4..]),
                "the secret was printed: {printed}"
            );
        }
        assert_eq!(
            zips(&sample),
            Vec::<String>::new(),
            "{file}: nothing is written"
        );
    }
}

/// The sha256 the hint gives for the first finding.
fn hinted_sha(err: &str) -> String {
    let at = err.find("sha256 = \"").expect("a sha256 in the hint") + 10;
    err[at..at + 64].to_string()
}

#[test]
fn an_allowed_file_passes_until_it_is_edited() {
    let sample = Sample::new();
    let (_, text, ..) = secrets().remove(2);
    sample.edit("lambda/index.py", |t| format!("{t}{text}"));
    let err = assert_failure(&sample.run(&["pack"]));
    let sha = hinted_sha(&err);
    sample.edit("artifact.toml", |t| {
        format!("{t}\n[[scan.allow]]\npath = \"lambda/index.py\"\nsha256 = \"{sha}\"\n")
    });
    let report = sample.pack(&[]);
    assert_eq!(report.run.scan.unwrap().allowed, vec!["lambda/index.py"]);
    sample.edit("lambda/index.py", |t| format!("{t}# edited\n"));
    let err = assert_failure(&sample.run(&["pack"]));
    assert!(err.contains("lambda/index.py:"), "{err}");
    assert!(
        err.contains("names lambda/index.py with other contents"),
        "{err}"
    );
}

#[test]
fn a_warm_pack_reads_nothing_for_the_scan() {
    let sample = Sample::new();
    let cold = sample.pack(&[]).run.scan.unwrap();
    assert!(cold.scanned > 0 && cold.scanned <= cold.files, "{cold:?}");
    let warm = sample.pack(&[]).run.scan.unwrap();
    assert_eq!((warm.files, warm.scanned), (cold.files, 0), "{warm:?}");
}

#[test]
fn sync_and_deploy_frontend_upload_nothing_when_the_build_holds_a_secret() {
    let sample = Sample::new();
    let (_, text, ..) = secrets().remove(3);
    std::fs::write(sample.path("frontend/dist/assets/config.js"), &text).unwrap();
    let b = bucket("scan");
    let out = artifact_aws(
        sample.dir.path(),
        &["sync", "frontend/dist", &format!("s3://{b}")],
    );
    let err = assert_failure(&out);
    assert!(
        err.contains("frontend/dist/assets/config.js:2: a GitLab token"),
        "{err}"
    );
    let listed = crate::local_aws::boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1]).get('KeyCount', 0)))",
        &[&b],
    );
    assert_eq!(listed, 0, "nothing was uploaded");

    let site = crate::deploy_frontend::Site::new();
    std::fs::write(site.sample.path("frontend/dist/assets/config.js"), &text).unwrap();
    let err = assert_failure(&site.run(&["deploy-frontend"]));
    assert!(
        err.contains("frontend/dist/assets/config.js:2: a GitLab token"),
        "{err}"
    );
    assert_eq!(site.keys(), Vec::<String>::new(), "nothing was uploaded");
}

#[test]
fn validate_lists_each_finding_as_a_problem() {
    let sample = Sample::new();
    let (_, text, ..) = secrets().remove(4);
    std::fs::write(sample.path("cfn/notes.txt"), &text).unwrap();
    let out = sample.run(&["validate", "--offline"]);
    let err = assert_failure(&out);
    assert!(
        err.contains("problem: cfn/notes.txt:1: a Slack token: xoxb****"),
        "{err}"
    );
    assert!(
        err.contains("[[scan.allow]] path = \"cfn/notes.txt\""),
        "{err}"
    );
}

/// boto3 and botocore hold the documentation's example keys and example
/// passwords: a real dependency tree of them has no finding.
#[test]
fn a_real_dependency_tree_has_no_finding() {
    crate::local_aws::server(); // the venv exists once the server has started
    let lib = std::fs::read_dir(repo().join(".venv/lib")).unwrap();
    let site = lib.flatten().next().unwrap().path().join("site-packages");
    let mut files = Vec::new();
    for package in [
        "boto3",
        "botocore",
        "s3transfer",
        "urllib3",
        "requests",
        "yaml",
        "jinja2",
    ] {
        let dir = site.join(package);
        if dir.is_dir() {
            collect(&dir, &site, &mut files);
        }
    }
    assert!(files.len() > 1000, "botocore is there: {}", files.len());
    let stats = artifact::scan::check_files(&files, &[], None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.files, files.len());
}

fn collect(dir: &Path, base: &Path, out: &mut Vec<artifact::scan::ScanFile>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, base, out);
        } else if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            out.push(artifact::scan::ScanFile {
                display: p.strip_prefix(base).unwrap().display().to_string(),
                path: p.clone(),
                key: sha256_key(&bytes),
            });
        }
    }
}

/// A content key for the test: SHA-256 (the scan takes any 32-byte hash).
fn sha256_key(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// deploy-infra scans the templates it uploads: a secret in one stops it
/// before any template or zip is uploaded or anything deployed.
#[test]
fn deploy_infra_uploads_nothing_when_a_template_holds_a_secret() {
    let p = crate::deploy_infra::Project::new();
    let (_, text, ..) = secrets().remove(2);
    p.sample.edit("cfn/master-template.yaml", |t| {
        format!("{t}# {}\n", text.trim())
    });
    let err = assert_failure(&p.run(&["deploy-infra", "--timeout", "60s"]));
    assert!(err.contains("cfn/master-template.yaml:"), "{err}");
    assert!(err.contains("a GitHub token: ghp_****"), "{err}");
    let listed = crate::local_aws::boto(
        "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1]).get('Contents', [])]))",
        &[&p.bucket()],
    );
    // Nothing at all: a refusal before any change is not even recorded.
    assert_eq!(listed, serde_json::json!([]), "nothing was uploaded");
    let stacks = crate::local_aws::boto(
        "print(json.dumps([s['StackName'] for s in cfn.list_stacks()['StackSummaries'] if s['StackName'] == sys.argv[1]]))",
        &[&p.stack()],
    );
    assert_eq!(stacks, serde_json::json!([]), "no stack was created");
}

/// Bytes the scan found clean as `notes.txt` are scanned again under a name
/// other rules cover: the memo of clean contents is keyed by both.
#[test]
fn bytes_remembered_clean_under_one_name_are_scanned_again_under_another() {
    let sample = Sample::new();
    let text = "SERVICE_MODE=live\nREGION_HINT=eu-west-1\n";
    std::fs::write(sample.path("lambda/notes.txt"), text).unwrap();
    sample.edit("artifact.toml", |t| {
        t.replacen(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            "files = [\"index.py\", \"rbac_middleware.py\", \"notes.txt\"]",
            1,
        )
    });
    sample.pack(&[]);
    std::fs::rename(
        sample.path("lambda/notes.txt"),
        sample.path("lambda/.env.production"),
    )
    .unwrap();
    sample.edit("artifact.toml", |t| {
        t.replace("\"notes.txt\"", "\".env.production\"")
    });
    let err = assert_failure(&sample.run(&["pack"]));
    assert!(err.contains("lambda/.env.production:1:"), "{err}");
    // validate, from the same memo, finds it too.
    let err = assert_failure(&artifact_aws(sample.dir.path(), &["validate"]));
    assert!(err.contains(".env.production"), "{err}");
}

/// `pack --json` gives each finding as an object: file, line, rule, the value
/// masked, and the allow entry for it.
#[test]
fn pack_json_lists_findings_as_objects() {
    let sample = Sample::new();
    let (_, text, ..) = secrets().remove(2);
    sample.edit("lambda/index.py", |t| format!("{t}{text}"));
    let out = sample.run(&["pack", "--json"]);
    assert_failure(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    assert_eq!(f["file"], "lambda/index.py");
    assert!(f["line"].as_u64().unwrap() > 1);
    assert!(f["rule"].as_str().unwrap().len() > 2, "{f}");
    assert!(f["masked"].as_str().unwrap().contains('*'), "{f}");
    assert_eq!(f["allow"]["path"], "lambda/index.py");
    assert_eq!(f["allow"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(doc["outcome"], "failed");
}
