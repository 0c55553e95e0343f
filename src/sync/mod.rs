//! `artifact sync`: a local folder to an S3 prefix, deciding by content.
//!
//! Planning lists the prefix (one LIST per 1,000 keys) and reads a small state
//! object that sync keeps beside the files (`.artifact-sync.json`: each key's
//! SHA-256, headers and the ETag S3 gave it). An object whose listed ETag and
//! size match the state is known without a HEAD; one that does not (changed
//! behind our back, or never synced by artifact) is inspected with a HEAD,
//! whose `x-amz-meta-artifact-sha256` says what it holds. Then each file is
//! unchanged, uploaded (bytes differ or the object is missing) or has its
//! headers replaced in place (same bytes, other Cache-Control or Content-Type).
//! mtimes never matter, so a fresh checkout uploads nothing, and multipart or
//! KMS ETags (not MD5s) cause no re-upload.
//!
//! Applying uploads everything but entry points (HTML, no-cache files) first,
//! then the entry points, then deletes (with `--delete`, sorted, capped by
//! `--max-delete`), then writes the new state. An interrupted sync converges
//! on the next run: what it uploaded is found by HEAD and not sent again.

pub mod local;
pub mod rules;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use base64::Engine as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::Clients;
use crate::config::SyncSettings;
use crate::names;
use crate::pack::hex;
use local::LocalFile;
use rules::{Headers, Rules};

/// The state object's name, under the synced prefix.
pub const STATE_NAME: &str = ".artifact-sync.json";
/// User metadata holding an object's SHA-256 (hex).
pub const SHA_META: &str = "artifact-sha256";
const STATE_VERSION: u32 = 1;

/// What can go wrong in a sync, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{url:?} is not an S3 URL: {problem}")]
    BadUrl { url: String, problem: String },
    #[error("{} is not a folder", path.display())]
    MissingDir { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: file name is not valid UTF-8, so it cannot be an S3 key", path.display())]
    NonUtf8 { path: PathBuf },
    #[error("{} is a symlink to {}, outside the synced folder", path.display(), target.display())]
    LinkOutside { path: PathBuf, target: PathBuf },
    #[error("{} is not a regular file, folder or symlink", path.display())]
    NotAFile { path: PathBuf },
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("no AWS credentials were found: {message}")]
    NoCredentials { message: String },
    #[error("could not reach the S3 endpoint: {message}")]
    Unreachable { message: String },
    #[error("access denied for {operation} on {target}: {message}")]
    AccessDenied {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error("{operation} failed for {target}: {message}")]
    Aws {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error("refusing to delete {count} objects from s3://{bucket}/{prefix}: more than --max-delete {max}; nothing was deleted (uploads were applied)")]
    TooManyDeletes {
        bucket: String,
        prefix: String,
        count: usize,
        max: usize,
    },
}

impl SyncError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SyncError {
        SyncError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SyncError::BadUrl { .. } => "write the destination as s3://bucket or s3://bucket/prefix".into(),
            SyncError::MissingDir { .. } => "build the folder first (e.g. npm run build), or fix the path".into(),
            SyncError::NonUtf8 { .. } => "rename the file to a UTF-8 name".into(),
            SyncError::LinkOutside { .. } => "copy the target into the folder, or remove the link".into(),
            SyncError::NotAFile { .. } => "remove it from the folder".into(),
            SyncError::NoSuchBucket { .. } => "create the bucket (deploy-infra's stack does), or fix the bucket name and --region".into(),
            SyncError::NoCredentials { .. } => "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is attached (CodeBuild provides one)".into(),
            SyncError::Unreachable { .. } => "check --endpoint-url / AWS_ENDPOINT_URL, --region and the network".into(),
            SyncError::AccessDenied { .. } => "grant the role s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket".into(),
            SyncError::TooManyDeletes { .. } => "check that the folder is complete; raise --max-delete if so many deletes are intended".into(),
            SyncError::Io { .. } | SyncError::Aws { .. } => return None,
        })
    }
}

/// Turns an SDK error into one that says what to do.
pub(crate) fn classify<E>(operation: &'static str, target: &str, err: SdkError<E>) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let full = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
    let code = err.code().map(str::to_string);
    let message = err
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| full.clone());
    if full.contains("no credentials")
        || full.contains("credentials provider")
        || full.contains("the credential provider was not enabled")
    {
        return SyncError::NoCredentials { message: full };
    }
    match (&err, code.as_deref()) {
        (_, Some("NoSuchBucket")) => SyncError::NoSuchBucket {
            bucket: target.split('/').next().unwrap_or(target).to_string(),
        },
        (_, Some("AccessDenied")) | (_, Some("Forbidden")) => SyncError::AccessDenied {
            operation,
            target: target.to_string(),
            message,
        },
        (SdkError::DispatchFailure(_), _) | (SdkError::TimeoutError(_), _) => {
            SyncError::Unreachable { message: full }
        }
        _ => SyncError::Aws {
            operation,
            target: target.to_string(),
            message: if code.is_some() {
                format!("{}: {message}", code.unwrap_or_default())
            } else {
                full
            },
        },
    }
}

/// `s3://bucket[/prefix]`. The prefix is empty or ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    pub fn parse(url: &str) -> Result<S3Url, SyncError> {
        let bad = |problem: &str| SyncError::BadUrl {
            url: url.to_string(),
            problem: problem.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        names::check_bucket_name(bucket).map_err(|e| bad(&e.problem))?;
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix has an empty, `.` or `..` part"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// One sync to run.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub dir: PathBuf,
    pub dest: S3Url,
    pub settings: SyncSettings,
    pub delete: bool,
    pub max_delete: Option<usize>,
    pub dry_run: bool,
    /// Show a progress bar (only when stderr is a terminal and output is for people).
    pub progress: bool,
    /// Keys never deleted, even with `delete` (e.g. assets of recent deployments).
    pub keep: std::collections::HashSet<String>,
}

/// What the state object says of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateEntry {
    sha256: String,
    size: u64,
    etag: String,
    #[serde(flatten)]
    headers: Headers,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    version: u32,
    objects: BTreeMap<String, StateEntry>,
}

/// What a sync does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Upload,
    UpdateHeaders,
    Delete,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    pub key: String,
    /// Why: "new", "changed", "headers", "not local".
    pub reason: String,
    pub bytes: u64,
    /// The object's Cache-Control: the new one for uploads and header
    /// updates, the last one synced for deletes (when known).
    pub cache_control: Option<String>,
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub files: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// The outcome of a sync (or its plan, with `--dry-run`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncReport {
    pub destination: String,
    pub dry_run: bool,
    pub uploaded: Count,
    pub headers_updated: Count,
    pub unchanged: Count,
    pub deleted: Count,
    /// Objects whose state was unknown and had to be inspected with HEAD.
    pub inspected: u64,
    /// Remote objects not present locally and left alone (no `--delete`).
    pub extra_remote: u64,
    /// Changes in the order they are (or would be) applied.
    pub actions: Vec<Action>,
    /// Requests sent, by operation.
    pub requests: BTreeMap<String, u64>,
}

struct Remote {
    size: u64,
    etag: String,
}

/// What is known of a remote object's content and headers.
#[derive(Clone)]
struct Known {
    sha256: String,
    etag: String,
    headers: Headers,
}

/// Scans, plans and (unless `dry_run`) applies one sync.
pub async fn run(clients: &Clients, req: &SyncRequest) -> Result<SyncReport, SyncError> {
    let before = clients.requests.snapshot();
    let rules = Rules::new(&req.settings.rules);
    let dir = req.dir.clone();
    // The local scan and the remote listing overlap: neither needs the other.
    let scan = tokio::task::spawn_blocking(move || local::scan(&dir, &rules));
    let (local, remote) = tokio::join!(scan, fetch_remote(clients, &req.dest));
    let local = local.expect("scan task")?;
    apply_plan(clients, req, &local, remote?, before).await
}

/// Syncs an already scanned list of files.
pub async fn sync_files(
    clients: &Clients,
    req: &SyncRequest,
    local: &[LocalFile],
) -> Result<SyncReport, SyncError> {
    let before = clients.requests.snapshot();
    let remote = fetch_remote(clients, &req.dest).await?;
    apply_plan(clients, req, local, remote, before).await
}

/// What the prefix holds, and what the state object says of it.
struct RemoteView {
    objects: HashMap<String, Remote>,
    state: State,
}

/// Lists the prefix and reads the state object, concurrently.
async fn fetch_remote(clients: &Clients, dest: &S3Url) -> Result<RemoteView, SyncError> {
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

async fn list_all(clients: &Clients, dest: &S3Url) -> Result<HashMap<String, Remote>, SyncError> {
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

async fn apply_plan(
    clients: &Clients,
    req: &SyncRequest,
    local: &[LocalFile],
    remote: RemoteView,
    before: BTreeMap<String, u64>,
) -> Result<SyncReport, SyncError> {
    let s3 = &clients.s3;
    let dest = &req.dest;
    let state_key = dest.key(STATE_NAME);
    let RemoteView {
        objects: remote,
        state: old_state,
    } = remote;

    // Which remote objects does the state vouch for, and which need a HEAD?
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut unknown: Vec<String> = Vec::new();
    for f in local {
        let key = dest.key(&f.rel);
        let Some(r) = remote.get(&key) else { continue };
        match old_state.objects.get(&f.rel) {
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
    let inspected = unknown.len() as u64;
    let heads: Vec<(String, Known)> = stream::iter(unknown)
        .map(|key| async move {
            let h = s3
                .head_object()
                .bucket(&dest.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| classify("HeadObject", &format!("{}/{key}", dest.bucket), e))?;
            let k = Known {
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
            };
            Ok::<_, SyncError>((key, k))
        })
        .buffer_unordered(req.settings.concurrency)
        .try_collect()
        .await?;
    known.extend(heads);

    let mut report = SyncReport {
        destination: dest.to_string(),
        dry_run: req.dry_run,
        inspected,
        ..SyncReport::default()
    };
    let mut first = Vec::new();
    let mut last = Vec::new();
    let mut new_state = State {
        version: STATE_VERSION,
        objects: BTreeMap::new(),
    };
    let by_rel: HashMap<&str, &LocalFile> = local.iter().map(|f| (f.rel.as_str(), f)).collect();
    for f in local {
        let key = dest.key(&f.rel);
        let sha = hex(&f.sha256);
        let action = match (remote.contains_key(&key), known.get(&key)) {
            (false, _) => Some("new"),
            (true, Some(k)) if k.sha256 != sha => Some("changed"),
            (true, Some(k)) if k.headers != f.headers => Some("headers"),
            (true, Some(k)) => {
                report.unchanged.add(f.size);
                new_state.objects.insert(
                    f.rel.clone(),
                    StateEntry {
                        sha256: sha,
                        size: f.size,
                        etag: k.etag.clone(),
                        headers: f.headers.clone(),
                    },
                );
                None
            }
            (true, None) => Some("changed"),
        };
        if let Some(reason) = action {
            let kind = if reason == "headers" {
                ActionKind::UpdateHeaders
            } else {
                ActionKind::Upload
            };
            let a = Action {
                kind,
                key,
                reason: reason.to_string(),
                bytes: f.size,
                cache_control: f.headers.cache_control.clone(),
            };
            if f.headers.is_entry_point(&f.rel) {
                last.push(a);
            } else {
                first.push(a);
            }
        }
    }
    let local_keys: std::collections::HashSet<String> =
        local.iter().map(|f| dest.key(&f.rel)).collect();
    let mut deletes: Vec<String> = remote
        .keys()
        .filter(|k| **k != state_key && !local_keys.contains(*k) && !req.keep.contains(*k))
        .cloned()
        .collect();
    deletes.sort();
    if !req.delete {
        report.extra_remote = deletes.len() as u64;
        deletes.clear();
    }
    let too_many = req
        .max_delete
        .filter(|max| deletes.len() > *max)
        .map(|max| (deletes.len(), max));

    report.actions.extend(first.iter().cloned());
    report.actions.extend(last.iter().cloned());
    if too_many.is_none() {
        report.actions.extend(deletes.iter().map(|k| {
            Action {
                kind: ActionKind::Delete,
                key: k.clone(),
                reason: "not local".into(),
                bytes: remote.get(k).map(|r| r.size).unwrap_or(0),
                cache_control: k
                    .strip_prefix(&dest.prefix)
                    .and_then(|rel| old_state.objects.get(rel))
                    .and_then(|e| e.headers.cache_control.clone()),
            }
        }));
    }
    if req.dry_run {
        for a in &report.actions {
            match a.kind {
                ActionKind::Upload => report.uploaded.add(a.bytes),
                ActionKind::UpdateHeaders => report.headers_updated.add(a.bytes),
                ActionKind::Delete => report.deleted.add(a.bytes),
            }
        }
        report.requests = clients.requests.since(&before);
        if let Some((count, max)) = too_many {
            return Err(SyncError::TooManyDeletes {
                bucket: dest.bucket.clone(),
                prefix: dest.prefix.clone(),
                count,
                max,
            });
        }
        return Ok(report);
    }

    // ---- apply ----
    let progress = Progress::new(
        req.progress,
        (first.len() + last.len() + deletes.len()) as u64,
    );
    let mut result = Ok(());
    let mut deleted_keys: std::collections::HashSet<String> = Default::default();
    for phase in [&first, &last] {
        let done: Vec<Result<(String, String), SyncError>> = stream::iter(phase.iter())
            .map(|a| {
                let f = by_rel[&a.key[dest.prefix.len()..]];
                let progress = &progress;
                async move {
                    let etag = match a.kind {
                        ActionKind::Upload => upload(clients, req, dest, f, &a.key).await?,
                        _ => update_headers(clients, dest, f, &a.key).await?,
                    };
                    progress.step(&a.key);
                    Ok((a.key.clone(), etag))
                }
            })
            .buffer_unordered(req.settings.concurrency)
            .collect()
            .await;
        for r in done {
            match r {
                Ok((key, etag)) => {
                    let f = by_rel[&key[dest.prefix.len()..]];
                    let a = phase.iter().find(|a| a.key == key).expect("planned");
                    if a.kind == ActionKind::Upload {
                        report.uploaded.add(f.size);
                    } else {
                        report.headers_updated.add(f.size);
                    }
                    new_state.objects.insert(
                        f.rel.clone(),
                        StateEntry {
                            sha256: hex(&f.sha256),
                            size: f.size,
                            etag,
                            headers: f.headers.clone(),
                        },
                    );
                }
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        if result.is_err() {
            // Entry points must not go up before every asset they need is there.
            break;
        }
    }
    if result.is_ok() {
        if let Some((count, max)) = too_many {
            result = Err(SyncError::TooManyDeletes {
                bucket: dest.bucket.clone(),
                prefix: dest.prefix.clone(),
                count,
                max,
            });
        } else {
            for chunk in deletes.chunks(1000) {
                match delete_keys(clients, dest, chunk).await {
                    Ok(()) => {
                        for k in chunk {
                            deleted_keys.insert(k.clone());
                            report
                                .deleted
                                .add(remote.get(k).map(|r| r.size).unwrap_or(0));
                            progress.step(k);
                        }
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
    }
    progress.finish();
    // Record what is now known, even after a failure: the next run starts from it.
    // Objects not synced this time (a failed upload, a remote-only object that was
    // kept) keep their old entry while the listing still shows the same object.
    for (rel, entry) in &old_state.objects {
        let key = dest.key(rel);
        if new_state.objects.contains_key(rel) || deleted_keys.contains(&key) {
            continue;
        }
        if remote.get(&key).is_some_and(|r| r.etag == entry.etag) {
            new_state.objects.insert(rel.clone(), entry.clone());
        }
    }
    if new_state != old_state {
        save_state(clients, dest, &state_key, &new_state).await?;
    }
    report.requests = clients.requests.since(&before);
    result.map(|()| report)
}

async fn load_state(clients: &Clients, dest: &S3Url, key: &str) -> Result<State, SyncError> {
    let target = format!("{}/{key}", dest.bucket);
    let out = match clients
        .s3
        .get_object()
        .bucket(&dest.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if e.code() == Some("NoSuchKey") => return Ok(State::default()),
        Err(e) => return Err(classify("GetObject", &target, e)),
    };
    let bytes = out.body.collect().await.map_err(|e| SyncError::Aws {
        operation: "GetObject",
        target: target.clone(),
        message: e.to_string(),
    })?;
    match serde_json::from_slice::<State>(&bytes.into_bytes()) {
        Ok(s) if s.version == STATE_VERSION => Ok(s),
        _ => {
            tracing::warn!(
                "ignoring unreadable sync state s3://{target}; objects will be inspected"
            );
            Ok(State::default())
        }
    }
}

async fn save_state(
    clients: &Clients,
    dest: &S3Url,
    key: &str,
    state: &State,
) -> Result<(), SyncError> {
    let body = serde_json::to_vec(state).expect("state serialises");
    clients
        .s3
        .put_object()
        .bucket(&dest.bucket)
        .key(key)
        .content_type("application/json")
        .cache_control("no-store")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| classify("PutObject", &format!("{}/{key}", dest.bucket), e))?;
    Ok(())
}

async fn upload(
    clients: &Clients,
    req: &SyncRequest,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<String, SyncError> {
    if f.size >= req.settings.multipart_threshold {
        return upload_multipart(clients, req, dest, f, key).await;
    }
    let body = ByteStream::from_path(&f.path)
        .await
        .map_err(|e| SyncError::io(&f.path, std::io::Error::other(e)))?;
    let out = clients
        .s3
        .put_object()
        .bucket(&dest.bucket)
        .key(key)
        .body(body)
        .content_length(f.size as i64)
        .content_type(&f.headers.content_type)
        .set_cache_control(f.headers.cache_control.clone())
        .metadata(SHA_META, hex(&f.sha256))
        .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(f.sha256))
        .send()
        .await
        .map_err(|e| classify("PutObject", &format!("{}/{key}", dest.bucket), e))?;
    Ok(out.e_tag().unwrap_or_default().to_string())
}

async fn upload_multipart(
    clients: &Clients,
    req: &SyncRequest,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<String, SyncError> {
    let s3 = &clients.s3;
    let target = format!("{}/{key}", dest.bucket);
    let created = s3
        .create_multipart_upload()
        .bucket(&dest.bucket)
        .key(key)
        .content_type(&f.headers.content_type)
        .set_cache_control(f.headers.cache_control.clone())
        .metadata(SHA_META, hex(&f.sha256))
        .send()
        .await
        .map_err(|e| classify("CreateMultipartUpload", &target, e))?;
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    let part_size = req.settings.part_size;
    let parts = f.size.div_ceil(part_size).max(1);
    let result: Result<Vec<CompletedPart>, SyncError> = stream::iter(0..parts)
        .map(|i| {
            let upload_id = &upload_id;
            let target = &target;
            async move {
                let offset = i * part_size;
                let len = part_size.min(f.size - offset);
                let body = ByteStream::read_from()
                    .path(&f.path)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(|e| SyncError::io(&f.path, std::io::Error::other(e)))?;
                let out = s3
                    .upload_part()
                    .bucket(&dest.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(i as i32 + 1)
                    .content_length(len as i64)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| classify("UploadPart", target, e))?;
                Ok(CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build())
            }
        })
        .buffered(4)
        .try_collect()
        .await;
    let parts = match result {
        Ok(p) => p,
        Err(e) => {
            // Leave no orphaned parts behind (they are billed).
            let _ = s3
                .abort_multipart_upload()
                .bucket(&dest.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            return Err(e);
        }
    };
    let done = s3
        .complete_multipart_upload()
        .bucket(&dest.bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("CompleteMultipartUpload", &target, e))?;
    Ok(done.e_tag().unwrap_or_default().to_string())
}

/// Replaces an object's headers in place (a copy onto itself): no bytes re-sent.
async fn update_headers(
    clients: &Clients,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<String, SyncError> {
    let out = clients
        .s3
        .copy_object()
        .bucket(&dest.bucket)
        .key(key)
        .copy_source(format!("{}/{}", dest.bucket, percent_encode(key)))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type(&f.headers.content_type)
        .set_cache_control(f.headers.cache_control.clone())
        .metadata(SHA_META, hex(&f.sha256))
        .send()
        .await
        .map_err(|e| classify("CopyObject", &format!("{}/{key}", dest.bucket), e))?;
    Ok(out
        .copy_object_result()
        .and_then(|r| r.e_tag())
        .unwrap_or_default()
        .to_string())
}

async fn delete_keys(clients: &Clients, dest: &S3Url, keys: &[String]) -> Result<(), SyncError> {
    let objects = keys
        .iter()
        .map(|k| {
            ObjectIdentifier::builder()
                .key(k)
                .build()
                .expect("key is set")
        })
        .collect();
    let out = clients
        .s3
        .delete_objects()
        .bucket(&dest.bucket)
        .delete(
            Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("objects are set"),
        )
        .send()
        .await
        .map_err(|e| classify("DeleteObjects", &dest.bucket, e))?;
    if let Some(e) = out.errors().first() {
        return Err(SyncError::Aws {
            operation: "DeleteObjects",
            target: format!("{}/{}", dest.bucket, e.key().unwrap_or_default()),
            message: format!(
                "{}: {}",
                e.code().unwrap_or_default(),
                e.message().unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// Percent-encodes a key for `x-amz-copy-source` (all but unreserved characters and `/`).
fn percent_encode(key: &str) -> String {
    let mut s = String::with_capacity(key.len() * 3);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A progress bar on stderr when asked for, silent otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
}

impl Progress {
    fn new(show: bool, total: u64) -> Progress {
        let bar = (show && total > 0).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                    .expect("template"),
            );
            b
        });
        Progress {
            bar,
            done: AtomicU64::new(0),
        }
    }

    fn step(&self, key: &str) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_message(key.to_string());
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        let u = S3Url::parse("s3://my-bucket").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("my-bucket", ""));
        let u = S3Url::parse("s3://my-bucket/site/v1/").unwrap();
        assert_eq!(u.prefix, "site/v1/");
        assert_eq!(u.key("a b.js"), "site/v1/a b.js");
        for bad in [
            "my-bucket",
            "s3://",
            "s3:///x",
            "s3://Bad_Bucket/x",
            "s3://b-1/a/../x",
            "http://b/x",
        ] {
            let e = S3Url::parse(bad).unwrap_err();
            assert!(matches!(e, SyncError::BadUrl { .. }), "{bad}: {e}");
            assert!(e.hint().is_some());
        }
    }

    #[test]
    fn copy_source_encoding() {
        assert_eq!(
            percent_encode("a b/c+d%#é.js"),
            "a%20b/c%2Bd%25%23%C3%A9.js"
        );
    }
}
