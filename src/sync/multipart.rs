//! Large files go up in parts, each part with a SHA-256 S3 verifies: the
//! parts are hashed in one read of the file (which must still hash to what the
//! scan saw), then sent four at a time, and the upload is completed with every
//! part's checksum. An upload that fails is aborted; unfinished uploads of the
//! same key that an earlier run left are aborted first.

use std::io::Read;
use std::path::Path;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::local::LocalFile;
use super::{classify, SyncError, SyncRequest, SHA_META};
use crate::aws::Clients;
use crate::model::S3Url;
use crate::util::hex;

/// Each part's SHA-256 and the whole file's, from one sequential read.
pub(crate) fn part_checksums(
    path: &Path,
    size: u64,
    part_size: u64,
) -> std::io::Result<(Vec<[u8; 32]>, [u8; 32])> {
    let mut file = std::fs::File::open(path)?;
    let mut whole = Sha256::new();
    let mut parts = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let mut part = Sha256::new();
        let mut in_part = part_size.min(left);
        left -= in_part;
        while in_part > 0 {
            let want = usize::try_from(in_part.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was read",
                ));
            }
            part.update(&buf[..n]);
            whole.update(&buf[..n]);
            in_part -= n as u64;
        }
        parts.push(part.finalize().into());
    }
    Ok((parts, whole.finalize().into()))
}

/// A SHA-256 as S3 takes it in checksum headers: base64.
pub(super) fn b64(sha: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha)
}

/// Uploads `f` to `key` in parts; the object's ETag.
pub(super) async fn upload(
    clients: &Clients,
    req: &SyncRequest,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
) -> Result<String, SyncError> {
    let s3 = &clients.s3;
    let target = format!("{}/{key}", dest.bucket);
    let part_size = req.settings.part_size.max(1);
    let (path, size) = (f.path.clone(), f.size);
    let (checksums, whole) =
        tokio::task::spawn_blocking(move || part_checksums(&path, size, part_size))
            .await
            .map_err(|e| SyncError::io(&f.path, std::io::Error::other(e)))?
            .map_err(|e| SyncError::io(&f.path, e))?;
    if whole != f.sha256 {
        return Err(SyncError::io(
            &f.path,
            std::io::Error::other("the file changed while it was being synced; run sync again"),
        ));
    }
    abort_stale_uploads(clients, dest, key).await?;
    let created = s3
        .create_multipart_upload()
        .bucket(&dest.bucket)
        .key(key)
        .content_type(&f.headers.content_type)
        .set_cache_control(f.headers.cache_control.clone())
        .metadata(SHA_META, hex(&f.sha256))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .map_err(|e| classify("CreateMultipartUpload", &target, e))?;
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    let parts = match upload_parts(clients, dest, f, key, &upload_id, part_size, &checksums).await {
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

/// How old an unfinished multipart upload under the destination must be
/// before a sync that uploads there aborts it: no upload of a running sync
/// lasts a day, and S3 bills the parts of abandoned ones until they go.
pub(crate) const ABANDONED_AFTER_SECS: i64 = 24 * 3600;

/// The unfinished uploads `(key, upload id, initiated, seconds since epoch)`
/// old enough to count as abandoned at `now`.
pub(crate) fn abandoned(uploads: &[(String, String, i64)], now: i64) -> Vec<(String, String)> {
    uploads
        .iter()
        .filter(|(_, _, initiated)| now.saturating_sub(*initiated) > ABANDONED_AFTER_SECS)
        .map(|(k, id, _)| (k.clone(), id.clone()))
        .collect()
}

/// Aborts the unfinished multipart uploads under the destination that are
/// over a day old, whatever their key (a killed run's upload of a file since
/// deleted is never uploaded again, so it is not aborted by
/// [`abort_stale_uploads`]). Best effort: a failure is logged and the sync
/// goes on. One listing page (up to 1,000 uploads) per sync that uploads.
pub(super) async fn abort_abandoned(clients: &Clients, dest: &S3Url) {
    let listed = clients
        .s3
        .list_multipart_uploads()
        .bucket(&dest.bucket)
        .prefix(&dest.prefix)
        .send()
        .await;
    let listed = match listed {
        Ok(l) => l,
        Err(e) => {
            let f = classify("ListMultipartUploads", &dest.bucket, e);
            tracing::warn!("could not list unfinished uploads: {f}");
            return;
        }
    };
    let uploads: Vec<(String, String, i64)> = listed
        .uploads()
        .iter()
        .filter_map(|u| {
            Some((
                u.key()?.to_string(),
                u.upload_id()?.to_string(),
                u.initiated()?.secs(),
            ))
        })
        .collect();
    let now = i64::try_from(crate::util::unix_now()).unwrap_or(i64::MAX);
    for (key, id) in abandoned(&uploads, now) {
        tracing::info!(
            "aborting an upload of s3://{}/{key} abandoned over a day ago",
            dest.bucket
        );
        let aborted = clients
            .s3
            .abort_multipart_upload()
            .bucket(&dest.bucket)
            .key(&key)
            .upload_id(&id)
            .send()
            .await;
        if let Err(e) = aborted {
            let f = classify("AbortMultipartUpload", &format!("{}/{key}", dest.bucket), e);
            tracing::warn!("could not abort an abandoned upload: {f}");
        }
    }
}

/// Aborts multipart uploads of `key` that an earlier run started and never
/// finished (it was killed, or lost its connection): S3 bills their parts until
/// they are aborted. Called before this run starts its own upload of the key.
async fn abort_stale_uploads(clients: &Clients, dest: &S3Url, key: &str) -> Result<(), SyncError> {
    let target = format!("{}/{key}", dest.bucket);
    let listed = clients
        .s3
        .list_multipart_uploads()
        .bucket(&dest.bucket)
        .prefix(key)
        .send()
        .await
        .map_err(|e| classify("ListMultipartUploads", &target, e))?;
    for u in listed.uploads() {
        let (Some(k), Some(id)) = (u.key(), u.upload_id()) else {
            continue;
        };
        if k != key {
            continue;
        }
        tracing::info!("aborting an unfinished upload of s3://{target} left by an earlier run");
        clients
            .s3
            .abort_multipart_upload()
            .bucket(&dest.bucket)
            .key(k)
            .upload_id(id)
            .send()
            .await
            .map_err(|e| classify("AbortMultipartUpload", &target, e))?;
    }
    Ok(())
}

async fn upload_parts(
    clients: &Clients,
    dest: &S3Url,
    f: &LocalFile,
    key: &str,
    upload_id: &str,
    part_size: u64,
    checksums: &[[u8; 32]],
) -> Result<Vec<CompletedPart>, SyncError> {
    let target = format!("{}/{key}", dest.bucket);
    stream::iter(checksums.iter().enumerate())
        .map(|(i, sha)| {
            let target = &target;
            async move {
                let offset = i as u64 * part_size;
                let len = part_size.min(f.size - offset);
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let body = ByteStream::read_from()
                    .path(&f.path)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(|e| SyncError::io(&f.path, std::io::Error::other(e)))?;
                let out = clients
                    .s3
                    .upload_part()
                    .bucket(&dest.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                    .checksum_sha256(b64(sha))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| classify("UploadPart", target, e))?;
                Ok(CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .checksum_sha256(b64(sha))
                    .build())
            }
        })
        .buffered(4)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uploads_over_a_day_old_count_as_abandoned() {
        let now = 1_800_000_000;
        let uploads = vec![
            (
                "old.bin".to_string(),
                "a".to_string(),
                now - ABANDONED_AFTER_SECS - 1,
            ),
            ("running.bin".to_string(), "b".to_string(), now - 600),
            (
                "edge.bin".to_string(),
                "c".to_string(),
                now - ABANDONED_AFTER_SECS,
            ),
            // A clock ahead of ours: not abandoned.
            ("future.bin".to_string(), "d".to_string(), now + 60),
        ];
        assert_eq!(
            abandoned(&uploads, now),
            [("old.bin".to_string(), "a".to_string())]
        );
    }

    #[test]
    fn parts_are_hashed_on_their_boundaries_and_the_whole_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let (parts, whole) = part_checksums(&path, data.len() as u64, 1_000_000).unwrap();
        assert_eq!(parts.len(), 3);
        let want: Vec<[u8; 32]> = data
            .chunks(1_000_000)
            .map(|c| Sha256::digest(c).into())
            .collect();
        assert_eq!(parts, want);
        assert_eq!(whole, <[u8; 32]>::from(Sha256::digest(&data)));
        // A file that shrank since it was scanned is an error, not short parts.
        std::fs::write(&path, &data[..10]).unwrap();
        assert!(part_checksums(&path, data.len() as u64, 1_000_000).is_err());
    }
}
