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

use rayon::prelude::*;

use crate::scan::{Scanned, Scanner};

use super::inputs::SourceFile;
use super::PackError;
use crate::util::now_ns;

/// A BLAKE3 content hash.
pub(super) type Hash = [u8; 32];

/// Entries this close (in ns) to the index's write time are hashed again.
const RACY_WINDOW_NS: i128 = 2_000_000_000;
const MAGIC: &[u8; 8] = b"ARTSIDX2";
/// Magic, written time (i128), record count (u32).
const HEAD: usize = 8 + 16 + 4;
/// Path offset and length (u32 each), size, mtime, ctime (i64 ns), inode, device, hash.
const RECORD: usize = 4 + 4 + 8 + 8 + 8 + 8 + 8 + 32;

/// The stat index, loaded from (and saved to) the cache folder.
///
/// On disk it is a header, a table of fixed-size records sorted by path, and
/// the paths' bytes after it: a lookup is a binary search in the bytes as
/// read, with nothing parsed into owned paths.
#[derive(Debug, Default)]
pub struct StatIndex {
    path: Option<PathBuf>,
    bytes: Vec<u8>,
    written_ns: i128,
    count: usize,
}

/// What hashing found.
pub struct Hashed {
    /// One hash per [`SourceFile`], same order.
    pub hashes: Vec<Hash>,
    /// How many files had to be read (the rest came from the stat index).
    pub read: usize,
}

/// The stat fields an index record keeps, as stored.
fn stat_fields(f: &SourceFile) -> Option<[u64; 5]> {
    Some([
        f.size,
        i64::try_from(f.mtime_ns).ok()? as u64,
        i64::try_from(f.ctime_ns).ok()? as u64,
        f.inode,
        f.device,
    ])
}

fn u32_at(b: &[u8], i: usize) -> usize {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default()) as usize
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default())
}

impl StatIndex {
    /// Loads the index at `path`; a missing, damaged or older index is an empty one.
    pub fn load(path: Option<PathBuf>) -> StatIndex {
        let bytes = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .unwrap_or_default();
        let mut index = StatIndex {
            path,
            ..StatIndex::default()
        };
        if bytes.len() < HEAD || &bytes[..8] != MAGIC {
            return index;
        }
        let written_ns = i128::from_le_bytes(bytes[8..24].try_into().unwrap_or_default());
        let count = u32_at(&bytes, 24);
        let heap = count.checked_mul(RECORD).and_then(|n| n.checked_add(HEAD));
        if heap.is_none_or(|h| h > bytes.len()) {
            return index;
        }
        index.bytes = bytes;
        index.written_ns = written_ns;
        index.count = count;
        index
    }

    fn record(&self, i: usize) -> &[u8] {
        &self.bytes[HEAD + i * RECORD..HEAD + (i + 1) * RECORD]
    }

    /// The path of record `i`; empty if it points outside the file.
    fn path_of(&self, i: usize) -> &[u8] {
        let r = self.record(i);
        let (off, len) = (u32_at(r, 0), u32_at(r, 4));
        off.checked_add(len)
            .and_then(|end| self.bytes.get(off..end))
            .unwrap_or_default()
    }

    fn lookup(&self, f: &SourceFile) -> Option<Hash> {
        let key = f.path.as_os_str().as_encoded_bytes();
        let mut lo = 0;
        let mut hi = self.count;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path_of(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let r = self.record(mid);
                    let stored: [u64; 5] = std::array::from_fn(|k| u64_at(r, 8 + 8 * k));
                    if Some(stored) != stat_fields(f)
                        || f.mtime_ns >= self.written_ns - RACY_WINDOW_NS
                    {
                        return None;
                    }
                    return r[48..80].try_into().ok();
                }
            }
        }
        None
    }

    /// Hashes every file, in parallel, reading only those the index cannot
    /// vouch for. With a scanner, each file read is also scanned for secrets
    /// while its bytes are in memory; the scans are returned by content hash.
    pub fn hash_all(
        &self,
        files: &[SourceFile],
        scanner: Option<&Scanner>,
    ) -> Result<(Hashed, HashMap<Hash, Scanned>), PackError> {
        type One = (Hash, bool, Option<Scanned>);
        let results: Vec<Result<One, PackError>> = files
            .par_iter()
            .map(|f| match (self.lookup(f), scanner) {
                (Some(h), _) => Ok((h, false, None)),
                (None, None) => hash_file(&f.path, &f.display).map(|h| (h, true, None)),
                (None, Some(scanner)) => {
                    let bytes = std::fs::read(&f.path).map_err(|e| PackError::Read {
                        path: f.display.clone(),
                        source: e,
                    })?;
                    let h = *blake3::hash(&bytes).as_bytes();
                    Ok((h, true, scanner.inspect(&f.display, &h, &bytes)))
                }
            })
            .collect();
        let mut hashes = Vec::with_capacity(files.len());
        let mut scanned = HashMap::new();
        let mut read = 0;
        for r in results {
            let (h, was_read, scan) = r?;
            read += was_read as usize;
            hashes.push(h);
            if let Some(s) = scan {
                scanned.insert(h, s);
            }
        }
        Ok((Hashed { hashes, read }, scanned))
    }

    /// Saves the index for `files` (only those, so deleted files drop out),
    /// unless it would say what it already says.
    /// Saves the records of `files` (the first `files.len()` hashes are theirs).
    pub fn save_if_changed(&self, files: &[SourceFile], hashed: &Hashed) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if hashed.read == 0 && files.len() == self.count {
            return Ok(());
        }
        let hashes = &hashed.hashes[..files.len().min(hashed.hashes.len())];
        crate::util::write_atomic(path, &encode(files, hashes, now_ns()))
    }
}

/// The index's bytes for `files` and their `hashes`, as of `written_ns`.
fn encode(files: &[SourceFile], hashes: &[Hash], written_ns: i128) -> Vec<u8> {
    let mut order: Vec<(usize, [u64; 5])> = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((i, stat_fields(f)?)))
        .collect();
    order.sort_by(|a, b| {
        let key = |i: usize| files[i].path.as_os_str().as_encoded_bytes();
        key(a.0).cmp(key(b.0))
    });
    order.dedup_by(|a, b| files[a.0].path == files[b.0].path);
    let paths: usize = order
        .iter()
        .map(|(i, _)| files[*i].path.as_os_str().len())
        .sum();
    if HEAD + order.len() * RECORD + paths > u32::MAX as usize {
        // Far beyond any Lambda function: no index rather than a wrong one.
        order.clear();
    }
    let mut heap_at = HEAD + order.len() * RECORD;
    let mut table = Vec::with_capacity(heap_at);
    table.extend_from_slice(MAGIC);
    table.extend_from_slice(&written_ns.to_le_bytes());
    table.extend_from_slice(&(order.len() as u32).to_le_bytes());
    let mut heap = Vec::new();
    for (i, stat) in &order {
        let p = files[*i].path.as_os_str().as_encoded_bytes();
        table.extend_from_slice(&(heap_at as u32).to_le_bytes());
        table.extend_from_slice(&(p.len() as u32).to_le_bytes());
        for v in stat {
            table.extend_from_slice(&v.to_le_bytes());
        }
        table.extend_from_slice(&hashes[*i]);
        heap.extend_from_slice(p);
        heap_at += p.len();
    }
    table.extend_from_slice(&heap);
    table
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, mtime_ns: i128) -> SourceFile {
        SourceFile {
            path: PathBuf::from(path),
            display: path.to_string(),
            size: 10,
            mtime_ns,
            ctime_ns: mtime_ns,
            inode: 7,
            device: 1,
            executable: false,
        }
    }

    fn index_of(files: &[SourceFile], hashes: &[Hash], written_ns: i128) -> StatIndex {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        std::fs::write(&path, encode(files, hashes, written_ns)).unwrap();
        StatIndex::load(Some(path))
    }

    #[test]
    fn the_index_vouches_for_unchanged_files_only() {
        let old = 1_000_000_000_000i128;
        let files = [
            file("/p/b.py", old),
            file("/p/a.py", old),
            file("/p/c", old),
        ];
        let hashes: Vec<Hash> = (0..3u8).map(|i| [i; 32]).collect();
        let index = index_of(&files, &hashes, old + 10_000_000_000);
        for (f, h) in files.iter().zip(&hashes) {
            assert_eq!(index.lookup(f), Some(*h), "{}", f.display);
        }
        let mut touched = files[0].clone();
        touched.mtime_ns += 1;
        assert_eq!(index.lookup(&touched), None);
        let mut grown = files[1].clone();
        grown.size += 1;
        assert_eq!(index.lookup(&grown), None);
        assert_eq!(index.lookup(&file("/p/new.py", old)), None);
    }

    #[test]
    fn racily_clean_entries_are_hashed_again() {
        let t = 5_000_000_000_000i128;
        let files = [file("/p/a.py", t - 1_000_000_000)];
        let index = index_of(&files, &[[9; 32]], t);
        assert_eq!(index.lookup(&files[0]), None);
    }

    #[test]
    fn a_damaged_index_is_an_empty_one() {
        let old = 1_000_000_000_000i128;
        let files = [file("/p/a.py", old), file("/p/b.py", old)];
        let bytes = encode(&files, &[[1; 32], [2; 32]], old * 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        for cut in [0, 5, HEAD + RECORD + 3] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let index = StatIndex::load(Some(path.clone()));
            assert_eq!(index.count, 0, "cut at {cut}");
        }
        // Paths cut off at the end: a lookup may miss, never give another file's hash.
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let index = StatIndex::load(Some(path));
        let found = index.lookup(&files[0]);
        assert!(found.is_none() || found == Some([1; 32]));
        assert_eq!(index.lookup(&files[1]), None);
    }
}
