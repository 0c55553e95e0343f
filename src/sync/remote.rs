//! The remote side of a sync, read only: the prefix's listing, the state
//! object sync keeps beside the files, and a HEAD of each object the state
//! cannot vouch for. Nothing here writes, except [`save_state`], which apply
//! calls once the work it records is done.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::local::LocalFile;
use super::rules::Headers;
use super::{SyncError, SHA_META, STATE_NAME};
use crate::aws::{AwsFailure, Clients};
use crate::model::S3Url;

pub(crate) const STATE_VERSION: u32 = 1;

/// What the state object says of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    pub sha256: String,
    pub size: u64,
    pub etag: String,
    #[serde(flatten)]
    pub headers: Headers,
}

/// The state object: each synced key's content hash, size, ETag and headers.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub objects: BTreeMap<String, StateEntry>,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub size: u64,
    pub etag: String,
}

/// What is known of a remote object's content and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub sha256: String,
    pub etag: String,
    pub headers: Headers,
}

/// What the prefix holds, and what the state object says of it.
#[derive(Debug, Clone, Default)]
pub struct RemoteView {
    pub objects: HashMap<String, Remote>,
    pub state: State,
}

/// Everything a sync plan is made from.
#[derive(Debug, Clone)]
pub struct SyncObserved {
    pub dest: S3Url,
    pub local: Vec<LocalFile>,
    pub remote: RemoteView,
    /// Objects whose content is known: from the state, or from a HEAD.
    pub known: HashMap<String, Known>,
    /// How many objects needed a HEAD.
    pub inspected: u64,
}

/// Splits the local files present remotely into those the state vouches for
/// (same ETag and size as recorded) and the keys that need a HEAD.
pub fn vouched(
    dest: &S3Url,
    local: &[LocalFile],
    view: &RemoteView,
) -> (HashMap<String, Known>, Vec<String>) {
    let mut known = HashMap::new();
    let mut unknown = Vec::new();
    for f in local {
        let key = dest.key(&f.rel);
        let Some(r) = view.objects.get(&key) else {
            continue;
        };
        match view.state.objects.get(&f.rel) {
            Some(s) if s.etag == r.etag && s.size == r.size => {
                known.insert(
                    key,
                    Known {
                        sha256: s.sha256.clone(),
                        etag: s.etag.clone(),
                        headers: s.headers.clone(),
                    },
                );
            }
            _ => unknown.push(key),
        }
    }
    (known, unknown)
}

/// Inspects (HEAD) what the state cannot vouch for, completing the observation.
pub async fn inspect(
    clients: &Clients,
    dest: &S3Url,
    local: Vec<LocalFile>,
    remote: RemoteView,
    concurrency: usize,
) -> Result<SyncObserved, SyncError> {
    let (mut known, unknown) = vouched(dest, &local, &remote);
    let inspected = unknown.len() as u64;
    let heads: Vec<(String, Known)> = stream::iter(unknown)
        .map(|key| async move { head(clients, dest, &key).await.map(|k| (key, k)) })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    known.extend(heads);
    Ok(SyncObserved {
        dest: dest.clone(),
        local,
        remote,
        known,
        inspected,
    })
}

async fn head(clients: &Clients, dest: &S3Url, key: &str) -> Result<Known, SyncError> {
    let h = clients
        .s3
        .head_object()
        .bucket(&dest.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| super::classify("HeadObject", &format!("{}/{key}", dest.bucket), e))?;
    Ok(Known {
        sha256: h
            .metadata()
            .and_then(|m| m.get(SHA_META))
            .cloned()
            .unwrap_or_default(),
        etag: h.e_tag().unwrap_or_default().to_string(),
        headers: Headers {
            cache_control: h.cache_control().map(str::to_string),
            content_type: h.content_type().unwrap_or_default().to_string(),
        },
    })
}

/// Lists the prefix and reads the state object, concurrently.
pub async fn fetch(clients: &Clients, dest: &S3Url) -> Result<RemoteView, SyncError> {
    let state_key = dest.key(STATE_NAME);
    let (objects, state) = tokio::join!(
        list_all(clients, dest),
        load_state(clients, dest, &state_key)
    );
    let objects = objects?;
    // A state object missing from the listing was deleted between the calls.
    let state = if objects.contains_key(&state_key) {
        state?
    } else {
        State::default()
    };
    Ok(RemoteView { objects, state })
}

/// Every object under the destination's prefix, by key.
pub(crate) async fn list_all(
    clients: &Clients,
    dest: &S3Url,
) -> Result<HashMap<String, Remote>, SyncError> {
    let mut remote = HashMap::new();
    let mut pages = clients
        .s3
        .list_objects_v2()
        .bucket(&dest.bucket)
        .prefix(&dest.prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| super::classify("ListObjectsV2", &dest.bucket, e))?;
        for o in page.contents() {
            if let Some(key) = o.key() {
                remote.insert(
                    key.to_string(),
                    Remote {
                        size: o.size().unwrap_or(0).max(0) as u64,
                        etag: o.e_tag().unwrap_or_default().to_string(),
                    },
                );
            }
        }
    }
    Ok(remote)
}

/// How many times a GET whose body breaks off mid-stream is sent again (the
/// SDK retries failed requests, not bodies cut while being read).
const BODY_ATTEMPTS: u32 = 3;

/// Reads a small object whole; `None` when there is no such key.
pub(crate) async fn read_object(
    clients: &Clients,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, SyncError> {
    read_range(clients, bucket, key, None).await
}

/// Reads an object, or the bytes `start..end` of it, whole; `None` when there
/// is no such key. A body cut short is read again.
pub(crate) async fn read_range(
    clients: &Clients,
    bucket: &str,
    key: &str,
    range: Option<(u64, u64)>,
) -> Result<Option<Vec<u8>>, SyncError> {
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
            Err(e) => return Err(super::classify("GetObject", &target, e)),
        };
        match out.body.collect().await {
            Ok(bytes) => return Ok(Some(bytes.into_bytes().to_vec())),
            Err(e) if attempt < BODY_ATTEMPTS => {
                tracing::info!("reading s3://{target} broke off ({e}); reading it again");
                attempt += 1;
            }
            Err(e) => {
                return Err(SyncError::Aws(AwsFailure::Interrupted {
                    operation: "GetObject",
                    target,
                    detail: format!("{e}, {BODY_ATTEMPTS} times"),
                }))
            }
        }
    }
}

async fn load_state(clients: &Clients, dest: &S3Url, key: &str) -> Result<State, SyncError> {
    let Some(bytes) = read_object(clients, &dest.bucket, key).await? else {
        return Ok(State::default());
    };
    match serde_json::from_slice::<State>(&bytes) {
        Ok(s) if s.version == STATE_VERSION => Ok(s),
        _ => {
            tracing::warn!(
                "ignoring unreadable sync state s3://{}/{key}; objects will be inspected",
                dest.bucket
            );
            Ok(State::default())
        }
    }
}

/// Writes the state object (after the work it records).
pub async fn save_state(clients: &Clients, dest: &S3Url, state: &State) -> Result<(), SyncError> {
    write_record(clients, &dest.bucket, &dest.key(STATE_NAME), state).await
}

/// Writes one of artifact's own JSON records (never cached), the pair of
/// [`read_object`].
pub(crate) async fn write_record<T: Serialize>(
    clients: &Clients,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), SyncError> {
    let body = serde_json::to_vec(value).map_err(|e| SyncError::Io {
        path: key.into(),
        source: std::io::Error::other(e),
    })?;
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .cache_control("no-store")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| super::classify("PutObject", &format!("{bucket}/{key}"), e))?;
    Ok(())
}
