//! Content hashes of input files, with a stat index so that an unchanged file
//! is not even read.
//!
//! The index maps a file's path to (size, mtime, ctime, inode, device) and the
//! BLAKE3 hash seen for them. An entry whose mtime is too close to the moment
//! the index was written is not trusted (the file may have changed again within
//! the clock's granularity), so it is hashed again, as git does for "racily
//! clean" files. A fresh checkout changes every mtime, so there every file is
//! read once; the compressed-content cache still saves the compression.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::inputs::SourceFile;
use super::PackError;
pub use crate::util::hex;

/// A BLAKE3 content hash.
pub(super) type Hash = [u8; 32];

/// Entries this close (in ns) to the index's write time are hashed again.
const RACY_WINDOW_NS: i128 = 2_000_000_000;
const INDEX_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    device: u64,
}

impl Stat {
    fn of(f: &SourceFile) -> Stat {
        Stat {
            size: f.size,
            mtime_ns: f.mtime_ns,
            ctime_ns: f.ctime_ns,
            inode: f.inode,
            device: f.device,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    stat: Stat,
    hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    written_ns: i128,
    entries: HashMap<PathBuf, IndexEntry>,
}

/// The stat index, loaded from (and saved to) the cache folder.
#[derive(Debug, Default)]
pub struct StatIndex {
    path: Option<PathBuf>,
    old: IndexFile,
}

/// What hashing found.
pub struct Hashed {
    /// One hash per [`SourceFile`], same order.
    pub hashes: Vec<Hash>,
    /// How many files had to be read (the rest came from the stat index).
    pub read: usize,
}

impl StatIndex {
    /// Loads the index at `path`; a missing or unreadable index is an empty one.
    pub fn load(path: Option<PathBuf>) -> StatIndex {
        let old = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<IndexFile>(&b).ok())
            .filter(|i| i.version == INDEX_VERSION)
            .unwrap_or_default();
        StatIndex { path, old }
    }

    fn lookup(&self, f: &SourceFile) -> Option<Hash> {
        let e = self.old.entries.get(&f.path)?;
        if e.stat != Stat::of(f) || f.mtime_ns >= self.old.written_ns - RACY_WINDOW_NS {
            return None;
        }
        let mut h = [0u8; 32];
        decode_hex(&e.hash, &mut h)?;
        Some(h)
    }

    /// Hashes every file, in parallel, reading only those the index cannot vouch for.
    pub fn hash_all(&self, files: &[SourceFile]) -> Result<Hashed, PackError> {
        let results: Vec<Result<(Hash, bool), PackError>> = files
            .par_iter()
            .map(|f| match self.lookup(f) {
                Some(h) => Ok((h, false)),
                None => hash_file(&f.path, &f.display).map(|h| (h, true)),
            })
            .collect();
        let mut hashes = Vec::with_capacity(files.len());
        let mut read = 0;
        for r in results {
            let (h, was_read) = r?;
            read += was_read as usize;
            hashes.push(h);
        }
        Ok(Hashed { hashes, read })
    }

    /// Saves the index for `files` (only those, so deleted files drop out),
    /// unless it would say what it already says.
    pub fn save_if_changed(&self, files: &[SourceFile], hashed: &Hashed) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if hashed.read == 0 && files.len() == self.old.entries.len() {
            return Ok(());
        }
        let hashes = &hashed.hashes;
        let entries = files
            .iter()
            .zip(hashes)
            .map(|(f, h)| {
                (
                    f.path.clone(),
                    IndexEntry {
                        stat: Stat::of(f),
                        hash: hex(h),
                    },
                )
            })
            .collect();
        let index = IndexFile {
            version: INDEX_VERSION,
            written_ns: now_ns(),
            entries,
        };
        let bytes = serde_json::to_vec(&index).map_err(std::io::Error::other)?;
        crate::util::write_atomic(path, &bytes)
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
        .unwrap_or(0)
}

/// Reads and hashes one file.
pub(super) fn hash_file(path: &Path, display: &str) -> Result<Hash, PackError> {
    let read_err = |e| PackError::Read {
        path: display.to_string(),
        source: e,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(*hasher.finalize().as_bytes())
}

fn decode_hex(s: &str, out: &mut [u8]) -> Option<()> {
    if s.len() != out.len() * 2 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h: Hash = *blake3::hash(b"x").as_bytes();
        let mut back = [0u8; 32];
        decode_hex(&hex(&h), &mut back).unwrap();
        assert_eq!(back, h);
        assert!(decode_hex("zz", &mut [0u8; 1]).is_none());
    }
}
