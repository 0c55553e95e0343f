//! Applying a [`SyncPlan`]: exactly its uploads, header updates and deletes,
//! in its order, then the new state object. Nothing here decides anything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures_util::{stream, StreamExt};

use super::copies::Source;
use super::local::LocalFile;
use super::plan::{Action, ActionKind, Count, SyncPlan};
use super::remote::{self, State, StateEntry, SyncObserved, STATE_VERSION};
use super::{classify, SyncError, SyncRequest, SHA_META};
use crate::aws::{AwsFailure, Clients};
use crate::model::S3Url;
use crate::util::{hex, percent_encode_key};

/// What was done.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub uploaded: Count,
    pub headers_updated: Count,
    /// Of the uploads, those copied server-side from another bucket.
    pub copied: Count,
    pub deleted: Count,
}

/// Applies the plan. The counts say what was done even when it failed part way.
pub async fn apply(
    clients: &Clients,
    req: &SyncRequest,
    o: &SyncObserved,
    plan: &SyncPlan,
) -> (Applied, Result<(), SyncError>) {
    let dest = &o.dest;
    let total = plan.actions().count() as u64;
    let progress = Progress::new(req.progress, total);
    let by_rel: HashMap<&str, &LocalFile> = o.local.iter().map(|f| (f.rel.as_str(), f)).collect();
    let mut done = Applied::default();
    let mut new_state = State {
        version: STATE_VERSION,
        objects: plan.unchanged_state.clone(),
    };
    let mut result = Ok(());
    let uploads = plan.actions().any(|a| a.kind == ActionKind::Upload);
    if uploads {
        super::multipart::abort_abandoned(clients, dest).await;
    }
    for phase in [&plan.assets, &plan.entry_points] {
        let ctx = PhaseContext {
            clients,
            req,
            dest,
            by_rel: &by_rel,
            progress: &progress,
        };
        for r in run_phase(&ctx, phase).await {
            match r {
                Ok((a, f, etag, copied)) => {
                    match a.kind {
                        ActionKind::Upload => done.uploaded.add(f.size),
                        _ => done.headers_updated.add(f.size),
                    }
                    if copied {
                        done.copied.add(f.size);
                    }
                    new_state.objects.insert(f.rel.clone(), entry_of(f, etag));
                }
                Err(e) => result = result.and(Err(e)),
            }
        }
        if result.is_err() {
            // Entry points must not go up before every asset they need is there.
            break;
        }
    }
    let mut deleted: HashSet<&str> = HashSet::new();
    if result.is_ok() {
        result = match plan.too_many_deletes {
            Some(t) => Err(SyncError::TooManyDeletes {
                bucket: dest.bucket.clone(),
                prefix: dest.prefix.clone(),
                count: t.count,
                max: t.max,
            }),
            None => {
                delete_all(
                    clients,
                    dest,
                    &plan.deletes,
                    &progress,
                    &mut done,
                    &mut deleted,
                )
                .await
            }
        };
    }
    progress.finish();
    carry_old_entries(o, &deleted, &mut new_state);
    if new_state != o.remote.state {
        if let Err(e) = remote::save_state(clients, dest, &new_state).await {
            result = result.and(Err(e));
        }
    }
    (done, result)
}

/// Records what is now known, even after a failure: the next run starts from
/// it. Objects not synced this time (a failed upload, a remote-only object
/// that was kept) keep their old entry while the listing shows the same object.
fn carry_old_entries(o: &SyncObserved, deleted: &HashSet<&str>, new_state: &mut State) {
    for (rel, entry) in &o.remote.state.objects {
        let key = o.dest.key(rel);
        if new_state.objects.contains_key(rel) || deleted.contains(key.as_str()) {
            continue;
        }
        if o.remote
            .objects
            .get(&key)
            .is_some_and(|r| r.etag == entry.etag)
        {
            new_state.objects.insert(rel.clone(), entry.clone());
        }
    }
}

fn entry_of(f: &LocalFile, etag: String) -> StateEntry {
    StateEntry {
        sha256: hex(&f.sha256),
        size: f.size,
        etag,
        headers: f.headers.clone(),
    }
}

struct PhaseContext<'a> {
    clients: &'a Clients,
    req: &'a SyncRequest,
    dest: &'a S3Url,
    by_rel: &'a HashMap<&'a str, &'a LocalFile>,
    progress: &'a Progress,
}

/// An action done: its ETag, and whether it was a server-side copy.
type Done<'a> = Result<(&'a Action, &'a LocalFile, String, bool), SyncError>;

/// Uploads or re-heads every action of one phase, concurrently.
async fn run_phase<'a>(ctx: &PhaseContext<'a>, phase: &'a [Action]) -> Vec<Done<'a>> {
    stream::iter(phase.iter())
        .map(|a| async move {
            let f: &LocalFile = ctx.by_rel[&a.key[ctx.dest.prefix.len()..]];
            let (etag, copied) = match a.kind {
                ActionKind::Upload => upload(ctx.clients, ctx.req, ctx.dest, f, &a.key).await?,
                _ => (
                    update_headers(ctx.clients, ctx.dest, f, &a.key).await?,
                    false,
                ),
            };
            ctx.progress.step(&a.key);
            Ok((a, f, etag, copied))
        })
        .buffer_unordered(ctx.req.settings.concurrency.max(1))
        .collect()
        .await
}

async fn delete_all<'a>(
    clients: &Clients,
    dest: &S3Url,
    deletes: &'a [Action],
    progress: &Progress,
    done: &mut Applied,
    deleted: &mut HashSet<&'a str>,
) -> Result<(), SyncError> {
    for chunk in deletes.chunks(1000) {
        delete_keys(clients, dest, chunk).await?;
        for a in chunk {
            deleted.insert(a.key.as_str());
            done.deleted.add(a.bytes);
            progress.step(&a.key);
        }
    }
    Ok(())
}

/// One object up: copied from where this run already put its bytes when it
/// can be, sent otherwise. Its ETag, and whether it was copied.
async fn upload(
    clients: &Clients,
    req: &SyncRequest,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<(String, bool), SyncError> {
    let copies = req.copies.as_deref();
    if let Some(src) = copies.and_then(|c| c.source_for(&f.sha256, f.size, &dest.bucket)) {
        match copy_from(clients, &src, dest, f, key).await {
            Ok(etag) => return Ok((etag, true)),
            Err(e) => tracing::debug!(
                "copy of s3://{}/{} to s3://{}/{key} refused ({e}); uploading it",
                src.bucket,
                src.key,
                dest.bucket
            ),
        }
    }
    let etag = send(clients, req, dest, f, key).await?;
    if let Some(c) = copies {
        c.remember(
            f.sha256,
            Source {
                bucket: dest.bucket.clone(),
                key: key.to_string(),
                etag: etag.clone(),
            },
        );
    }
    Ok((etag, false))
}

async fn send(
    clients: &Clients,
    req: &SyncRequest,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<String, SyncError> {
    if f.size >= req.settings.multipart_threshold {
        return super::multipart::upload(clients, req, dest, f, key).await;
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
        .content_length(i64::try_from(f.size).unwrap_or(i64::MAX))
        .content_type(&f.headers.content_type)
        .set_cache_control(f.headers.cache_control.clone())
        .metadata(SHA_META, hex(&f.sha256))
        .checksum_sha256(super::multipart::b64(&f.sha256))
        .send()
        .await
        .map_err(|e| classify("PutObject", &format!("{}/{key}", dest.bucket), e))?;
    Ok(out.e_tag().unwrap_or_default().to_string())
}

/// A server-side copy of `src` (pinned to its ETag, so only the bytes this
/// run put there) to `key`, with the local file's headers and digest.
async fn copy_from(
    clients: &Clients,
    src: &Source,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<String, SyncError> {
    let out = clients
        .s3
        .copy_object()
        .bucket(&dest.bucket)
        .key(key)
        .copy_source(format!("{}/{}", src.bucket, percent_encode_key(&src.key)))
        .copy_source_if_match(&src.etag)
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type(&f.headers.content_type)
        .set_cache_control(f.headers.cache_control.clone())
        .metadata(SHA_META, hex(&f.sha256))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .map_err(|e| classify("CopyObject", &format!("{}/{key}", dest.bucket), e))?;
    let result = out.copy_object_result();
    let want = super::multipart::b64(&f.sha256);
    if let Some(got) = result.and_then(|r| r.checksum_sha256()) {
        if got != want {
            return Err(SyncError::io(
                &f.path,
                std::io::Error::other(format!(
                    "the copy of s3://{}/{} holds other bytes (SHA-256 {got}, not {want})",
                    src.bucket, src.key
                )),
            ));
        }
    }
    Ok(result
        .and_then(|r| r.e_tag())
        .unwrap_or_default()
        .to_string())
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
        .copy_source(format!("{}/{}", dest.bucket, percent_encode_key(key)))
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

/// One DeleteObjects request body for `keys` (at most 1,000), quiet.
pub(crate) fn delete_request<'a>(
    keys: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<Delete, SyncError> {
    let objects = keys
        .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
        .collect();
    Delete::builder()
        .set_objects(Some(objects))
        .quiet(true)
        .build()
        .map_err(|e| SyncError::Io {
            path: what.into(),
            source: std::io::Error::other(e),
        })
}

async fn delete_keys(clients: &Clients, dest: &S3Url, actions: &[Action]) -> Result<(), SyncError> {
    let delete = delete_request(actions.iter().map(|a| a.key.as_str()), &dest.to_string())?;
    let out = clients
        .s3
        .delete_objects()
        .bucket(&dest.bucket)
        .delete(delete)
        .send()
        .await
        .map_err(|e| classify("DeleteObjects", &dest.bucket, e))?;
    if let Some(e) = out.errors().first() {
        return Err(SyncError::Aws(AwsFailure::Service {
            operation: "DeleteObjects",
            target: format!("{}/{}", dest.bucket, e.key().unwrap_or_default()),
            status: 200,
            code: e.code().unwrap_or_default().to_string(),
            message: e.message().unwrap_or_default().to_string(),
        }));
    }
    Ok(())
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
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
            {
                b.set_style(style);
            }
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

/// Counts of a plan, as if applied (for `--dry-run`).
pub fn counts_of(plan: &SyncPlan) -> Applied {
    let mut a = Applied::default();
    for action in plan.actions() {
        match action.kind {
            ActionKind::Upload => a.uploaded.add(action.bytes),
            ActionKind::UpdateHeaders => a.headers_updated.add(action.bytes),
            ActionKind::Delete => a.deleted.add(action.bytes),
        }
    }
    a
}
