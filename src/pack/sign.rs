//! Provenance signed with a KMS key (`[provenance] kms_key`): the statement
//! goes into a DSSE envelope (the in-toto attestation format) whose
//! signature KMS makes over the SHA-256 of the envelope's pre-authentication
//! encoding (`MessageType = DIGEST`, so a statement of any size is signed).
//! The private key never leaves KMS; `artifact verify` asks KMS to check it.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::Clients;

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope: one line of `provenance.intoto.jsonl` when signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The statement, base64.
    pub payload: String,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The KMS key's ARN.
    pub keyid: String,
    /// base64.
    pub sig: String,
}

impl Envelope {
    /// The statement's bytes.
    pub fn statement(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.payload)
            .ok()
    }
}

/// DSSE's pre-authentication encoding: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The algorithm artifact signs with, among those a key offers: ECDSA with
/// SHA-256, else RSA-PSS with SHA-256. Sign and verify choose alike.
pub fn algorithm_for(offered: &[SigningAlgorithmSpec]) -> Option<SigningAlgorithmSpec> {
    [
        SigningAlgorithmSpec::EcdsaSha256,
        SigningAlgorithmSpec::RsassaPssSha256,
    ]
    .into_iter()
    .find(|a| offered.contains(a))
}

/// Why signing or checking a signature failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("KMS key {key}: {message}")]
    Kms { key: String, message: String },
    #[error("KMS key {key} cannot sign with SHA-256 (it offers {offered}): provenance needs an asymmetric SIGN_VERIFY key, ECC_NIST_P256 or RSA")]
    NoAlgorithm { key: String, offered: String },
    #[error("the provenance signature does not match its statement under KMS key {key}: the file changed after it was signed")]
    Invalid { key: String },
    #[error("the provenance envelope is not readable: {0}")]
    Malformed(String),
}

impl SignError {
    pub fn hint(&self) -> String {
        match self {
            SignError::Kms { .. } => "check [provenance] kms_key, the region, and that this role may call kms:DescribeKey and kms:Sign (verify: kms:Verify) on the key".into(),
            SignError::NoAlgorithm { .. } => "create the key with KeyUsage SIGN_VERIFY and KeySpec ECC_NIST_P256 (or RSA_2048 and up)".into(),
            SignError::Invalid { .. } | SignError::Malformed(_) => "rebuild with artifact pack; nothing may change the provenance or the zips after the build".into(),
        }
    }
}

fn kms_err(key: &str, e: impl std::fmt::Display) -> SignError {
    SignError::Kms {
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// The key's ARN and the algorithm to use with it.
async fn key_and_algorithm(
    clients: &Clients,
    key: &str,
) -> Result<(String, SigningAlgorithmSpec), SignError> {
    let described = clients
        .kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| kms_err(key, crate::aws::classify("DescribeKey", key, &e)))?;
    let meta = described
        .key_metadata()
        .ok_or_else(|| kms_err(key, "DescribeKey returned no key"))?;
    let offered = meta.signing_algorithms();
    let algorithm = algorithm_for(offered).ok_or_else(|| SignError::NoAlgorithm {
        key: key.to_string(),
        offered: format!("{offered:?}"),
    })?;
    Ok((meta.arn().unwrap_or(key).to_string(), algorithm))
}

fn digest(statement: &[u8]) -> Vec<u8> {
    Sha256::digest(pae(PAYLOAD_TYPE, statement)).to_vec()
}

/// The statement signed by `key`, as an envelope.
pub async fn sign(clients: &Clients, key: &str, statement: &[u8]) -> Result<Envelope, SignError> {
    let (arn, algorithm) = key_and_algorithm(clients, key).await?;
    let out = clients
        .kms
        .sign()
        .key_id(&arn)
        .message(Blob::new(digest(statement)))
        .message_type(MessageType::Digest)
        .signing_algorithm(algorithm)
        .send()
        .await
        .map_err(|e| kms_err(key, crate::aws::classify("Sign", key, &e)))?;
    let sig = out
        .signature()
        .ok_or_else(|| kms_err(key, "Sign returned no signature"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Envelope {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: b64.encode(statement),
        signatures: vec![Signature {
            keyid: arn,
            sig: b64.encode(sig.as_ref()),
        }],
    })
}

/// Checks every signature of `envelope` with KMS; returns the keys' ARNs.
/// With a `pinned` key (`[provenance] kms_key`), each signature is checked
/// against that key, whatever key the envelope names: a statement signed by
/// any other key fails.
pub async fn verify(
    clients: &Clients,
    envelope: &Envelope,
    pinned: Option<&str>,
) -> Result<Vec<String>, SignError> {
    let statement = envelope
        .statement()
        .ok_or_else(|| SignError::Malformed("its payload is not base64".into()))?;
    if envelope.payload_type != PAYLOAD_TYPE || envelope.signatures.is_empty() {
        return Err(SignError::Malformed(format!(
            "payload type {:?} with {} signature(s)",
            envelope.payload_type,
            envelope.signatures.len()
        )));
    }
    let mut keys = Vec::new();
    for s in &envelope.signatures {
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&s.sig)
            .map_err(|_| SignError::Malformed("a signature is not base64".into()))?;
        let (arn, algorithm) = key_and_algorithm(clients, pinned.unwrap_or(&s.keyid)).await?;
        let checked = clients
            .kms
            .verify()
            .key_id(&arn)
            .message(Blob::new(digest(&statement)))
            .message_type(MessageType::Digest)
            .signature(Blob::new(sig))
            .signing_algorithm(algorithm)
            .send()
            .await;
        match checked {
            Ok(out) if out.signature_valid() => keys.push(arn),
            Ok(_) => return Err(SignError::Invalid { key: arn }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_signature_exception()) =>
            {
                return Err(SignError::Invalid { key: arn })
            }
            Err(e) => return Err(kms_err(&arn, crate::aws::classify("Verify", &arn, &e))),
        }
    }
    Ok(keys)
}

impl crate::output::Hint for SignError {
    fn hint(&self) -> Option<String> {
        Some(SignError::hint(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_authentication_encoding_is_dsse_v1() {
        assert_eq!(
            pae(PAYLOAD_TYPE, b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }

    #[test]
    fn ecdsa_is_preferred_then_rsa_pss_and_nothing_else() {
        use SigningAlgorithmSpec as S;
        assert_eq!(
            algorithm_for(&[S::RsassaPssSha256, S::EcdsaSha256]),
            Some(S::EcdsaSha256)
        );
        assert_eq!(
            algorithm_for(&[S::RsassaPkcs1V15Sha256, S::RsassaPssSha256]),
            Some(S::RsassaPssSha256)
        );
        assert_eq!(algorithm_for(&[S::EcdsaSha384]), None);
    }
}
