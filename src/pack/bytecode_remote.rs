//! Bytecode through the shared cache (`--cache-url`, with `[pack]
//! share_bytecode = true`): a builder that
//! compiled `.pyc` files uploads their index records (`bytecode/<id>.idx`,
//! the local index's format); a fresh builder reads those records, fetches
//! the `.pyc` contents they name like any other content, and compiles only
//! what no builder has.
//!
//! What is checked: each `.pyc` is the content its record names (BLAKE3,
//! CRC and size, as every shared content), and its header is a hash-based
//! `.pyc` of this interpreter in this mode. What cannot be checked without
//! compiling again is that the code object is the source's: the records are
//! trusted as the cache's writers are (the pipeline's role, which also
//! writes the deployed zips to the same bucket). That is why it is opt-in:
//! every other content of the cache is checked against its hash.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::blobs::{self, Codec};
use super::bytecode_index::{self, Compiled};
use super::hash::Hash;
use super::remote::RemoteCache;
use super::store::{Key, Store};

/// One `.pyc` wanted: its key, and what its header must say.
pub(super) struct Wanted<'a> {
    pub key: Hash,
    /// The interpreter's magic number, hex (`cb0d0d0a`).
    pub magic: &'a str,
    pub checked: bool,
}

/// What the shared cache gave.
#[derive(Default)]
pub(super) struct Taken {
    /// Keys now in `objects`, with their records.
    pub compiled: BTreeMap<Hash, Compiled>,
    pub requests: usize,
    pub warnings: Vec<String>,
}

/// Takes from the shared cache every `.pyc` of `wanted` some builder compiled,
/// writing each into `objects/<key>.pyc` (and its compressed content into the
/// local cache, so the zips take it from there).
pub(super) fn fetch(
    remote: &RemoteCache,
    wanted: &[Wanted<'_>],
    level: u32,
    objects: &Path,
    cache_dir: Option<&Path>,
) -> Taken {
    let mut taken = Taken::default();
    let (indexes, requests, warnings) = remote.bytecode_indexes();
    taken.requests += requests;
    taken.warnings.extend(warnings);
    let mut records: HashMap<Hash, Compiled> = HashMap::new();
    for bytes in &indexes {
        // A damaged index is skipped whole: its records cannot be trusted apart.
        if let Some(map) = bytecode_index::decode(bytes) {
            records.extend(map);
        }
    }
    let codec = Codec::for_name("x.pyc", level);
    let mut found: Vec<(&Wanted<'_>, Hash, u64)> = Vec::new();
    for w in wanted {
        match records.get(&w.key) {
            Some(Compiled::Pyc { hash, size }) => found.push((w, *hash, *size)),
            Some(Compiled::Skipped(reason)) => {
                taken
                    .compiled
                    .insert(w.key, Compiled::Skipped(reason.clone()));
            }
            None => {}
        }
    }
    if found.is_empty() {
        return taken;
    }
    let keys: Vec<Key> = found.iter().map(|(_, h, _)| (*h, codec)).collect();
    let got = remote.fetch(&keys);
    taken.requests += got.requests;
    taken.warnings.extend(got.warnings);
    let mut refused = 0;
    for (w, hash, size) in found {
        let Some(blob) = got.blobs.get(&(hash, codec)) else {
            continue;
        };
        let Some(pyc) = blobs::contents(blob, &hash).filter(|p| header_fits(p, w)) else {
            refused += 1;
            continue;
        };
        let path = objects.join(format!("{}.pyc", crate::util::hex(&w.key)));
        if crate::util::write_atomic(&path, &pyc).is_ok() {
            taken.compiled.insert(w.key, Compiled::Pyc { hash, size });
        }
    }
    if refused > 0 {
        taken.warnings.push(format!(
            "shared cache {}: {refused} .pyc file(s) were not bytecode of this interpreter and mode: compiled here instead",
            remote.url()
        ));
    }
    let store = Store::open(cache_dir);
    store.add(got.blobs.iter().map(|(k, b)| (*k, b)));
    taken
}

/// Whether `pyc` starts as a hash-based `.pyc` of `w`'s interpreter and mode (PEP 552).
fn header_fits(pyc: &[u8], w: &Wanted<'_>) -> bool {
    let Some(head) = pyc.get(..16) else {
        return false;
    };
    let flags = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    crate::util::hex(&head[..4]) == w.magic && flags == if w.checked { 0b11 } else { 0b01 }
}

/// Uploads the records of what this run compiled; a warning when that fails.
pub(super) fn publish(remote: &RemoteCache, done: &BTreeMap<Hash, Compiled>) -> Option<String> {
    if done.is_empty() {
        return None;
    }
    let map: HashMap<Hash, Compiled> = done.iter().map(|(k, c)| (*k, c.clone())).collect();
    match remote.publish_bytecode(bytecode_index::encode(&map)) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "could not add {} .pyc records to the shared cache {}: {e}",
            done.len(),
            remote.url()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pyc(magic: [u8; 4], flags: u32) -> Vec<u8> {
        let mut p = magic.to_vec();
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&[7; 8]);
        p.extend_from_slice(b"code");
        p
    }

    #[test]
    fn only_hash_based_pyc_of_the_interpreter_and_mode_fit() {
        let unchecked = Wanted {
            key: [0; 32],
            magic: "cb0d0d0a",
            checked: false,
        };
        let checked = Wanted {
            key: [0; 32],
            magic: "cb0d0d0a",
            checked: true,
        };
        let magic = [0xcb, 0x0d, 0x0d, 0x0a];
        assert!(header_fits(&pyc(magic, 1), &unchecked));
        assert!(!header_fits(&pyc(magic, 1), &checked));
        assert!(header_fits(&pyc(magic, 3), &checked));
        // A timestamp .pyc, another interpreter's, a cut header.
        assert!(!header_fits(&pyc(magic, 0), &unchecked));
        assert!(!header_fits(&pyc([0xa7, 0x0d, 0x0d, 0x0a], 1), &unchecked));
        assert!(!header_fits(&pyc(magic, 1)[..10], &unchecked));
    }
}
