//! The folder listings of the last walk, so that a warm pack does not read
//! folders that did not change.
//!
//! A folder's modification time changes whenever an entry is added, removed
//! or renamed in it, so a folder whose stat (mtime, ctime, inode, device) is
//! the one recorded still holds the entries recorded: the walk then stats the
//! folder once instead of opening and reading it. As with the stat index, a
//! folder changed within two seconds of the moment the listings were written
//! is read again (its change may fall in the same clock tick), as git does for
//! its untracked cache. Files are still stat'ed one by one: the listing tells
//! only names and which are folders, never contents.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"ARTLIST1";
/// Folders changed this close (in ns) to the listings' write time are read again.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub name: String,
    /// A folder (not a symlink to one): walked without a stat. Every other
    /// entry is stat'ed, which tells what it is.
    pub is_dir: bool,
    pub ino: u64,
}

/// A folder's stat, as far as its listing depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DirStat {
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

impl DirStat {
    pub(super) fn of(m: &std::fs::Metadata) -> DirStat {
        let (mtime_ns, ctime_ns) = crate::util::mtime_ctime_ns(m);
        DirStat {
            mtime_ns,
            ctime_ns,
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// One folder as the walk found it, entries in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Folder {
    pub path: PathBuf,
    pub stat: DirStat,
    /// Shared with the recorded listing when the folder was not read again.
    pub entries: Arc<[Entry]>,
}

/// The listings from the last walk, loaded from (and saved to) the cache folder.
#[derive(Debug, Default)]
pub struct Listings {
    path: Option<PathBuf>,
    written_ns: i128,
    folders: HashMap<PathBuf, (DirStat, Arc<[Entry]>)>,
}

impl Listings {
    /// Loads the listings at `path`; missing or damaged ones are empty.
    pub(super) fn load(path: Option<PathBuf>) -> Listings {
        let decoded = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| decode(&b));
        let (written_ns, folders) = decoded.unwrap_or_default();
        Listings {
            path,
            written_ns,
            folders,
        }
    }

    /// The recorded entries of `dir`, if its stat is unchanged and not racy.
    pub(super) fn get(&self, dir: &Path, stat: &DirStat) -> Option<Arc<[Entry]>> {
        let (old, entries) = self.folders.get(dir)?;
        let settled = self.written_ns - RACY_WINDOW_NS;
        (old == stat && stat.mtime_ns < settled && stat.ctime_ns < settled).then(|| entries.clone())
    }

    /// How many folders were recorded.
    pub(super) fn len(&self) -> usize {
        self.folders.len()
    }

    /// Saves `folders` (the walk's, in any order) as of now.
    pub(super) fn save(&self, folders: &[Folder]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        crate::util::write_atomic(path, &encode(folders, crate::util::now_ns()))
    }
}

fn encode(folders: &[Folder], written_ns: i128) -> Vec<u8> {
    let mut sorted: Vec<&Folder> = folders.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    sorted.dedup_by(|a, b| a.path == b.path);
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&written_ns.to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for f in sorted {
        let p = f.path.as_os_str().as_encoded_bytes();
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(&f.stat.mtime_ns.to_le_bytes());
        out.extend_from_slice(&f.stat.ctime_ns.to_le_bytes());
        out.extend_from_slice(&f.stat.ino.to_le_bytes());
        out.extend_from_slice(&f.stat.dev.to_le_bytes());
        out.extend_from_slice(&(f.entries.len() as u32).to_le_bytes());
        for e in f.entries.iter() {
            // Names longer than a u16 do not exist on Linux (255 bytes at most).
            let n = e.name.as_bytes();
            out.extend_from_slice(&(n.len().min(u16::MAX as usize) as u16).to_le_bytes());
            out.extend_from_slice(&n[..n.len().min(u16::MAX as usize)]);
            out.push(u8::from(e.is_dir));
            out.extend_from_slice(&e.ino.to_le_bytes());
        }
    }
    out
}

/// A bounds-checked reader over the encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

type Decoded = (i128, HashMap<PathBuf, (DirStat, Arc<[Entry]>)>);

fn decode(bytes: &[u8]) -> Option<Decoded> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let written_ns = r.i128()?;
    let count = r.u32()?;
    let mut folders = HashMap::new();
    for _ in 0..count {
        let len = r.u32()? as usize;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(r.take(len)?));
        let stat = DirStat {
            mtime_ns: r.i128()?,
            ctime_ns: r.i128()?,
            ino: r.u64()?,
            dev: r.u64()?,
        };
        let n = r.u32()? as usize;
        let mut entries = Vec::with_capacity(n.min(bytes.len()));
        for _ in 0..n {
            let len = usize::from(r.u16()?);
            let name = std::str::from_utf8(r.take(len)?).ok()?.to_string();
            let is_dir = match r.take(1)?[0] {
                0 => false,
                1 => true,
                _ => return None,
            };
            entries.push(Entry {
                name,
                is_dir,
                ino: r.u64()?,
            });
        }
        folders.insert(path, (stat, entries.into()));
    }
    r.0.is_empty().then_some((written_ns, folders))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(path: &str, mtime_ns: i128) -> Folder {
        Folder {
            path: PathBuf::from(path),
            stat: DirStat {
                mtime_ns,
                ctime_ns: mtime_ns,
                ino: 5,
                dev: 1,
            },
            entries: vec![
                Entry {
                    name: "a.py".into(),
                    is_dir: false,
                    ino: 7,
                },
                Entry {
                    name: "sub".into(),
                    is_dir: true,
                    ino: 8,
                },
            ]
            .into(),
        }
    }

    fn loaded(bytes: &[u8]) -> Listings {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, bytes).unwrap();
        Listings::load(Some(p))
    }

    #[test]
    fn an_unchanged_settled_folder_gives_its_entries() {
        let t = 10_000_000_000_000i128;
        let f = folder("/p/pkg", t);
        let l = loaded(&encode(std::slice::from_ref(&f), t + 5_000_000_000));
        assert_eq!(l.get(&f.path, &f.stat), Some(f.entries.clone()));
        let mut touched = f.stat;
        touched.mtime_ns += 1;
        assert_eq!(l.get(&f.path, &touched), None);
        assert_eq!(l.get(Path::new("/p/other"), &f.stat), None);
    }

    #[test]
    fn a_folder_changed_just_before_the_listing_was_written_is_read_again() {
        let t = 10_000_000_000_000i128;
        let f = folder("/p/pkg", t);
        let l = loaded(&encode(std::slice::from_ref(&f), t + 1_000_000_000));
        assert_eq!(l.get(&f.path, &f.stat), None);
    }

    #[test]
    fn damaged_listings_are_empty() {
        let t = 10_000_000_000_000i128;
        let bytes = encode(&[folder("/p/a", t), folder("/p/b", t)], t * 2);
        for cut in [0, 8, 30, bytes.len() - 1] {
            assert_eq!(loaded(&bytes[..cut]).len(), 0, "cut at {cut}");
        }
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 9] = 9; // neither a file nor a folder
        assert_eq!(loaded(&bad).len(), 0);
        assert_eq!(loaded(&bytes).len(), 2);
    }
}
