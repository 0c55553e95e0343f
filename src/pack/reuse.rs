//! Rebuilding a zip from the previous one.
//!
//! When one handler changes, its zip is rebuilt, but almost every entry in it
//! is byte-for-byte what the previous zip already holds. After writing a zip,
//! pack records in the cache where each entry's compressed bytes sit in it
//! (with the entry's content hash) and the zip's stat. The next rebuild reads
//! the previous zip in one go and slices the unchanged entries out of it,
//! instead of opening one cached blob per file. A zip whose stat no longer
//! matches its record (edited, replaced, touched) is not trusted, and the
//! cache (`store`) is used instead.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::blobs::Codec;
use super::hash::Hash;
use super::sha::Checkpoint;
use super::zipfile::Blob;
use crate::util::hex;

const MAGIC: &[u8; 8] = b"ARTZIDX2";
/// A hash checkpoint: offset and the eight state words.
const CHECKPOINT: usize = 8 + 32;
const HEAD: usize = 8 + 8 + 16 + 8 + 8 + 32 + 4;
const ENTRY: usize = 32 + 4 + 2 + 4 + 8 + 8 + 8;

/// One file entry of a written zip.
#[derive(Debug, Clone)]
pub(super) struct RecordEntry {
    pub hash: Hash,
    pub codec: Codec,
    pub method: u16,
    pub crc32: u32,
    pub size: u64,
    /// Where the entry's compressed bytes start in the zip.
    pub offset: u64,
    pub compressed: u64,
}

fn record_path(cache: &Path, zip: &Path) -> PathBuf {
    let key = blake3::hash(zip.as_os_str().as_encoded_bytes());
    cache
        .join("zips")
        .join(format!("{}.idx", &hex(key.as_bytes())[..16]))
}

fn stat_of(meta: &std::fs::Metadata) -> Stat {
    (
        meta.len(),
        crate::util::mtime_ctime_ns(meta).0,
        meta.ino(),
        meta.dev(),
    )
}

/// The previous version of a zip being rebuilt, as its record vouches for it.
#[derive(Default)]
pub(super) struct Previous {
    /// Its entries' compressed bytes, by content.
    pub blobs: HashMap<(Hash, Codec), Blob>,
    /// The whole zip (mapped) and its hash checkpoints, to resume its SHA-256.
    pub zip: Bytes,
    pub checkpoints: Vec<Checkpoint>,
}

/// Records the layout of the zip just written at `zip`, and the checkpoints
/// of its SHA-256.
pub(super) fn save(
    cache: &Path,
    zip: &Path,
    sha256: &[u8],
    entries: &[RecordEntry],
    checkpoints: &[Checkpoint],
) {
    let result = (|| -> std::io::Result<()> {
        let (size, mtime, ino, dev) = stat_of(&std::fs::metadata(zip)?);
        let mut b = Vec::with_capacity(HEAD + entries.len() * ENTRY);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&mtime.to_le_bytes());
        b.extend_from_slice(&ino.to_le_bytes());
        b.extend_from_slice(&dev.to_le_bytes());
        b.extend_from_slice(sha256);
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            b.extend_from_slice(&e.hash);
            b.extend_from_slice(&e.codec.id().to_le_bytes());
            b.extend_from_slice(&e.method.to_le_bytes());
            b.extend_from_slice(&e.crc32.to_le_bytes());
            b.extend_from_slice(&e.size.to_le_bytes());
            b.extend_from_slice(&e.offset.to_le_bytes());
            b.extend_from_slice(&e.compressed.to_le_bytes());
        }
        b.extend_from_slice(&(checkpoints.len() as u32).to_le_bytes());
        for c in checkpoints {
            b.extend_from_slice(&c.offset.to_le_bytes());
            for w in c.state {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        crate::util::write_atomic(&record_path(cache, zip), &b)
    })();
    if let Err(e) = result {
        tracing::warn!("could not record the layout of {}: {e}", zip.display());
    }
}

/// Whether the record still vouches for the zip at `zip` being the one the
/// manifest names (`sha256_hex`), from its stat alone.
pub(super) fn vouches(cache: &Path, zip: &Path, sha256_hex: &str) -> bool {
    (|| {
        use std::io::Read;
        let mut head = [0u8; HEAD];
        std::fs::File::open(record_path(cache, zip))
            .ok()?
            .read_exact(&mut head)
            .ok()?;
        let ((), stat, sha) = parse_head(&head)?;
        (sha == sha256_hex && stat_of(&std::fs::metadata(zip).ok()?) == stat).then_some(())
    })()
    .is_some()
}

type Stat = (u64, i128, u64, u64);

fn parse_head(rec: &[u8]) -> Option<((), Stat, String)> {
    if rec.len() < HEAD || &rec[..8] != MAGIC {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().unwrap());
    let stat = (
        u64_at(8),
        i128::from_le_bytes(rec[16..32].try_into().unwrap()),
        u64_at(32),
        u64_at(40),
    );
    Some(((), stat, hex(&rec[48..80])))
}

/// The compressed entries of the zip at `zip`, if its record still vouches
/// for it and it is the zip the manifest names (`sha256_hex`).
pub(super) fn load(cache: &Path, zip: &Path, sha256_hex: &str) -> Previous {
    load_checked(cache, zip, sha256_hex).unwrap_or_default()
}

/// The checkpoints after the entries (at `at`), if the record ends with them exactly.
fn parse_checkpoints(rec: &[u8], at: usize) -> Option<Vec<Checkpoint>> {
    let n = u32::from_le_bytes(rec.get(at..at + 4)?.try_into().ok()?) as usize;
    let body = rec.get(at + 4..)?;
    if body.len() != n.checked_mul(CHECKPOINT)? {
        return None;
    }
    Some(
        body.chunks_exact(CHECKPOINT)
            .map(|c| Checkpoint {
                offset: u64::from_le_bytes(c[..8].try_into().unwrap_or_default()),
                state: std::array::from_fn(|i| {
                    u32::from_le_bytes(c[8 + 4 * i..12 + 4 * i].try_into().unwrap_or_default())
                }),
            })
            .collect(),
    )
}

fn load_checked(cache: &Path, zip: &Path, sha256_hex: &str) -> Option<Previous> {
    let rec = std::fs::read(record_path(cache, zip)).ok()?;
    let ((), stat, sha) = parse_head(&rec)?;
    let size = stat.0;
    if sha != sha256_hex {
        return None;
    }
    let count = u32::from_le_bytes(rec[80..84].try_into().unwrap()) as usize;
    let checkpoints = parse_checkpoints(&rec, HEAD.checked_add(count.checked_mul(ENTRY)?)?)?;
    if stat_of(&std::fs::metadata(zip).ok()?) != stat {
        return None;
    }
    let file = std::fs::File::open(zip).ok()?;
    // SAFETY: the map is read-only and the zip lives in pack's own output
    // folder, whose files pack replaces by rename, never in place. A zip
    // rewritten in place by someone else mid-run could make this copy wrong,
    // as a read(2) racing with the same writer could; its changed stat is
    // caught on the next run, where the record no longer vouches for it.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.ok()?;
    let data = Bytes::from_owner(map);
    if data.len() as u64 != size {
        return None;
    }
    let mut out = HashMap::with_capacity(count);
    for i in 0..count {
        let e = &rec[HEAD + i * ENTRY..HEAD + (i + 1) * ENTRY];
        let hash: Hash = e[..32].try_into().unwrap();
        let codec = Codec::from_id(u32::from_le_bytes(e[32..36].try_into().unwrap()))?;
        let method = u16::from_le_bytes(e[36..38].try_into().unwrap());
        let crc32 = u32::from_le_bytes(e[38..42].try_into().unwrap());
        let usize_ = u64::from_le_bytes(e[42..50].try_into().unwrap());
        let offset = u64::from_le_bytes(e[50..58].try_into().unwrap());
        let compressed = u64::from_le_bytes(e[58..66].try_into().unwrap());
        let end = offset.checked_add(compressed)?;
        if end > size {
            return None;
        }
        out.insert(
            (hash, codec),
            Blob {
                method,
                crc32,
                size: usize_,
                data: data.slice(offset as usize..end as usize),
            },
        );
    }
    Some(Previous {
        blobs: out,
        zip: data,
        checkpoints,
    })
}
