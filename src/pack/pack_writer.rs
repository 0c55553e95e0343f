//! The cache's new pack, written while the zips are: each content this run
//! compresses is appended as it is made, so it need not stay in memory until
//! the end. The pack file and its index go to temporary names and are renamed
//! into place when the run is done (pack first, index last), exactly as a
//! pack laid out whole ([`NewPack::write_to`]) is.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::store::{map_file, Key, NewPack, Record, IDX_MAGIC, PACK_MAGIC};
use super::zipfile::Blob;

pub(super) struct PackWriter {
    dir: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    len: u64,
    index: Vec<u8>,
    seen: HashSet<Key>,
    count: usize,
    /// The first write that failed: the pack is then given up.
    error: Option<io::Error>,
}

impl PackWriter {
    /// A new, empty pack in `dir` (`<cache>/packs`).
    pub(super) fn create(dir: &Path) -> io::Result<PackWriter> {
        std::fs::create_dir_all(dir)?;
        let tmp = crate::util::temp_file_in(dir, ".pack")?;
        let mut file = BufWriter::with_capacity(1 << 20, tmp);
        file.write_all(PACK_MAGIC)?;
        Ok(PackWriter {
            dir: dir.to_path_buf(),
            file,
            len: PACK_MAGIC.len() as u64,
            index: IDX_MAGIC.to_vec(),
            seen: HashSet::new(),
            count: 0,
            error: None,
        })
    }

    /// Appends one content (once: a key seen before is skipped).
    pub(super) fn append(&mut self, key: Key, blob: &Blob) {
        if self.error.is_some() || !self.seen.insert(key) {
            return;
        }
        if let Err(e) = self.file.write_all(&blob.data) {
            self.error = Some(e);
            return;
        }
        let mut check = [0u8; 16];
        check.copy_from_slice(&blake3::hash(&blob.data).as_bytes()[..16]);
        Record {
            hash: key.0,
            codec: key.1.id(),
            method: blob.method,
            crc32: blob.crc32,
            size: blob.size,
            offset: self.len,
            compressed: blob.data.len() as u64,
            check,
        }
        .encode(&mut self.index);
        self.len += blob.data.len() as u64;
        self.count += 1;
    }

    /// Renames the pack and its index into place; returns the pack (mapped,
    /// for the shared cache), or `None` when nothing was appended.
    pub(super) fn finish(self) -> io::Result<Option<NewPack>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.count == 0 {
            return Ok(None);
        }
        let pack = self.file.into_inner().map_err(|e| e.into_error())?;
        let id = crate::util::hex(&blake3::hash(&self.index).as_bytes()[..12]);
        let mut index = crate::util::temp_file_in(&self.dir, ".idx")?;
        index.write_all(&self.index)?;
        let pack_path = self.dir.join(format!("{id}.pack"));
        crate::util::persist(pack, &pack_path)?;
        crate::util::persist(index, &self.dir.join(format!("{id}.idx")))?;
        let data = map_file(&pack_path)
            .ok_or_else(|| io::Error::other(format!("{} vanished", pack_path.display())))?;
        Ok(Some(NewPack {
            segments: vec![data],
            index: self.index,
            count: self.count,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::blobs::{self, Codec};
    use super::super::store::Store;
    use super::*;

    fn blob(text: &str) -> (Key, Blob) {
        let codec = Codec::for_name("a.py", 6);
        let hash = *blake3::hash(text.as_bytes()).as_bytes();
        ((hash, codec), blobs::compress(text.as_bytes(), codec))
    }

    #[test]
    fn appended_contents_are_found_in_the_cache_once_finished() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("packs");
        let mut w = PackWriter::create(&dir).unwrap();
        let contents: Vec<(Key, Blob)> = ["one", "two", "two", "", &"x".repeat(5000)]
            .iter()
            .map(|t| blob(t))
            .collect();
        for (k, b) in &contents {
            w.append(*k, b);
        }
        // Not visible before it is finished.
        assert!(Store::open(Some(cache.path()))
            .get(&contents[0].0)
            .is_none());
        let pack = w.finish().unwrap().unwrap();
        assert_eq!(pack.count, 4, "the repeated content is written once");
        let store = Store::open(Some(cache.path()));
        for (k, b) in &contents {
            assert_eq!(store.get(k).as_ref(), Some(b));
        }
        // The same bytes a pack laid out whole would hold, under its own name.
        assert_eq!(pack.pack_bytes()[..8], PACK_MAGIC[..]);
        assert!(dir.join(format!("{}.idx", pack.id())).is_file());
    }

    #[test]
    fn an_empty_pack_leaves_nothing_behind() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("packs");
        let w = PackWriter::create(&dir).unwrap();
        assert!(w.finish().unwrap().is_none());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
