//! The S3 object helpers every layer shares: an SDK error classified (a
//! missing bucket named), a small object read whole or by range (a body cut
//! short is read again), and one of artifact's own JSON records written. The
//! sync engine (`crate::sync`) is built on these; history, pack's shared
//! cache, frontend and cfn use them directly.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

use super::{AwsFailure, Clients};

/// What an S3 object request can end in.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    #[error("{key}: {source}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

impl S3Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            S3Error::NoSuchBucket { .. } => Some(
                "create the bucket (deploy-infra's stack does), or fix the bucket name and --region"
                    .into(),
            ),
            S3Error::Aws(f) => f.hint(),
            S3Error::Encode { .. } => None,
        }
    }
}

/// Turns an SDK error into one that says what to do; a missing bucket is named.
pub fn classify<E>(operation: &'static str, target: &str, err: SdkError<E>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if err.code() == Some("NoSuchBucket") {
        return S3Error::NoSuchBucket {
            bucket: target.split('/').next().unwrap_or(target).to_string(),
        };
    }
    S3Error::Aws(super::classify(operation, target, &err))
}

/// How many times a GET whose body breaks off mid-stream is sent again (the
/// SDK retries failed requests, not bodies cut while being read).
const BODY_ATTEMPTS: u32 = 3;

/// Reads a small object whole; `None` when there is no such key.
pub async fn read_object(
    clients: &Clients,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, S3Error> {
    read_range(clients, bucket, key, None).await
}

/// Reads an object, or the bytes `start..end` of it, whole; `None` when there
/// is no such key. A body cut short is read again.
pub async fn read_range(
    clients: &Clients,
    bucket: &str,
    key: &str,
    range: Option<(u64, u64)>,
) -> Result<Option<Vec<u8>>, S3Error> {
    Ok(get_whole(clients, bucket, key, range)
        .await?
        .map(|(b, _)| b))
}

/// An object (or a range of it) whole, with its ETag.
async fn get_whole(
    clients: &Clients,
    bucket: &str,
    key: &str,
    range: Option<(u64, u64)>,
) -> Result<Option<(Vec<u8>, String)>, S3Error> {
    let target = format!("{bucket}/{key}");
    let mut attempt = 1;
    loop {
        let mut req = clients.s3.get_object().bucket(bucket).key(key);
        if let Some((start, end)) = range {
            req = req.range(format!("bytes={start}-{}", end.saturating_sub(1)));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(classify("GetObject", &target, e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        match out.body.collect().await {
            Ok(bytes) => return Ok(Some((bytes.into_bytes().to_vec(), etag))),
            Err(e) if attempt < BODY_ATTEMPTS => {
                tracing::info!("reading s3://{target} broke off ({e}); reading it again");
                attempt += 1;
            }
            Err(e) => {
                return Err(S3Error::Aws(AwsFailure::Interrupted {
                    operation: "GetObject",
                    target,
                    detail: format!("{e}, {BODY_ATTEMPTS} times"),
                }))
            }
        }
    }
}

/// Writes one of artifact's own JSON records (never cached), the pair of
/// [`read_object`].
pub async fn write_record<T: Serialize>(
    clients: &Clients,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), S3Error> {
    record_put(clients, bucket, key, value)?
        .send()
        .await
        .map_err(|e| classify("PutObject", &format!("{bucket}/{key}"), e))?;
    Ok(())
}

/// The PutObject of one of artifact's JSON records, ready to send.
fn record_put<T: Serialize>(
    clients: &Clients,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder, S3Error> {
    let body = serde_json::to_vec(value).map_err(|source| S3Error::Encode {
        key: key.into(),
        source,
    })?;
    Ok(clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .cache_control("no-store")
        .body(ByteStream::from(body)))
}

/// What a conditional write expects of the object it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No object at the key yet (`If-None-Match: *`).
    Absent,
    /// The object with this ETag (`If-Match`).
    Etag(String),
}

/// A small object whole with its ETag; `None` when there is no such key.
pub async fn read_object_tagged(
    clients: &Clients,
    bucket: &str,
    key: &str,
) -> Result<Option<(Vec<u8>, String)>, S3Error> {
    get_whole(clients, bucket, key, None).await
}

/// Writes one of artifact's JSON records only if the object is still what
/// `expect` says (S3's conditional writes): its new ETag, or `None` when
/// another run changed it first (the caller reads it again and redoes its change).
pub async fn write_record_if<T: Serialize>(
    clients: &Clients,
    bucket: &str,
    key: &str,
    value: &T,
    expect: &Expect,
) -> Result<Option<String>, S3Error> {
    let req = record_put(clients, bucket, key, value)?;
    let req = match expect {
        Expect::Absent => req.if_none_match("*"),
        Expect::Etag(etag) => req.if_match(etag),
    };
    match req.send().await {
        Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
        Err(e)
            if matches!(
                e.raw_response().map(|r| r.status().as_u16()),
                Some(412 | 409)
            ) =>
        {
            Ok(None)
        }
        // Deleted since it was read: changed all the same.
        Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
        Err(e) => Err(classify("PutObject", &format!("{bucket}/{key}"), e)),
    }
}

impl crate::output::Hint for S3Error {
    fn hint(&self) -> Option<String> {
        S3Error::hint(self)
    }
}
