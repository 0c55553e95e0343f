//! The history's S3 side: the index and records as JSON objects, the kept
//! bytes under `history/` copied inside the bucket, retention's deletes.

use std::collections::BTreeMap;

use super::{add, record_key_in, unreferenced, Entry, Index, Log, Record, SiteRecord, INFRA};
use crate::aws::s3;
use crate::aws::Clients;
use crate::sync::{classify, remote, SyncError};
use crate::util::percent_encode_key;

/// The index of the stack's deployments; empty when there is none yet.
pub async fn load_index(clients: &Clients, bucket: &str) -> Result<Index, SyncError> {
    load_index_of(clients, bucket, &INFRA).await
}

/// The index of `log`; empty when there is none yet. An index that does not
/// parse is an error, never an empty list: the next retention would then
/// delete the bytes of every deployment it names.
pub async fn load_index_of(clients: &Clients, bucket: &str, log: &Log) -> Result<Index, SyncError> {
    Ok(load_tagged(clients, bucket, log).await?.0)
}

/// The index of `log` and what a conditional write of it expects.
async fn load_tagged(
    clients: &Clients,
    bucket: &str,
    log: &Log,
) -> Result<(Index, s3::Expect), SyncError> {
    let Some((bytes, etag)) = s3::read_object_tagged(clients, bucket, log.index).await? else {
        return Ok((Index::default(), s3::Expect::Absent));
    };
    let index = serde_json::from_slice(&bytes).map_err(|e| SyncError::Damaged {
        bucket: bucket.to_string(),
        key: log.index.to_string(),
        problem: e.to_string(),
    })?;
    Ok((index, s3::Expect::Etag(etag)))
}

/// Times an index write is redone after another run changed the index first.
const INDEX_ATTEMPTS: usize = 8;

/// One record of `log`; `None` when it is gone.
pub async fn load_record<T: serde::de::DeserializeOwned>(
    clients: &Clients,
    bucket: &str,
    log: &Log,
    id: &str,
) -> Result<Option<T>, SyncError> {
    let bytes = s3::read_object(clients, bucket, &record_key_in(log, id)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Every key `log` keeps bytes under.
pub async fn kept_keys(
    clients: &Clients,
    bucket: &str,
    log: &Log,
) -> Result<Vec<String>, SyncError> {
    let mut keys = Vec::new();
    for prefix in log.kept {
        keys.extend(list(clients, bucket, prefix).await?);
    }
    Ok(keys)
}

/// Copies `(kept key, source bucket, source key)` not kept yet into `bucket`.
async fn keep(
    clients: &Clients,
    bucket: &str,
    present: &[String],
    copies: &[(String, String, String)],
) -> Result<(), SyncError> {
    for (kept, from_bucket, from_key) in copies {
        if present.contains(kept) {
            continue;
        }
        copy(clients, (from_bucket, from_key), (bucket, kept), None).await?;
    }
    Ok(())
}

/// CopyObject from `(bucket, key)` to `(bucket, key)`, inside S3; with
/// `checksum`, the copy carries that checksum of its bytes.
async fn copy(
    clients: &Clients,
    (from_bucket, from_key): (&str, &str),
    (bucket, key): (&str, &str),
    checksum: Option<aws_sdk_s3::types::ChecksumAlgorithm>,
) -> Result<(), SyncError> {
    clients
        .s3
        .copy_object()
        .bucket(bucket)
        .key(key)
        .copy_source(format!("{from_bucket}/{}", percent_encode_key(from_key)))
        .set_checksum_algorithm(checksum)
        .send()
        .await
        .map_err(|e| classify("CopyObject", &format!("{bucket}/{key}"), e))?;
    Ok(())
}

/// Copies the kept `kept` back to `to` in the same bucket (a rollback's
/// restore of a template to the key its parent's TemplateURL names),
/// carrying its SHA-256 as the upload did.
pub async fn restore(
    clients: &Clients,
    bucket: &str,
    kept: &str,
    to: &str,
) -> Result<(), SyncError> {
    let sha256 = aws_sdk_s3::types::ChecksumAlgorithm::Sha256;
    copy(clients, (bucket, kept), (bucket, to), Some(sha256)).await
}

/// Records a release of the site, as [`save`] records a deploy.
pub async fn save_site(
    clients: &Clients,
    bucket: &str,
    record: SiteRecord,
    copies: &[(String, String, String)],
    keep_n: usize,
) -> Result<SiteRecord, SyncError> {
    save_in(clients, bucket, &super::SITE, copies, keep_n, |replaced| {
        let record = SiteRecord { replaced, ..record };
        let entry = Entry::from(&record);
        (record, entry)
    })
    .await
}

/// Keeps the bytes of `copies`, then writes the record `make` builds (given
/// the latest deployment before it that did not fail) and its index entry;
/// retention then drops the oldest records and the bytes no kept record needs.
async fn save_in<T: serde::Serialize>(
    clients: &Clients,
    bucket: &str,
    log: &Log,
    copies: &[(String, String, String)],
    keep_n: usize,
    make: impl FnOnce(Option<String>) -> (T, Entry),
) -> Result<T, SyncError> {
    let present = kept_keys(clients, bucket, log).await?;
    keep(clients, bucket, &present, copies).await?;
    let (index, expect) = load_tagged(clients, bucket, log).await?;
    let replaced = index
        .deployments
        .iter()
        .rev()
        .find(|e| e.outcome != super::FAILED)
        .map(|e| e.id.clone());
    let (record, entry) = make(replaced);
    let key = record_key_in(log, &entry.id);
    s3::write_record(clients, bucket, &key, &record).await?;
    append(
        clients,
        bucket,
        log,
        (index, expect),
        entry,
        keep_n,
        &present,
    )
    .await?;
    Ok(record)
}

/// Every key under `prefix`.
pub async fn list(clients: &Clients, bucket: &str, prefix: &str) -> Result<Vec<String>, SyncError> {
    let dest = crate::model::S3Url {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    };
    Ok(remote::list_all(clients, &dest)
        .await?
        .into_keys()
        .collect())
}

/// Records a deploy of the stack: its bytes kept (each `kept key -> deployed
/// key` of `sources` not kept yet is copied inside the bucket), the record
/// written (naming the deployment it replaced), then the index, then
/// retention. Returns the record as written.
pub async fn save(
    clients: &Clients,
    bucket: &str,
    record: Record,
    sources: &BTreeMap<String, String>,
    keep_n: usize,
) -> Result<Record, SyncError> {
    let copies: Vec<(String, String, String)> = sources
        .iter()
        .map(|(k, from)| (k.clone(), bucket.to_string(), from.clone()))
        .collect();
    save_in(clients, bucket, &INFRA, &copies, keep_n, |replaced| {
        let record = Record { replaced, ..record };
        let entry = Entry::from(&record);
        (record, entry)
    })
    .await
}

/// Adds a failed deploy to the index (it has no record and keeps nothing).
pub async fn save_failure(
    clients: &Clients,
    bucket: &str,
    entry: Entry,
    keep: usize,
) -> Result<(), SyncError> {
    let present = kept_keys(clients, bucket, &INFRA).await?;
    let read = load_tagged(clients, bucket, &INFRA).await?;
    append(clients, bucket, &INFRA, read, entry, keep, &present).await
}

/// Writes the index with `entry` added, then deletes what retention drops:
/// the oldest records, and the kept bytes (of `present`) no kept record names.
/// The write is conditional on the index being the one `read` (index and
/// what the write expects), else it is read again: two runs at once each add
/// their entry, neither overwrites the other's.
async fn append(
    clients: &Clients,
    bucket: &str,
    log: &Log,
    read: (Index, s3::Expect),
    entry: Entry,
    keep: usize,
    present: &[String],
) -> Result<(), SyncError> {
    let (mut current, mut expect) = read;
    for _ in 0..INDEX_ATTEMPTS {
        let (next, dropped) = add(&current, entry.clone(), keep);
        if s3::write_record_if(clients, bucket, log.index, &next, &expect)
            .await?
            .is_some()
        {
            let mut gone: Vec<String> = dropped.iter().map(|id| record_key_in(log, id)).collect();
            gone.extend(unreferenced(present, &next));
            return delete(clients, bucket, &gone).await;
        }
        tracing::debug!(
            "{} changed since it was read: adding to the newer one",
            log.index
        );
        (current, expect) = load_tagged(clients, bucket, log).await?;
    }
    Err(SyncError::Damaged {
        bucket: bucket.to_string(),
        key: log.index.to_string(),
        problem: format!(
            "another run changed it {INDEX_ATTEMPTS} times while this one added its entry"
        ),
    })
}

/// Deletes keys (up to 1,000 a request).
async fn delete(clients: &Clients, bucket: &str, keys: &[String]) -> Result<(), SyncError> {
    for chunk in keys.chunks(1000) {
        let delete = crate::sync::apply::delete_request(chunk.iter().map(String::as_str), bucket)?;
        clients
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify("DeleteObjects", bucket, e))?;
    }
    Ok(())
}
