//! The history's S3 side: the index and records as JSON objects, the kept
//! bytes under `history/` copied inside the bucket, retention's deletes.

use std::collections::BTreeMap;

use super::{add, record_key, unreferenced, Entry, Index, Record, INDEX_KEY};
use crate::aws::Clients;
use crate::sync::{classify, remote, SyncError};
use crate::util::percent_encode_key;

/// The index; empty when there is none yet.
pub async fn load_index(clients: &Clients, bucket: &str) -> Result<Index, SyncError> {
    let bytes = remote::read_object(clients, bucket, INDEX_KEY).await?;
    Ok(bytes
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// One record; `None` when it is gone.
pub async fn load_record(
    clients: &Clients,
    bucket: &str,
    id: &str,
) -> Result<Option<Record>, SyncError> {
    let bytes = remote::read_object(clients, bucket, &record_key(id)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Every key under `prefix`.
pub async fn list(clients: &Clients, bucket: &str, prefix: &str) -> Result<Vec<String>, SyncError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| classify("ListObjectsV2", &format!("{bucket}/{prefix}"), e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(keys),
        }
    }
}

/// Records `record`: its bytes kept (each `kept key -> deployed key` of
/// `sources` not kept yet is copied inside the bucket), the record written
/// (naming the latest one before it as replaced), then the index; retention
/// then drops the oldest records and the bytes no kept record needs.
/// Returns the record as written.
pub async fn save(
    clients: &Clients,
    bucket: &str,
    mut record: Record,
    sources: &BTreeMap<String, String>,
    keep: usize,
) -> Result<Record, SyncError> {
    let present = list(clients, bucket, super::TEMPLATES_PREFIX)
        .await?
        .into_iter()
        .chain(list(clients, bucket, super::ZIPS_PREFIX).await?)
        .collect::<Vec<String>>();
    for (kept, source) in sources {
        if present.contains(kept) {
            continue;
        }
        clients
            .s3
            .copy_object()
            .bucket(bucket)
            .key(kept)
            .copy_source(format!("{bucket}/{}", percent_encode_key(source)))
            .send()
            .await
            .map_err(|e| classify("CopyObject", &format!("{bucket}/{kept}"), e))?;
    }
    let index = load_index(clients, bucket).await?;
    record.replaced = index
        .deployments
        .iter()
        .rev()
        .find(|e| e.outcome != super::FAILED)
        .map(|e| e.id.clone());
    remote::write_record(clients, bucket, &record_key(&record.id), &record).await?;
    append(
        clients,
        bucket,
        &index,
        Entry::from(&record),
        keep,
        &present,
    )
    .await?;
    Ok(record)
}

/// Adds a failed deploy to the index (it has no record and keeps nothing).
pub async fn save_failure(
    clients: &Clients,
    bucket: &str,
    entry: Entry,
    keep: usize,
) -> Result<(), SyncError> {
    let present = list(clients, bucket, super::TEMPLATES_PREFIX)
        .await?
        .into_iter()
        .chain(list(clients, bucket, super::ZIPS_PREFIX).await?)
        .collect::<Vec<String>>();
    let index = load_index(clients, bucket).await?;
    append(clients, bucket, &index, entry, keep, &present).await
}

/// Writes the index with `entry` added, then deletes what retention drops:
/// the oldest records, and the kept bytes (of `present`) no kept record names.
async fn append(
    clients: &Clients,
    bucket: &str,
    index: &Index,
    entry: Entry,
    keep: usize,
    present: &[String],
) -> Result<(), SyncError> {
    let (next, dropped) = add(index, entry, keep);
    remote::write_record(clients, bucket, INDEX_KEY, &next).await?;
    let mut gone: Vec<String> = dropped.iter().map(|id| record_key(id)).collect();
    gone.extend(unreferenced(present, &next));
    delete(clients, bucket, &gone).await
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
