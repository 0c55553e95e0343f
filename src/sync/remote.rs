//! The remote side of a sync, read only: the prefix's listing, the state
//! object sync keeps beside the files, and a HEAD of each object the state
//! cannot vouch for. Nothing here writes, except [`save_state`], which apply
//! calls once the work it records is done.

use std::collections::{BTreeMap, HashMap};

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::error::{classify, SyncError};
use super::local::LocalFile;
use super::rules::Headers;
use crate::aws::s3::{read_object, write_record};
use crate::aws::Clients;
use crate::model::S3Url;

/// The state object's name, under the synced prefix.
pub const STATE_NAME: &str = ".artifact-sync.json";
/// User metadata holding an object's SHA-256 (hex).
pub const SHA_META: &str = "artifact-sha256";
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
        .map_err(|e| classify("HeadObject", &format!("{}/{key}", dest.bucket), e))?;
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
        let page = page.map_err(|e| classify("ListObjectsV2", &dest.bucket, e))?;
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
    Ok(write_record(clients, &dest.bucket, &dest.key(STATE_NAME), state).await?)
}
