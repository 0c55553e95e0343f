//! Provenance signed with a KMS key on the local server: a DSSE envelope
//! whose signature the key's public key checks independently; `artifact
//! verify` accepts it and refuses a changed statement or zip; an unchanged
//! pack signs nothing again; a key that cannot sign fails pack and leaves no
//! provenance.

use base64::Engine as _;

use crate::common::{assert_failure, assert_success, Sample};
use crate::local_aws::{artifact_aws, artifact_aws_env, boto};

/// A new KMS key: `SIGN_VERIFY` ECC_NIST_P256, or a symmetric one.
fn key(signing: bool) -> String {
    let spec = if signing {
        "KeyUsage='SIGN_VERIFY', KeySpec='ECC_NIST_P256'"
    } else {
        "KeyUsage='ENCRYPT_DECRYPT'"
    };
    boto(
        &format!("print(json.dumps(boto3.client('kms').create_key({spec})['KeyMetadata']['Arn']))"),
        &[],
    )
    .as_str()
    .unwrap()
    .to_string()
}

fn signed_sample(key: &str) -> Sample {
    crate::local_aws::server();
    let sample = Sample::new();
    sample.edit("artifact.toml", |t| {
        format!("{t}\n[provenance]\nkms_key = \"{key}\"\n")
    });
    sample
}

fn envelope(sample: &Sample) -> serde_json::Value {
    let text =
        std::fs::read_to_string(sample.path("build/lambda/provenance.intoto.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    serde_json::from_str(text.trim_end()).unwrap()
}

#[test]
fn pack_signs_the_provenance_and_verify_checks_it() {
    let arn = key(true);
    let sample = signed_sample(&arn);
    assert_success(&artifact_aws(sample.dir.path(), &["pack", "-q"]));
    let env = envelope(&sample);
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(env["signatures"][0]["keyid"], arn.as_str());
    let b64 = base64::engine::general_purpose::STANDARD;
    let statement = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(doc["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(doc["subject"].as_array().unwrap().len(), 5);

    // The key's public key checks the signature over DSSE's encoding, by
    // itself: the signature is what a DSSE verifier expects.
    let checked = boto(
        r#"
import base64
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
env = json.loads(sys.argv[2])
payload = base64.b64decode(env['payload'])
ptype = env['payloadType'].encode()
pae = b'DSSEv1 %d %s %d %s' % (len(ptype), ptype, len(payload), payload)
public = serialization.load_der_public_key(boto3.client('kms').get_public_key(KeyId=sys.argv[1])['PublicKey'])
public.verify(base64.b64decode(env['signatures'][0]['sig']), pae, ec.ECDSA(hashes.SHA256()))
print(json.dumps('valid'))
"#,
        &[&arn, &env.to_string()],
    );
    assert_eq!(checked, "valid");

    let out = artifact_aws(
        sample.dir.path(),
        &["verify", "build/lambda/api-handler.zip"],
    );
    assert_success(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("signed by KMS key {arn}")), "{said}");

    // Unchanged inputs: the signed file is kept, KMS is not asked again.
    let log = sample.path("requests.log");
    let again = artifact_aws_env(
        sample.dir.path(),
        &["pack", "-q"],
        &[("ARTIFACT_REQUEST_LOG", log.to_str().unwrap())],
    );
    assert_success(&again);
    assert!(
        !log.exists(),
        "no AWS request: {:?}",
        std::fs::read_to_string(&log)
    );
    assert_eq!(envelope(&sample), env);

    // A statement changed after signing is refused, though its zip matches it.
    let mut forged: serde_json::Value = doc;
    forged["predicate"]["buildDefinition"]["externalParameters"]["commit"] = "f00d".into();
    let mut tampered = env;
    tampered["payload"] = b64.encode(serde_json::to_vec(&forged).unwrap()).into();
    std::fs::write(
        sample.path("build/lambda/provenance.intoto.jsonl"),
        format!("{tampered}\n"),
    )
    .unwrap();
    let err = assert_failure(&artifact_aws(
        sample.dir.path(),
        &["verify", "build/lambda/api-handler.zip"],
    ));
    assert!(err.contains("does not match its statement"), "{err}");
}

#[test]
fn a_key_that_cannot_sign_fails_pack_and_leaves_no_provenance() {
    let sample = signed_sample(&key(false));
    let err = assert_failure(&artifact_aws(sample.dir.path(), &["pack", "-q"]));
    assert!(err.contains("cannot sign with SHA-256"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!sample.path("build/lambda/provenance.intoto.jsonl").exists());
}

/// `verify` of api-handler's zip in `sample`, expected to fail: its message.
fn verify_fails(sample: &Sample, extra: &[&str]) -> String {
    let mut args = vec!["verify", "build/lambda/api-handler.zip"];
    args.extend_from_slice(extra);
    assert_failure(&artifact_aws(sample.dir.path(), &args))
}

#[test]
fn with_a_key_set_verify_takes_only_one_statement_signed_by_that_key() {
    let arn = key(true);
    let sample = signed_sample(&arn);
    assert_success(&artifact_aws(sample.dir.path(), &["pack", "-q"]));
    let path = sample.path("build/lambda/provenance.intoto.jsonl");
    let signed = std::fs::read_to_string(&path).unwrap();
    let env = envelope(&sample);
    let b64 = base64::engine::general_purpose::STANDARD;
    let statement =
        String::from_utf8(b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();

    // The signature stripped: the bare statement.
    std::fs::write(&path, format!("{statement}\n")).unwrap();
    let err = verify_fails(&sample, &[]);
    assert!(err.contains("not signed") && err.contains(&arn), "{err}");
    assert!(err.contains("hint:"), "{err}");

    // A forged unsigned line after the signed one.
    std::fs::write(&path, format!("{signed}{statement}\n")).unwrap();
    let err = verify_fails(&sample, &[]);
    assert!(err.contains("2 statements"), "{err}");

    // Signed by another key the file names: the configured key is what counts.
    let other = key(true);
    let by_other = signed_sample(&other);
    assert_success(&artifact_aws(by_other.dir.path(), &["pack", "-q"]));
    std::fs::write(
        &path,
        std::fs::read(by_other.path("build/lambda/provenance.intoto.jsonl")).unwrap(),
    )
    .unwrap();
    // The other sample's zips are the same bytes: only the key differs.
    let err = verify_fails(&sample, &[]);
    assert!(err.contains("does not match its statement"), "{err}");
    // --key pins a key without a project file's say.
    let err = verify_fails(&by_other, &["--key", &arn]);
    assert!(err.contains("does not match its statement"), "{err}");
    std::fs::write(&path, &signed).unwrap();
    assert_success(&artifact_aws(
        sample.dir.path(),
        &["verify", "build/lambda/api-handler.zip"],
    ));
}

#[test]
fn deploy_infra_refuses_a_provenance_not_signed_by_the_configured_key() {
    let arn = key(true);
    let p = crate::deploy_infra::Project::unpacked();
    p.sample.edit("artifact.toml", |t| {
        format!("{t}\n[provenance]\nkms_key = \"{arn}\"\n")
    });
    p.pack();
    boto("s3.create_bucket(Bucket=sys.argv[1])", &[&p.bucket()]);
    let path = p.sample.path("build/lambda/provenance.intoto.jsonl");
    let env: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim_end()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let statement: serde_json::Value =
        serde_json::from_slice(&b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();

    // The zip swapped, the manifest and an unsigned statement edited to match.
    crate::deploy_infra::swap_zip_and_edit_manifest(&p.sample);
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.sample.path("build/lambda/manifest.json")).unwrap(),
    )
    .unwrap();
    let mut forged = statement;
    for s in forged["subject"].as_array_mut().unwrap() {
        if s["name"] == "api-handler.zip" {
            s["digest"]["sha256"] = m["functions"]["api-handler"]["sha256"].clone();
        }
    }
    std::fs::write(&path, format!("{forged}\n")).unwrap();
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("not signed"), "{err}");

    // The same statement in the envelope, with the old signature: KMS refuses it.
    let mut tampered = env;
    tampered["payload"] = b64.encode(forged.to_string()).into();
    std::fs::write(&path, format!("{tampered}\n")).unwrap();
    let (err, _) = p.deploy_fails(&[]);
    assert!(err.contains("does not match its statement"), "{err}");
    let keys = boto(
        "print(json.dumps(s3.list_objects_v2(Bucket=sys.argv[1], Prefix='lambda/').get('KeyCount', 0)))",
        &[&p.bucket()],
    );
    assert_eq!(keys, 0, "no zip was uploaded");
}
