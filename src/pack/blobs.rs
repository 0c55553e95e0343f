//! Compressing each distinct file once, and keeping the result.
//!
//! A blob is one file's bytes as they sit inside a zip (stored or raw
//! deflate) with their CRC-32. Blobs are keyed by content hash, method and
//! level, so the same bytes compressed once serve every zip that holds them,
//! in this run and, through the cache (`store`), in later ones. Files that are
//! already compressed (by name) or that deflate would not shrink are stored.

use std::cell::RefCell;
use std::path::Path;

use bytes::Bytes;

use super::hash::Hash;
use super::zipfile::{Blob, DEFLATED, STORED};
use super::PackError;

/// File endings whose content is already compressed: deflating them again
/// costs time and saves nothing.
const ALREADY_COMPRESSED: &[&str] = &[
    "7z", "avif", "br", "bz2", "gif", "gz", "jar", "jpeg", "jpg", "lz4", "mp3", "mp4", "png",
    "tgz", "webm", "webp", "whl", "woff", "woff2", "xz", "zip", "zst",
];

/// How a file is to be compressed: decided by its name alone, so it is the
/// same on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Codec {
    /// 0 means stored.
    pub level: u32,
}

/// The deflate engine, as it appears in a codec's id: contents compressed by
/// an earlier engine (zlib-rs, id 0) are not reused, so the bytes of a zip
/// never depend on what happens to be in a cache.
const ENGINE: u32 = 2;

impl Codec {
    /// How the codec is written in cache records: the level, with the engine
    /// in the bits above it. Stored contents are the same under any engine.
    pub fn id(self) -> u32 {
        if self.level == 0 {
            0
        } else {
            self.level | (ENGINE << 8)
        }
    }

    /// The codec an id names, if this version makes it.
    pub fn from_id(id: u32) -> Option<Codec> {
        match (id, id >> 8) {
            (0, _) => Some(Codec { level: 0 }),
            (_, ENGINE) => Some(Codec { level: id & 0xff }),
            _ => None,
        }
    }

    pub fn for_name(zip_path: &str, level: u32) -> Codec {
        let ext = zip_path
            .rsplit('/')
            .next()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase());
        match ext {
            Some(e) if ALREADY_COMPRESSED.contains(&e.as_str()) => Codec { level: 0 },
            _ => Codec { level },
        }
    }
}

/// Compresses `data` with `codec`; stores it when deflate would not shrink it.
pub fn compress(data: &[u8], codec: Codec) -> Blob {
    let crc32 = crc32fast::hash(data);
    if codec.level > 0 && !data.is_empty() {
        let out = deflate(data, codec.level);
        // Empty: libdeflate failed (it cannot, with a buffer of its own bound); store.
        if !out.is_empty() && out.len() < data.len() {
            return Blob {
                method: DEFLATED,
                crc32,
                size: data.len() as u64,
                data: out.into(),
            };
        }
    }
    Blob {
        method: STORED,
        crc32,
        size: data.len() as u64,
        data: Bytes::copy_from_slice(data),
    }
}

/// Raw deflate of `data` at `level` (1 to 12; levels over 9 are libdeflate's
/// slower, smaller ones; the project file allows up to 9), by libdeflate:
/// whole-buffer compression, which is how pack compresses anyway, at once
/// faster and smaller than zlib's streaming deflate at the same level.
fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    thread_local! {
        static COMPRESSORS: RefCell<Vec<(u32, libdeflater::Compressor)>> = const { RefCell::new(Vec::new()) };
    }
    let level = level.clamp(1, 12);
    COMPRESSORS.with(|cell| {
        let mut compressors = cell.borrow_mut();
        let i = match compressors.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                let lvl = libdeflater::CompressionLvl::new(i32::try_from(level).unwrap_or(6))
                    .unwrap_or_else(|_| libdeflater::CompressionLvl::default());
                compressors.push((level, libdeflater::Compressor::new(lvl)));
                compressors.len() - 1
            }
        };
        let c = &mut compressors[i].1;
        let mut out = vec![0u8; c.deflate_compress_bound(data.len())];
        // The buffer is the bound libdeflate gives for this input: it always fits.
        let n = c.deflate_compress(data, &mut out).unwrap_or(0);
        out.truncate(n);
        // The bound is about the input's size: a blob kept with that capacity
        // would hold as much memory as the file uncompressed.
        out.shrink_to_fit();
        out
    })
}

/// Deflate never expands data more than this (1032:1 at best), so a record
/// claiming a larger size is not deflate's, whatever its bytes.
const MAX_RATIO: u64 = 1032;

/// Whether `blob` holds exactly the content `hash` names: inflated (or taken
/// as stored), its BLAKE3 must be `hash` and its CRC-32 and size the blob's
/// own. A cache is writable by others (every builder shares it), and a record's
/// checksum only guards against damage: this is what keeps a planted entry,
/// filed under a real file's hash, out of a zip.
pub(super) fn holds(blob: &Blob, hash: &Hash) -> bool {
    match blob.method {
        STORED => check(blob, hash, &blob.data),
        _ => contents(blob, hash).is_some(),
    }
}

/// The content `blob` holds, when it is exactly the one `hash` names (as [`holds`] checks).
pub(super) fn contents(blob: &Blob, hash: &Hash) -> Option<Vec<u8>> {
    thread_local! {
        static INFLATER: RefCell<libdeflater::Decompressor> = RefCell::new(libdeflater::Decompressor::new());
    }
    let out = match blob.method {
        STORED => blob.data.to_vec(),
        DEFLATED => {
            let bound = (blob.data.len() as u64)
                .saturating_mul(MAX_RATIO)
                .saturating_add(64);
            let size = usize::try_from(blob.size).ok()?;
            if blob.size > bound {
                return None;
            }
            let mut out = vec![0u8; size];
            let n = INFLATER
                .with(|d| d.borrow_mut().deflate_decompress(&blob.data, &mut out))
                .ok()?;
            (n == size).then_some(out)?
        }
        _ => return None,
    };
    check(blob, hash, &out).then_some(out)
}

fn check(blob: &Blob, hash: &Hash, data: &[u8]) -> bool {
    data.len() as u64 == blob.size
        && crc32fast::hash(data) == blob.crc32
        && blake3::hash(data).as_bytes() == hash
}

/// Reads a file and compresses it, checking that it still has the content
/// hash it was planned with (a file edited mid-pack would otherwise make a zip
/// that does not match its manifest).
pub(super) fn compress_file(
    path: &Path,
    display: &str,
    expected: &Hash,
    codec: Codec,
) -> Result<Blob, PackError> {
    let data = std::fs::read(path).map_err(|e| PackError::Read {
        path: display.to_string(),
        source: e,
    })?;
    if blake3::hash(&data).as_bytes() != expected {
        return Err(PackError::ChangedDuringPack {
            path: display.to_string(),
        });
    }
    Ok(compress(&data, codec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_names_are_stored_others_deflated() {
        assert_eq!(Codec::for_name("a/b.WOFF2", 6).level, 0);
        assert_eq!(Codec::for_name("a.gz/b.py", 6).level, 6);
        assert_eq!(Codec::for_name("noext", 9).level, 9);
    }

    #[test]
    fn codec_ids_name_the_engine_and_older_ones_are_refused() {
        assert_eq!(
            Codec::from_id(Codec { level: 6 }.id()),
            Some(Codec { level: 6 })
        );
        assert_eq!(Codec { level: 0 }.id(), 0);
        assert_eq!(Codec::from_id(0), Some(Codec { level: 0 }));
        // Level 6 as written by the zlib-rs engine of earlier versions.
        assert_eq!(Codec::from_id(6), None);
        assert_eq!(Codec::from_id(6 | (7 << 8)), None);
    }

    #[test]
    fn deflated_bytes_inflate_back_with_an_independent_decoder() {
        use std::io::Read;
        let text = b"def handler(event, context):\n    return {'ok': True}\n".repeat(200);
        let b = compress(&text, Codec { level: 6 });
        assert_eq!(b.method, DEFLATED);
        let mut w = super::super::zipfile::ZipWriter::new();
        w.add_file("h.py", false, &b).unwrap();
        let bytes = super::super::zipfile::concat(&w.finish().unwrap());
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut back = Vec::new();
        z.by_name("h.py").unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn a_blob_holds_its_own_content_and_no_other() {
        let text = b"import json\n".repeat(300);
        let hash = *blake3::hash(&text).as_bytes();
        for level in [0, 6] {
            let b = compress(&text, Codec { level });
            assert!(holds(&b, &hash), "level {level}");
            // Other bytes, with a CRC-32 and size made to match them, under the real hash.
            let planted = compress(&b"import os; os.system('x')\n".repeat(300), Codec { level });
            assert!(!holds(&planted, &hash), "level {level}");
        }
        let mut b = compress(&text, Codec { level: 6 });
        b.crc32 ^= 1;
        assert!(
            !holds(&b, &hash),
            "a wrong CRC-32 would make a zip that fails to extract"
        );
        let mut b = compress(&text, Codec { level: 6 });
        b.size = u64::MAX;
        assert!(!holds(&b, &hash), "a size no deflate stream can reach");
        let mut b = compress(&text, Codec { level: 6 });
        b.data = Bytes::from_static(b"\xff\xff\xff");
        assert!(!holds(&b, &hash), "bytes that do not inflate");
    }

    #[test]
    fn incompressible_data_is_stored() {
        let mut data = vec![0u8; 4096];
        blake3::Hasher::new()
            .update(b"seed")
            .finalize_xof()
            .fill(&mut data);
        let b = compress(&data, Codec { level: 6 });
        assert_eq!(b.method, STORED);
        let b = compress(&b"abc".repeat(1000), Codec { level: 6 });
        assert_eq!(b.method, DEFLATED);
        assert!(b.data.len() < 100);
    }
}
