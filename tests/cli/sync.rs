//! `artifact sync` against the local AWS server, read back with boto3.

use std::path::Path;
use std::time::{Duration, SystemTime};

use artifact::sync::{ActionKind, SyncReport};

use crate::common::{assert_failure, assert_success};
use crate::local_aws::{artifact_aws, boto, bucket};

const RULES: &str = r#"
[project]
name = "site"

[[sync.rules]]
match = ["*.html", "aws-config.js"]
cache_control = "no-cache, no-store, must-revalidate"

[[sync.rules]]
match = ["**"]
cache_control = "public, max-age=31536000, immutable"
"#;

struct Site {
    dir: tempfile::TempDir,
    bucket: String,
}

impl Site {
    /// A small Vite-like dist/ and a project file with the usual rules.
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("dist/assets")).unwrap();
        std::fs::write(d.join("artifact.toml"), RULES).unwrap();
        std::fs::write(
            d.join("dist/index.html"),
            "<!doctype html><script src=\"/assets/index-a1b2.js\"></script>\n",
        )
        .unwrap();
        std::fs::write(d.join("dist/assets/index-a1b2.js"), "console.log('app');\n").unwrap();
        std::fs::write(d.join("dist/assets/index-c3d4.css"), "body{margin:0}\n").unwrap();
        std::fs::write(d.join("dist/aws-config.js"), "window.AWS_CONFIG = {};\n").unwrap();
        Site {
            dir,
            bucket: bucket("site"),
        }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn dest(&self) -> String {
        format!("s3://{}/web", self.bucket)
    }

    fn sync(&self, extra: &[&str]) -> SyncReport {
        let dest = self.dest();
        let mut args = vec!["sync", "dist", dest.as_str(), "--json"];
        args.extend_from_slice(extra);
        let out = artifact_aws(self.dir.path(), &args);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn head(&self, key: &str) -> serde_json::Value {
        boto(
            "h = s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])\n\
             print(json.dumps({'cc': h.get('CacheControl'), 'ct': h.get('ContentType'), 'etag': h['ETag'], 'meta': h.get('Metadata', {})}))",
            &[&self.bucket, key],
        )
    }

    fn get(&self, key: &str) -> Vec<u8> {
        let v = boto(
            "import base64\nb = s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read()\nprint(json.dumps(base64.b64encode(b).decode()))",
            &[&self.bucket, key],
        );
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    fn keys(&self) -> Vec<String> {
        let v = boto(
            "p = s3.get_paginator('list_objects_v2')\nkeys = [o['Key'] for page in p.paginate(Bucket=sys.argv[1]) for o in page.get('Contents', [])]\nprint(json.dumps(sorted(keys)))",
            &[&self.bucket],
        );
        serde_json::from_value(v).unwrap()
    }
}

fn touch_all(dir: &Path) {
    let t = SystemTime::now() + Duration::from_secs(3600);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            touch_all(&p);
        } else {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    }
}

#[test]
fn first_upload_applies_rules_and_uploads_entry_points_last() {
    let s = Site::new();
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 4);
    let order: Vec<&str> = r.actions.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        order,
        [
            "web/assets/index-a1b2.js",
            "web/assets/index-c3d4.css",
            "web/aws-config.js",
            "web/index.html"
        ]
    );
    let h = s.head("web/index.html");
    assert_eq!(h["cc"], "no-cache, no-store, must-revalidate");
    assert_eq!(h["ct"], "text/html; charset=utf-8");
    let h = s.head("web/aws-config.js");
    assert_eq!(h["cc"], "no-cache, no-store, must-revalidate");
    let h = s.head("web/assets/index-c3d4.css");
    assert_eq!(h["cc"], "public, max-age=31536000, immutable");
    assert_eq!(h["ct"], "text/css; charset=utf-8");
    assert_eq!(s.get("web/assets/index-a1b2.js"), b"console.log('app');\n");
}

#[test]
fn a_fresh_checkout_uploads_nothing_with_one_list_and_no_head() {
    let s = Site::new();
    s.sync(&[]);
    touch_all(&s.path("dist"));
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 0);
    assert_eq!(r.headers_updated.files, 0);
    assert_eq!(r.unchanged.files, 4);
    assert_eq!(r.inspected, 0);
    assert_eq!(r.requests.get("S3.ListObjectsV2"), Some(&1));
    assert_eq!(r.requests.get("S3.HeadObject"), None);
    assert_eq!(r.requests.values().sum::<u64>(), 2, "{:?}", r.requests);
}

#[test]
fn one_edited_file_is_the_only_upload() {
    let s = Site::new();
    s.sync(&[]);
    std::fs::write(s.path("dist/assets/index-c3d4.css"), "body{margin:1px}\n").unwrap();
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 1);
    assert_eq!(r.actions[0].key, "web/assets/index-c3d4.css");
    assert_eq!(r.actions[0].reason, artifact::sync::Reason::Changed);
    assert_eq!(s.get("web/assets/index-c3d4.css"), b"body{margin:1px}\n");
}

#[test]
fn a_changed_rule_replaces_headers_without_resending_bytes() {
    let s = Site::new();
    s.sync(&[]);
    let text = RULES.replace("max-age=31536000", "max-age=600");
    std::fs::write(s.path("artifact.toml"), text).unwrap();
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 0);
    assert_eq!(r.headers_updated.files, 2);
    assert_eq!(
        r.requests.get("S3.PutObject"),
        Some(&1),
        "only the state object"
    );
    assert_eq!(r.requests.get("S3.CopyObject"), Some(&2));
    let h = s.head("web/assets/index-a1b2.js");
    assert_eq!(h["cc"], "public, max-age=600, immutable");
    assert!(h["ct"].as_str().unwrap().contains("javascript"));
    assert_eq!(s.get("web/assets/index-a1b2.js"), b"console.log('app');\n");
    // And the next run is quiet again.
    let r = s.sync(&[]);
    assert_eq!(r.headers_updated.files + r.uploaded.files, 0);
}

#[test]
fn a_file_deleted_locally_stays_without_delete_and_goes_with_it() {
    let s = Site::new();
    s.sync(&[]);
    std::fs::remove_file(s.path("dist/assets/index-c3d4.css")).unwrap();
    let r = s.sync(&[]);
    assert_eq!(r.deleted.files, 0);
    assert_eq!(r.extra_remote, 1);
    assert!(s.keys().contains(&"web/assets/index-c3d4.css".to_string()));

    // A cap below the count refuses the whole delete step.
    let dest = s.dest();
    let out = artifact_aws(
        s.dir.path(),
        &["sync", "dist", &dest, "--delete", "--max-delete", "0"],
    );
    let err = assert_failure(&out);
    assert!(err.contains("--max-delete 0"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(s.keys().contains(&"web/assets/index-c3d4.css".to_string()));

    let r = s.sync(&["--delete", "--max-delete", "1"]);
    assert_eq!(r.deleted.files, 1);
    assert_eq!(r.actions.last().unwrap().kind, ActionKind::Delete);
    let keys = s.keys();
    assert!(!keys.contains(&"web/assets/index-c3d4.css".to_string()));
    assert!(keys.contains(&"web/.artifact-sync.json".to_string()));
}

#[test]
fn objects_changed_or_deleted_behind_our_back_are_restored() {
    let s = Site::new();
    s.sync(&[]);
    boto(
        "s3.put_object(Bucket=sys.argv[1], Key='web/assets/index-a1b2.js', Body=b'tampered')\n\
         s3.delete_object(Bucket=sys.argv[1], Key='web/index.html')",
        &[&s.bucket],
    );
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 2, "{:?}", r.actions);
    assert_eq!(r.inspected, 1, "only the tampered object needs a HEAD");
    assert_eq!(s.get("web/assets/index-a1b2.js"), b"console.log('app');\n");
    assert!(s.keys().contains(&"web/index.html".to_string()));
}

#[test]
fn a_lost_state_object_costs_heads_not_uploads() {
    // As after a sync interrupted before it recorded its state.
    let s = Site::new();
    s.sync(&[]);
    boto(
        "s3.delete_object(Bucket=sys.argv[1], Key='web/.artifact-sync.json')",
        &[&s.bucket],
    );
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 0);
    assert_eq!(r.inspected, 4);
    let r = s.sync(&[]);
    assert_eq!(r.inspected, 0);
}

#[test]
fn more_than_a_thousand_keys_are_listed_in_pages() {
    let s = Site::new();
    for i in 0..1050 {
        std::fs::write(
            s.path(&format!("dist/assets/chunk-{i:04}.js")),
            format!("export const n = {i};\n"),
        )
        .unwrap();
    }
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 1054);
    touch_all(&s.path("dist"));
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 0);
    assert_eq!(r.unchanged.files, 1054);
    assert_eq!(r.requests.get("S3.ListObjectsV2"), Some(&2));
    assert_eq!(r.requests.get("S3.HeadObject"), None);
    assert_eq!(s.keys().len(), 1055);
}

#[test]
fn a_large_file_goes_up_in_parts_and_its_etag_causes_no_reupload() {
    let s = Site::new();
    let text = RULES.replace(
        "name = \"site\"\n",
        "name = \"site\"\n\n[sync]\nmultipart_threshold = 5242880\npart_size = 5242880\n",
    );
    std::fs::write(s.path("artifact.toml"), text).unwrap();
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(s.path("dist/assets/model.bin"), &big).unwrap();
    // An upload of the same key that a killed run started and never finished.
    boto(
        "s3.create_multipart_upload(Bucket=sys.argv[1], Key='web/assets/model.bin')",
        &[&s.bucket],
    );
    let r = s.sync(&[]);
    assert_eq!(
        r.requests.get("S3.AbortMultipartUpload"),
        Some(&1),
        "the stale upload"
    );
    let open = boto(
        "print(json.dumps(len(s3.list_multipart_uploads(Bucket=sys.argv[1]).get('Uploads', []))))",
        &[&s.bucket],
    );
    assert_eq!(open, 0, "no upload left open");
    assert_eq!(r.requests.get("S3.CreateMultipartUpload"), Some(&1));
    assert_eq!(r.requests.get("S3.UploadPart"), Some(&2));
    let h = s.head("web/assets/model.bin");
    assert!(h["etag"].as_str().unwrap().contains("-2"), "{h}");
    assert_eq!(s.get("web/assets/model.bin"), big);
    // The upload was made with SHA-256 checksums, which S3 checks per part.
    let checksum = boto(
        "print(json.dumps(s3.head_object(Bucket=sys.argv[1], Key='web/assets/model.bin', ChecksumMode='ENABLED').get('ChecksumSHA256')))",
        &[&s.bucket],
    );
    assert!(checksum.is_string(), "no SHA-256 checksum: {checksum}");
    touch_all(&s.path("dist"));
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 0);
    assert_eq!(r.inspected, 0);
}

#[test]
fn a_kms_encrypted_bucket_causes_no_reupload() {
    let s = Site::new();
    boto(
        "kms = boto3.client('kms')\n\
         key = kms.create_key()['KeyMetadata']['KeyId']\n\
         s3.put_bucket_encryption(Bucket=sys.argv[1], ServerSideEncryptionConfiguration={'Rules': [\n\
             {'ApplyServerSideEncryptionByDefault': {'SSEAlgorithm': 'aws:kms', 'KMSMasterKeyID': key}}]})",
        &[&s.bucket],
    );
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 4);
    touch_all(&s.path("dist"));
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 0);
    assert_eq!(r.inspected, 0);
}

#[test]
fn odd_key_names_survive_a_round_trip() {
    let s = Site::new();
    let names = [
        "a b.txt",
        "plus+sign.txt",
        "100%.txt",
        "hash#tag.txt",
        "café/ünï 雪.txt",
    ];
    for n in names {
        let p = s.path(&format!("dist/{n}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, n).unwrap();
    }
    s.sync(&[]);
    let keys = s.keys();
    for n in names {
        let key = format!("web/{n}");
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
        assert_eq!(s.get(&key), n.as_bytes());
    }
    // Header updates copy the object onto itself: the copy source must be encoded.
    let text = RULES.replace("max-age=31536000", "max-age=60");
    std::fs::write(s.path("artifact.toml"), text).unwrap();
    let r = s.sync(&[]);
    assert_eq!(r.headers_updated.files, 7);
    assert_eq!(
        s.head("web/plus+sign.txt")["cc"],
        "public, max-age=60, immutable"
    );
    assert_eq!(s.get("web/café/ünï 雪.txt"), "café/ünï 雪.txt".as_bytes());
}

#[test]
fn symlinks_are_followed_only_inside_the_folder() {
    let s = Site::new();
    std::os::unix::fs::symlink("index.html", s.path("dist/home.html")).unwrap();
    let r = s.sync(&[]);
    assert_eq!(r.uploaded.files, 5);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), s.path("dist/leak")).unwrap();
    let dest = s.dest();
    let err = assert_failure(&artifact_aws(s.dir.path(), &["sync", "dist", &dest]));
    assert!(err.contains("dist/leak"), "{err}");
    assert!(err.contains("outside the synced folder"), "{err}");
}

#[test]
fn dry_run_changes_nothing() {
    let s = Site::new();
    let r = s.sync(&["--dry-run"]);
    assert!(r.dry_run);
    assert_eq!(r.uploaded.files, 4);
    assert!(s.keys().is_empty());
    crate::common::assert_only_reads(&r.requests);
    // With uploads, header changes and deletes all planned, still only reads.
    s.sync(&[]);
    let before = s.keys();
    std::fs::write(s.path("dist/assets/index-a1b2.js"), "console.log(2);\n").unwrap();
    std::fs::remove_file(s.path("dist/assets/index-c3d4.css")).unwrap();
    let r = s.sync(&["--dry-run", "--delete"]);
    assert_eq!(
        (r.uploaded.files, r.deleted.files),
        (1, 1),
        "{:?}",
        r.actions
    );
    crate::common::assert_only_reads(&r.requests);
    assert_eq!(s.keys(), before);
}

// ---- bad input ---------------------------------------------------------------

#[test]
fn a_bucket_that_does_not_exist() {
    let s = Site::new();
    let err = assert_failure(&artifact_aws(
        s.dir.path(),
        &["sync", "dist", "s3://no-such-bucket-here-123"],
    ));
    assert!(
        err.contains("no-such-bucket-here-123 does not exist"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn a_malformed_url_and_a_missing_folder() {
    let s = Site::new();
    let err = assert_failure(&artifact_aws(s.dir.path(), &["sync", "dist", "s4://x"]));
    assert!(err.contains("s4://x"), "{err}");
    assert!(
        err.contains("hint: write the destination as s3://"),
        "{err}"
    );
    let dest = s.dest();
    let err = assert_failure(&artifact_aws(s.dir.path(), &["sync", "nope", &dest]));
    assert!(err.contains("nope is not a folder"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn an_unreachable_endpoint() {
    let s = Site::new();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dest = s.dest();
    let endpoint = format!("http://127.0.0.1:{port}");
    let err = assert_failure(&artifact_aws(
        s.dir.path(),
        &["sync", "dist", &dest, "--endpoint-url", &endpoint],
    ));
    assert!(err.contains("could not reach"), "{err}");
    assert!(err.contains("hint: check --endpoint-url"), "{err}");
}

#[test]
fn no_credentials() {
    let s = Site::new();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"));
    crate::local_aws::aws_env(&mut cmd)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .args(["sync", "dist", &s.dest()])
        .current_dir(s.dir.path());
    let err = assert_failure(&cmd.output().unwrap());
    assert!(err.contains("no AWS credentials"), "{err}");
    assert!(err.contains("hint: set AWS_PROFILE"), "{err}");
}
