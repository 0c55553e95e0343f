//! A cache that builders share, in S3 (`pack.cache_url`, `--cache-url`).
//!
//! It holds packs in the local cache's format, under `<prefix>packs/`:
//! `<id>.pack` and `<id>.idx`. Before compressing, a pack reads every index
//! (small), finds the contents it misses, and fetches them from the packs in
//! a few large ranged reads, not one request per file; each content is checked
//! against its record's checksum. After the pack, the contents it compressed
//! are uploaded as one new pack, index last. It is only a cache: a failed
//! request, a missing or damaged object costs a recompression and a warning,
//! never the pack.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use super::store::{parse_index, Key, NewPack, Record};
use super::zipfile::Blob;
use crate::aws::s3::read_range;
use crate::aws::{self, AwsArgs, Clients};
use crate::model::S3Url;

/// Ranges closer than this are read in one request.
const GAP: u64 = 1 << 20;
/// No ranged read is longer than this.
const MAX_RANGE: u64 = 32 << 20;
/// Indexes larger than this are skipped.
const MAX_INDEX: i64 = 64 << 20;
/// Requests in flight at once.
const PARALLEL: usize = 8;
/// Attempts per request to the shared cache (a deploy makes more: it is only a cache).
const CACHE_ATTEMPTS: u32 = 3;
/// The longest one request to the shared cache may take, retries included:
/// a silent cache costs a build seconds, then it packs with the local cache.
const CACHE_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The shared cache, with the clients to reach it.
pub struct RemoteCache {
    runtime: tokio::runtime::Runtime,
    clients: Clients,
    url: S3Url,
    /// Set when listing the cache failed: the run does not try to publish either.
    failed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCache({})", self.url)
    }
}

/// What a fetch found, and what it cost.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    pub blobs: HashMap<Key, Blob>,
    pub requests: usize,
    pub bytes: u64,
    pub warnings: Vec<String>,
    /// Contents refused because their bytes are not the hash they are filed under.
    pub planted: usize,
}

/// One ranged read: a span of one pack and the records inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RangeRead {
    pub pack: String,
    pub start: u64,
    /// Exclusive.
    pub end: u64,
    pub records: Vec<Record>,
}

/// Groups the wanted records by pack and merges neighbours into ranges:
/// records less than `GAP` apart share a read, up to `MAX_RANGE` bytes.
pub(super) fn plan_reads(mut wanted: Vec<(String, Record)>) -> Vec<RangeRead> {
    wanted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.offset.cmp(&b.1.offset)));
    let mut reads: Vec<RangeRead> = Vec::new();
    for (pack, r) in wanted {
        let Some(end) = r.offset.checked_add(r.compressed) else {
            continue;
        };
        if let Some(last) = reads.last_mut() {
            let joins = last.pack == pack
                && r.offset <= last.end.saturating_add(GAP)
                && end.saturating_sub(last.start) <= MAX_RANGE;
            if joins {
                last.end = last.end.max(end);
                last.records.push(r);
                continue;
            }
        }
        reads.push(RangeRead {
            pack,
            start: r.offset,
            end,
            records: vec![r],
        });
    }
    reads
}

impl RemoteCache {
    /// Loads the AWS configuration for the cache at `url`.
    pub fn connect(args: &AwsArgs, url: &S3Url) -> anyhow::Result<RemoteCache> {
        let url = url.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        // A cache should not hold a build up: fewer attempts than a deploy makes.
        let args = AwsArgs {
            max_attempts: Some(
                args.max_attempts
                    .unwrap_or(CACHE_ATTEMPTS)
                    .min(CACHE_ATTEMPTS),
            ),
            operation_timeout: Some(CACHE_OPERATION_TIMEOUT),
            ..args.clone()
        };
        let clients = runtime.block_on(aws::Clients::load(&args))?;
        Ok(RemoteCache {
            runtime,
            clients,
            url,
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Where the cache is, for messages.
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    fn key(&self, name: &str) -> String {
        self.url.key(&format!("packs/{name}"))
    }

    /// Fetches what the shared cache holds of `wanted`.
    pub(super) fn fetch(&self, wanted: &[Key]) -> Fetched {
        self.runtime.block_on(self.fetch_async(wanted))
    }

    async fn fetch_async(&self, wanted: &[Key]) -> Fetched {
        let mut done = Fetched::default();
        let ids = match self.list_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                self.failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                done.warnings.push(format!(
                    "shared cache {}: {e}; not using it in this run",
                    self.url
                ));
                return done;
            }
        };
        done.requests += 1;
        let wanted: std::collections::HashSet<&Key> = wanted.iter().collect();
        let indexes: Vec<(String, Result<Vec<u8>, String>)> = stream::iter(ids)
            .map(|id| async move {
                let r = self.get(&format!("{id}.idx"), None).await;
                (id, r)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut found: HashMap<Key, (String, Record)> = HashMap::new();
        let mut sorted = indexes;
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, r) in sorted {
            done.requests += 1;
            match r {
                Ok(bytes) => {
                    for (key, rec) in parse_index(&bytes) {
                        if wanted.contains(&key) {
                            found.entry(key).or_insert((id.clone(), rec));
                        }
                    }
                }
                Err(e) => done.warnings.push(format!("shared cache index {id}: {e}")),
            }
        }
        let reads = plan_reads(found.into_values().collect());
        let results: Vec<(RangeRead, Result<Vec<u8>, String>)> = stream::iter(reads)
            .map(|read| async move {
                let r = self
                    .get(&format!("{}.pack", read.pack), Some((read.start, read.end)))
                    .await;
                (read, r)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (read, r) in results {
            done.requests += 1;
            match r {
                Ok(bytes) => {
                    done.bytes += bytes.len() as u64;
                    take_records(&read, Bytes::from(bytes), &mut done);
                }
                Err(e) => done
                    .warnings
                    .push(format!("shared cache pack {}: {e}", read.pack)),
            }
        }
        done
    }

    /// The ids of the packs that have an index.
    async fn list_ids(&self) -> Result<Vec<String>, String> {
        self.list_indexes(&self.key("")).await
    }

    /// Every `.pyc` index the shared cache holds (`<prefix>bytecode/<id>.idx`),
    /// with the requests it took; an unreachable cache is a warning.
    pub(super) fn bytecode_indexes(&self) -> (Vec<Vec<u8>>, usize, Vec<String>) {
        self.runtime.block_on(async {
            let prefix = self.url.key("bytecode/");
            let ids = match self.list_indexes(&prefix).await {
                Ok(ids) => ids,
                Err(e) => {
                    self.failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    let w = format!("shared cache {}: {e}; not using it in this run", self.url);
                    return (Vec::new(), 1, vec![w]);
                }
            };
            let got: Vec<Result<Vec<u8>, String>> = stream::iter(&ids)
                .map(|id| {
                    let key = format!("{prefix}{id}.idx");
                    async move { self.get_key(&key, None).await }
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let requests = 1 + got.len();
            let (ok, failed): (Vec<_>, Vec<_>) = got.into_iter().partition(Result::is_ok);
            let warnings = failed
                .into_iter()
                .filter_map(Result::err)
                .map(|e| format!("shared cache bytecode index: {e}"))
                .collect();
            (
                ok.into_iter().filter_map(Result::ok).collect(),
                requests,
                warnings,
            )
        })
    }

    /// Uploads one `.pyc` index; `Ok(false)` when the cache was found unreachable.
    pub(super) fn publish_bytecode(&self, index: Vec<u8>) -> Result<bool, String> {
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
        let id = crate::util::hex(&blake3::hash(&index).as_bytes()[..12]);
        let key = self.url.key(&format!("bytecode/{id}.idx"));
        self.runtime
            .block_on(self.put_key(key, index))
            .map(|()| true)
    }

    /// The ids of the `<id>.idx` objects right under `prefix`.
    async fn list_indexes(&self, prefix: &str) -> Result<Vec<String>, String> {
        let prefix = prefix.to_string();
        let mut ids = Vec::new();
        let mut pages = self
            .clients
            .s3
            .list_objects_v2()
            .bucket(&self.url.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                aws::classify("ListObjectsV2", &self.url.to_string(), &e).to_string()
            })?;
            for o in page.contents() {
                let name = o
                    .key()
                    .unwrap_or_default()
                    .strip_prefix(&prefix)
                    .unwrap_or_default();
                // An index that large is not one of ours (one for 65,535 contents is
                // under 6 MB): not worth the download.
                if o.size().unwrap_or(0) > MAX_INDEX {
                    continue;
                }
                if let Some(id) = name.strip_suffix(".idx") {
                    if !id.is_empty() && !id.contains('/') {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// One object of the cache, or a range of it, whole.
    async fn get(&self, name: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, String> {
        self.get_key(&self.key(name), range).await
    }

    /// One object at `key` (a whole key, not a pack's name), or a range of it.
    async fn get_key(&self, key: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, String> {
        match read_range(&self.clients, &self.url.bucket, key, range).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(format!("s3://{}/{key} is gone", self.url.bucket)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Uploads `pack` as one new pack of the shared cache, index last;
    /// `Ok(false)` when this run found the cache unreachable and did not try.
    pub(super) fn publish(&self, pack: &NewPack) -> Result<bool, String> {
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
        self.runtime.block_on(async {
            let id = pack.id();
            self.put(&format!("{id}.pack"), pack.pack_bytes()).await?;
            self.put(&format!("{id}.idx"), pack.index.clone()).await?;
            Ok(true)
        })
    }

    async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), String> {
        self.put_key(self.key(name), body).await
    }

    async fn put_key(&self, key: String, body: Vec<u8>) -> Result<(), String> {
        self.clients
            .s3
            .put_object()
            .bucket(&self.url.bucket)
            .key(&key)
            .content_type("application/octet-stream")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                aws::classify("PutObject", &format!("{}/{key}", self.url.bucket), &e).to_string()
            })?;
        Ok(())
    }
}

/// The checked contents of one ranged read: damaged ones are left out, and so
/// are planted ones (bytes other than the content hash they are filed under),
/// with a warning naming the pack.
fn take_records(read: &RangeRead, bytes: Bytes, done: &mut Fetched) {
    use rayon::prelude::*;
    let checked: Vec<(Key, Option<Blob>)> = read
        .records
        .par_iter()
        .filter_map(|r| {
            let start = r.offset - read.start;
            let end = start.saturating_add(r.compressed);
            if end > bytes.len() as u64 {
                return None;
            }
            let key = r.key()?;
            let blob = r.blob_of(bytes.slice(start as usize..end as usize))?;
            Some((key, super::blobs::holds(&blob, &key.0).then_some(blob)))
        })
        .collect();
    let mut planted = 0;
    for (key, blob) in checked {
        match blob {
            Some(blob) => {
                done.blobs.insert(key, blob);
            }
            None => planted += 1,
        }
    }
    if planted > 0 {
        done.warnings.push(format!(
            "shared cache pack {}.pack holds {planted} content(s) that do not match the hash they \
             are filed under (written by something other than artifact, or tampered with): not \
             used; those files were compressed afresh",
            read.pack
        ));
        done.planted += planted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64, compressed: u64) -> Record {
        Record {
            hash: [offset as u8; 32],
            codec: super::super::blobs::Codec { level: 6 }.id(),
            method: 8,
            crc32: 0,
            size: compressed * 2,
            offset,
            compressed,
            check: [0; 16],
        }
    }

    #[test]
    fn neighbours_share_a_read_and_far_ones_do_not() {
        let wanted = vec![
            ("b".to_string(), rec(10, 5)),
            ("a".to_string(), rec(GAP * 10, 100)),
            ("a".to_string(), rec(8, 2)),
            ("a".to_string(), rec(20, 30)),
        ];
        let reads = plan_reads(wanted);
        let spans: Vec<(&str, u64, u64, usize)> = reads
            .iter()
            .map(|r| (r.pack.as_str(), r.start, r.end, r.records.len()))
            .collect();
        assert_eq!(
            spans,
            [
                ("a", 8, 50, 2),
                ("a", GAP * 10, GAP * 10 + 100, 1),
                ("b", 10, 15, 1)
            ]
        );
    }

    #[test]
    fn a_read_stops_growing_at_the_size_cap() {
        let wanted = (0..5)
            .map(|i| ("p".to_string(), rec(i * (MAX_RANGE / 2), MAX_RANGE / 2)))
            .collect();
        let reads = plan_reads(wanted);
        assert!(reads.iter().all(|r| r.end - r.start <= MAX_RANGE));
        assert_eq!(reads.iter().map(|r| r.records.len()).sum::<usize>(), 5);
    }

    #[test]
    fn records_cut_off_or_damaged_in_a_read_are_left_out() {
        let data = Bytes::from_static(b"0123456789abcdef");
        let mut good = rec(100, 4);
        good.method = 0;
        good.size = 4;
        good.hash = *blake3::hash(b"4567").as_bytes();
        good.crc32 = crc32fast::hash(b"4567");
        good.check
            .copy_from_slice(&blake3::hash(b"4567").as_bytes()[..16]);
        let mut bad = good;
        bad.hash = [9; 32];
        bad.offset = 108;
        let mut past = good;
        past.hash = [7; 32];
        past.offset = 114;
        // Whole bytes with a matching checksum, filed under another content's hash.
        let mut planted = good;
        planted.hash = [5; 32];
        let read = RangeRead {
            pack: "p".into(),
            start: 96,
            end: 112,
            records: vec![good, bad, past, planted],
        };
        let mut done = Fetched::default();
        take_records(&read, data, &mut done);
        assert_eq!(done.blobs.len(), 1);
        assert_eq!(done.planted, 1);
        assert!(done.warnings[0].contains("p.pack"), "{:?}", done.warnings);
        assert_eq!(
            &done.blobs[&(good.hash, super::super::blobs::Codec { level: 6 })].data[..],
            b"4567"
        );
    }
}
