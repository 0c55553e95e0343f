//! The cache folder's `.pyc` index (`bytecode/index.bin`): each `.pyc` key
//! with the content hash and size of what was compiled, or why the source
//! got none. One read at start: a warm pack opens no `.pyc` at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::hash::Hash;

const INDEX_MAGIC: &[u8; 8] = b"ARTPYC01";

/// A compiled `.pyc`, as the index keeps it: its content hash and size,
/// or why the source got none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Compiled {
    Pyc { hash: Hash, size: u64 },
    Skipped(String),
}

/// The cache folder's `.pyc` index: key → content hash and size (or why none).
#[derive(Default)]
pub(super) struct Index {
    file: Option<PathBuf>,
    map: HashMap<Hash, Compiled>,
    changed: bool,
}

impl Index {
    pub(super) fn load(cache_dir: Option<&Path>) -> Index {
        let file = cache_dir.map(|c| c.join("bytecode").join("index.bin"));
        let map = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        Index {
            file,
            map,
            changed: false,
        }
    }
    pub(super) fn has(&self, key: &Hash) -> bool {
        self.map.contains_key(key)
    }
    pub(super) fn get(&self, key: &Hash) -> Option<&Compiled> {
        self.map.get(key)
    }
    pub(super) fn insert(&mut self, key: Hash, c: Compiled) {
        self.map.insert(key, c);
        self.changed = true;
    }
    pub(super) fn save(&self) {
        if let (true, Some(f)) = (self.changed, &self.file) {
            let _ = crate::util::write_atomic(f, &encode(&self.map));
        }
    }
}

/// Records sorted by key: key, kind (0 pyc, 1 skipped), then hash and size,
/// or a u16 length and the reason.
pub(super) fn encode(map: &HashMap<Hash, Compiled>) -> Vec<u8> {
    let mut keys: Vec<&Hash> = map.keys().collect();
    keys.sort();
    let mut out = INDEX_MAGIC.to_vec();
    for k in keys {
        out.extend_from_slice(k);
        match &map[k] {
            Compiled::Pyc { hash, size } => {
                out.push(0);
                out.extend_from_slice(hash);
                out.extend_from_slice(&size.to_le_bytes());
            }
            Compiled::Skipped(reason) => {
                let r = &reason.as_bytes()[..reason.len().min(500)];
                out.push(1);
                out.extend_from_slice(&(r.len() as u16).to_le_bytes());
                out.extend_from_slice(r);
            }
        }
    }
    out
}

pub(super) fn decode(bytes: &[u8]) -> Option<HashMap<Hash, Compiled>> {
    let mut rest = bytes.strip_prefix(INDEX_MAGIC)?;
    let mut map = HashMap::new();
    let take = |n: usize, rest: &mut &[u8]| -> Option<Vec<u8>> {
        let (a, b) = (rest.get(..n)?, rest.get(n..)?);
        *rest = b;
        Some(a.to_vec())
    };
    while !rest.is_empty() {
        let key: Hash = take(32, &mut rest)?.try_into().ok()?;
        let kind = take(1, &mut rest)?[0];
        let c = match kind {
            0 => Compiled::Pyc {
                hash: take(32, &mut rest)?.try_into().ok()?,
                size: u64::from_le_bytes(take(8, &mut rest)?.try_into().ok()?),
            },
            1 => {
                let n = u16::from_le_bytes(take(2, &mut rest)?.try_into().ok()?);
                Compiled::Skipped(String::from_utf8(take(n as usize, &mut rest)?).ok()?)
            }
            _ => return None,
        };
        map.insert(key, c);
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_reads_back_what_it_wrote_and_refuses_damage() {
        let mut map = HashMap::new();
        map.insert(
            [1u8; 32],
            Compiled::Pyc {
                hash: [2; 32],
                size: 7,
            },
        );
        map.insert([3u8; 32], Compiled::Skipped("SyntaxError: bad".into()));
        let bytes = encode(&map);
        assert_eq!(decode(&bytes).unwrap(), map);
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"ARTPYC02").is_none());
    }
}
