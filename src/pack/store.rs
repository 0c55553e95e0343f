//! The compressed-content cache: a few append-only pack files with an index
//! each, the way git packs objects.
//!
//! A pack (`packs/<id>.pack`) is the compressed bytes of many files, one after
//! another; its index (`packs/<id>.idx`) is a table of fixed-size records,
//! each naming a content (hash and compression level), where its bytes sit in
//! the pack, a checksum of those bytes and a checksum of the record itself.
//! A pack run adds at most one pack: written to temporary files, then
//! renamed into place, pack first and index last, so a reader sees a whole
//! pack or none. Packs are never changed in place,
//! so readers map them and take slices; two packs running at once each add
//! their own pack. Compaction (`--prune-cache`, or when packs pile up) holds
//! a lock file, writes one new pack and removes the ones it replaced.
//!
//! Damage costs a recompression, never a wrong zip: a record whose checksum
//! fails, that points past the end of its pack (a truncated pack) or whose
//! bytes no longer match their checksum is a miss; a truncated index loses
//! only its last, partial record.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::blobs::Codec;
use super::hash::Hash;
use super::zipfile::{Blob, DEFLATED, STORED};
use crate::util::hex;

pub(super) const PACK_MAGIC: &[u8; 8] = b"ARTPACK1";
pub(super) const IDX_MAGIC: &[u8; 8] = b"ARTPIDX1";
/// hash, level, method, crc32, size, offset, compressed length, data check, record check.
pub(super) const RECORD: usize = 32 + 4 + 2 + 4 + 8 + 8 + 8 + 16 + 4;
/// More packs than this are merged into one at the end of a pack run.
const COMPACT_AT: usize = 24;
/// A pack without an index this old was left by a run that died between its two renames.
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// A content's key: its hash and how it is compressed.
pub(super) type Key = (Hash, Codec);

/// Where one content sits in a pack, as its index record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub hash: Hash,
    /// The codec's id ([`Codec::id`]): its level and the deflate engine.
    pub codec: u32,
    pub method: u16,
    pub crc32: u32,
    pub size: u64,
    pub offset: u64,
    pub compressed: u64,
    /// The first 16 bytes of the BLAKE3 hash of the compressed bytes.
    pub check: [u8; 16],
}

impl Record {
    /// The content's key; `None` for a codec this version does not make
    /// (another deflate engine): such contents are never reused.
    pub(super) fn key(&self) -> Option<Key> {
        Some((self.hash, Codec::from_id(self.codec)?))
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.codec.to_le_bytes());
        out.extend_from_slice(&self.method.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.compressed.to_le_bytes());
        out.extend_from_slice(&self.check);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// A record from its bytes, if its own checksum holds.
    pub(super) fn decode(b: &[u8]) -> Option<Record> {
        if b.len() != RECORD {
            return None;
        }
        let (body, crc) = b.split_at(RECORD - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap_or([0; 8]));
        Some(Record {
            hash: body[..32].try_into().ok()?,
            codec: u32::from_le_bytes(body[32..36].try_into().ok()?),
            method: u16::from_le_bytes(body[36..38].try_into().ok()?),
            crc32: u32::from_le_bytes(body[38..42].try_into().ok()?),
            size: u64_at(42),
            offset: u64_at(50),
            compressed: u64_at(58),
            check: body[66..82].try_into().ok()?,
        })
    }

    /// The content's blob out of `pack`, if the bytes are there and still match.
    pub(super) fn blob_in(&self, pack: &Bytes) -> Option<Blob> {
        let end = self.offset.checked_add(self.compressed)?;
        if end > pack.len() as u64 || self.offset < PACK_MAGIC.len() as u64 {
            return None;
        }
        let data = pack.slice(self.offset as usize..end as usize);
        self.blob_of(data)
    }

    /// The blob made of `data`, if `data` are this record's bytes.
    pub(super) fn blob_of(&self, data: Bytes) -> Option<Blob> {
        let valid = match self.method {
            STORED => self.size == data.len() as u64,
            DEFLATED => true,
            _ => false,
        };
        if !valid || blake3::hash(&data).as_bytes()[..16] != self.check {
            return None;
        }
        Some(Blob {
            method: self.method,
            crc32: self.crc32,
            size: self.size,
            data,
        })
    }
}

/// The records of an index file's bytes, with their keys; damaged records,
/// and those of codecs this version does not make, are left out.
pub(super) fn parse_index(bytes: &[u8]) -> Vec<(Key, Record)> {
    if bytes.len() < IDX_MAGIC.len() || &bytes[..IDX_MAGIC.len()] != IDX_MAGIC {
        return Vec::new();
    }
    bytes[IDX_MAGIC.len()..]
        .chunks_exact(RECORD)
        .filter_map(Record::decode)
        .filter_map(|r| Some((r.key()?, r)))
        .collect()
}

/// A pack and its index, ready to be written: `pack` starts with the magic.
pub(super) struct NewPack {
    /// The pack's bytes: the magic, then the contents' own bytes, shared, not copied.
    pub segments: Vec<Bytes>,
    pub index: Vec<u8>,
    pub count: usize,
}

impl NewPack {
    /// Lays out `blobs` (sorted by key, duplicates dropped) as one pack.
    pub(super) fn build<'a>(blobs: impl IntoIterator<Item = (Key, &'a Blob)>) -> NewPack {
        let mut sorted: Vec<(Key, &Blob)> = blobs.into_iter().collect();
        sorted.sort_by_key(|a| a.0);
        sorted.dedup_by(|a, b| a.0 == b.0);
        let mut segments = Vec::with_capacity(sorted.len() + 1);
        segments.push(Bytes::from_static(PACK_MAGIC));
        let mut len = PACK_MAGIC.len() as u64;
        let mut index = Vec::with_capacity(IDX_MAGIC.len() + sorted.len() * RECORD);
        index.extend_from_slice(IDX_MAGIC);
        for ((hash, codec), blob) in &sorted {
            let offset = len;
            len += blob.data.len() as u64;
            segments.push(blob.data.clone());
            let mut check = [0u8; 16];
            check.copy_from_slice(&blake3::hash(&blob.data).as_bytes()[..16]);
            Record {
                hash: *hash,
                codec: codec.id(),
                method: blob.method,
                crc32: blob.crc32,
                size: blob.size,
                offset,
                compressed: blob.data.len() as u64,
                check,
            }
            .encode(&mut index);
        }
        NewPack {
            segments,
            index,
            count: sorted.len(),
        }
    }

    /// The pack's bytes in one buffer (for an upload).
    pub(super) fn pack_bytes(&self) -> Vec<u8> {
        super::zipfile::concat(&self.segments)
    }

    /// The pack's name: from its index, so equal packs get equal names.
    pub(super) fn id(&self) -> String {
        hex(&blake3::hash(&self.index).as_bytes()[..12])
    }

    /// Writes the pack into `dir`: both files to temporary names, then renamed
    /// pack first, index last. Nothing is flushed to disk: after a crash a
    /// pack may hold zeros or stale blocks, and its records' checksums turn
    /// those entries into misses, which costs a recompression, not a wrong zip.
    pub(super) fn write_to(&self, dir: &Path) -> std::io::Result<String> {
        std::fs::create_dir_all(dir)?;
        let id = self.id();
        let mut pack = crate::util::temp_file_in(dir, ".pack")?;
        super::zipfile::write_segments(&mut pack, &self.segments)?;
        let mut index = crate::util::temp_file_in(dir, ".idx")?;
        index.write_all(&self.index)?;
        crate::util::persist(pack, &dir.join(format!("{id}.pack")))?;
        crate::util::persist(index, &dir.join(format!("{id}.idx")))?;
        Ok(id)
    }
}

/// One pack on disk, mapped.
struct OpenPack {
    id: String,
    data: Bytes,
}

/// The local cache's packs, as found when opened.
#[derive(Default)]
pub(super) struct Store {
    dir: Option<PathBuf>,
    packs: Vec<OpenPack>,
    entries: HashMap<Key, (usize, Record)>,
    /// Further copies of a content in other packs, tried when the first is damaged.
    copies: HashMap<Key, Vec<(usize, Record)>>,
    /// Packs found holding a content other than the one it is filed under,
    /// with how many such contents: removed after the run has taken what it needs.
    poisoned: std::sync::Mutex<std::collections::BTreeMap<usize, usize>>,
}

/// The pack ids in `dir` that have an index (sorted).
fn pack_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            Some(name.strip_suffix(".idx")?.to_string())
        })
        .filter(|id| !id.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

pub(super) fn map_file(path: &Path) -> Option<Bytes> {
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() == 0 {
        return Some(Bytes::new());
    }
    // SAFETY: packs and indexes are written under temporary names and renamed
    // into place, never changed afterwards; compaction removes them by unlink,
    // which leaves an existing mapping intact. Every slice taken from the map
    // is checked against its recorded checksum before it is used.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    Some(Bytes::from_owner(map))
}

impl Store {
    /// The packs under `<cache>/packs`, or an empty store without a cache.
    pub(super) fn open(cache: Option<&Path>) -> Store {
        let Some(cache) = cache else {
            return Store::default();
        };
        let dir = cache.join("packs");
        let mut store = Store {
            dir: Some(dir.clone()),
            ..Store::default()
        };
        for id in pack_ids(&dir) {
            let (Some(index), Some(data)) = (
                map_file(&dir.join(format!("{id}.idx"))),
                map_file(&dir.join(format!("{id}.pack"))),
            ) else {
                continue;
            };
            if data.len() < PACK_MAGIC.len() || &data[..PACK_MAGIC.len()] != PACK_MAGIC {
                continue;
            }
            let n = store.packs.len();
            store.packs.push(OpenPack { id, data });
            let len = store.packs[n].data.len() as u64;
            for (key, r) in parse_index(&index) {
                // A record pointing past the end of its pack (cut short) is left out.
                if r.offset
                    .checked_add(r.compressed)
                    .is_none_or(|end| end > len)
                {
                    continue;
                }
                match store.entries.entry(key) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((n, r));
                    }
                    std::collections::hash_map::Entry::Occupied(_) => {
                        store.copies.entry(key).or_default().push((n, r));
                    }
                }
            }
        }
        store
    }

    /// How many packs were found.
    #[cfg(test)]
    pub(super) fn pack_count(&self) -> usize {
        self.packs.len()
    }

    /// A cached content, checked against its checksum and then against the
    /// content hash it is filed under; a damaged or planted one is a miss.
    pub(super) fn get(&self, key: &Key) -> Option<Blob> {
        let first = self.entries.get(key)?;
        let copies = self.copies.get(key).map(Vec::as_slice).unwrap_or_default();
        std::iter::once(first)
            .chain(copies)
            .find_map(|(pack, record)| {
                let blob = record.blob_in(&self.packs[*pack].data)?;
                if super::blobs::holds(&blob, &key.0) {
                    return Some(blob);
                }
                if let Ok(mut bad) = self.poisoned.lock() {
                    *bad.entry(*pack).or_default() += 1;
                }
                None
            })
    }

    /// Removes the packs found holding contents other than the hash they are
    /// filed under, so no later run takes (or shares) them; returns a warning
    /// for each, naming its file.
    pub(super) fn remove_poisoned(&self) -> Vec<String> {
        let bad = std::mem::take(&mut *self.poisoned.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        bad.into_iter()
            .map(|(pack, n)| {
                let id = &self.packs[pack].id;
                let file = dir.join(format!("{id}.pack"));
                let _ = std::fs::remove_file(dir.join(format!("{id}.idx")));
                let _ = std::fs::remove_file(&file);
                format!(
                    "cache pack {} holds {n} content(s) that do not match the hash they are filed under \
                     (written by something other than artifact, or tampered with): removed; \
                     those files were compressed afresh",
                    file.display()
                )
            })
            .collect()
    }

    /// Adds `blobs` as one new pack; failures only cost a later
    /// recompression, so they are logged, not fatal.
    pub(super) fn add<'a>(&self, blobs: impl IntoIterator<Item = (Key, &'a Blob)>) {
        let Some(dir) = &self.dir else { return };
        let new = NewPack::build(blobs);
        if new.count == 0 {
            return;
        }
        if let Err(e) = new.write_to(dir) {
            tracing::warn!("could not add to the cache in {}: {e}", dir.display());
        }
    }
}

/// What compaction dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Compacted {
    pub dropped: usize,
    pub dropped_bytes: u64,
}

/// Merges the packs under `<cache>/packs` into one, keeping only `keep`
/// (`None`: every whole entry). Does nothing when another process holds the
/// lock, or (without `keep`) when there are no more than `COMPACT_AT` packs.
pub(super) fn compact(cache: &Path, keep: Option<&HashSet<Key>>) -> std::io::Result<Compacted> {
    let dir = cache.join("packs");
    if !dir.is_dir() {
        return Ok(Compacted::default());
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    if lock.try_lock().is_err() {
        return Ok(Compacted::default());
    }
    remove_orphan_packs(&dir);
    // Packs half-written by a run that was killed.
    crate::util::remove_stale_temp_files(&dir);
    let ids = pack_ids(&dir);
    if keep.is_none() && ids.len() <= COMPACT_AT {
        return Ok(Compacted::default());
    }
    let mut kept: HashMap<Key, Blob> = HashMap::new();
    let mut done = Compacted::default();
    for id in &ids {
        let index = map_file(&dir.join(format!("{id}.idx"))).unwrap_or_default();
        let data = map_file(&dir.join(format!("{id}.pack"))).unwrap_or_default();
        for (key, r) in parse_index(&index) {
            let wanted = keep.is_none_or(|k| k.contains(&key));
            match r.blob_in(&data) {
                Some(b) if wanted && !kept.contains_key(&key) => {
                    kept.insert(key, b);
                }
                Some(_) if kept.contains_key(&key) => {}
                _ => {
                    done.dropped += 1;
                    done.dropped_bytes = done.dropped_bytes.saturating_add(r.compressed);
                }
            }
        }
    }
    let new = NewPack::build(kept.iter().map(|(k, b)| (*k, b)));
    let new_id = if new.count > 0 {
        Some(new.write_to(&dir)?)
    } else {
        None
    };
    for id in ids.iter().filter(|id| Some(*id) != new_id.as_ref()) {
        // The index goes first: a pack without one is never read.
        let _ = std::fs::remove_file(dir.join(format!("{id}.idx")));
        let _ = std::fs::remove_file(dir.join(format!("{id}.pack")));
    }
    Ok(done)
}

/// Packs whose index never arrived (the writer died between the renames).
fn remove_orphan_packs(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("pack")
            || path.with_extension("idx").exists()
        {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ORPHAN_AGE);
        if old {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::blobs::compress;
    use super::*;

    fn blob(text: &str) -> (Key, Blob) {
        let data = text.repeat(40);
        let codec = Codec { level: 6 };
        let key = (*blake3::hash(data.as_bytes()).as_bytes(), codec);
        (key, compress(data.as_bytes(), codec))
    }

    fn sample() -> Vec<(Key, Blob)> {
        ["alpha ", "beta ", "gamma ", "delta "]
            .iter()
            .map(|t| blob(t))
            .collect()
    }

    #[test]
    fn a_pack_round_trips_every_content() {
        let (dir, blobs) = one_pack();
        let store = Store::open(Some(dir.path()));
        assert_eq!(store.pack_count(), 1);
        for (k, b) in &blobs {
            assert_eq!(store.get(k).as_ref(), Some(b));
        }
        assert!(store.get(&blob("absent ").0).is_none());
    }

    /// A cache holding the sample as one pack.
    fn one_pack() -> (tempfile::TempDir, Vec<(Key, Blob)>) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = sample();
        Store::open(Some(dir.path())).add(blobs.iter().map(|(k, b)| (*k, b)));
        (dir, blobs)
    }

    /// Changes the bytes of the file at `path`.
    fn damage(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = std::fs::read(path).unwrap();
        f(&mut bytes);
        std::fs::write(path, &bytes).unwrap();
    }

    fn only_pack(dir: &Path, ext: &str) -> PathBuf {
        let id = pack_ids(&dir.join("packs")).pop().unwrap();
        dir.join("packs").join(format!("{id}.{ext}"))
    }

    #[test]
    fn a_truncated_pack_loses_only_the_entries_past_the_cut() {
        let (dir, blobs) = one_pack();
        let pack = only_pack(dir.path(), "pack");
        let len = std::fs::metadata(&pack).unwrap().len();
        // Cut in the middle of the last entry.
        let f = std::fs::OpenOptions::new().write(true).open(&pack).unwrap();
        f.set_len(len - 3).unwrap();
        let store = Store::open(Some(dir.path()));
        let found = blobs.iter().filter(|(k, _)| store.get(k).is_some()).count();
        assert_eq!(found, blobs.len() - 1);
        for (k, b) in &blobs {
            if let Some(got) = store.get(k) {
                assert_eq!(&got, b);
            }
        }
    }

    #[test]
    fn a_truncated_index_keeps_its_whole_records() {
        let (dir, blobs) = one_pack();
        let idx = only_pack(dir.path(), "idx");
        let f = std::fs::OpenOptions::new().write(true).open(&idx).unwrap();
        f.set_len((IDX_MAGIC.len() + 2 * RECORD + RECORD / 2) as u64)
            .unwrap();
        let store = Store::open(Some(dir.path()));
        let found: Vec<Blob> = blobs.iter().filter_map(|(k, _)| store.get(k)).collect();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|b| blobs.iter().any(|(_, x)| x == b)));
    }

    #[test]
    fn flipped_bytes_in_a_pack_or_a_record_are_misses() {
        let (dir, blobs) = one_pack();
        damage(&only_pack(dir.path(), "pack"), |b| {
            b[PACK_MAGIC.len() + 1] ^= 0x40;
        });
        damage(&only_pack(dir.path(), "idx"), |b| {
            let last = b.len() - 10;
            b[last] ^= 1;
        });
        let store = Store::open(Some(dir.path()));
        let found = blobs.iter().filter(|(k, _)| store.get(k).is_some()).count();
        assert_eq!(found, blobs.len() - 2);
    }

    #[test]
    fn a_damaged_copy_gives_way_to_a_whole_one_in_a_later_pack() {
        let (dir, blobs) = one_pack();
        damage(&only_pack(dir.path(), "pack"), |b| {
            b[PACK_MAGIC.len()..].fill(0);
        });
        let store = Store::open(Some(dir.path()));
        assert!(blobs.iter().all(|(k, _)| store.get(k).is_none()));
        // The next run compresses two of them again and adds them as a second pack.
        store.add(blobs[..2].iter().map(|(k, b)| (*k, b)));
        let store = Store::open(Some(dir.path()));
        assert_eq!(store.pack_count(), 2);
        for (k, b) in &blobs[..2] {
            assert_eq!(store.get(k).as_ref(), Some(b));
        }
        assert!(blobs[2..].iter().all(|(k, _)| store.get(k).is_none()));
    }

    #[test]
    fn compaction_merges_packs_and_drops_what_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = sample();
        for pair in blobs.chunks(2) {
            Store::open(Some(dir.path())).add(pair.iter().map(|(k, b)| (*k, b)));
        }
        assert_eq!(Store::open(Some(dir.path())).pack_count(), 2);
        // Without a keep list, two packs are too few to bother.
        assert_eq!(compact(dir.path(), None).unwrap(), Compacted::default());
        let keep: HashSet<Key> = blobs[..3].iter().map(|(k, _)| *k).collect();
        let done = compact(dir.path(), Some(&keep)).unwrap();
        assert_eq!(done.dropped, 1);
        assert_eq!(done.dropped_bytes, blobs[3].1.data.len() as u64);
        let store = Store::open(Some(dir.path()));
        assert_eq!(store.pack_count(), 1);
        for (k, b) in &blobs[..3] {
            assert_eq!(store.get(k).as_ref(), Some(b));
        }
        assert!(store.get(&blobs[3].0).is_none());
    }

    #[test]
    fn equal_packs_get_equal_names() {
        let blobs = sample();
        let a = NewPack::build(blobs.iter().map(|(k, b)| (*k, b)));
        let b = NewPack::build(blobs.iter().rev().map(|(k, b)| (*k, b)));
        assert_eq!(a.id(), b.id());
        assert_eq!(a.pack_bytes(), b.pack_bytes());
    }
}
