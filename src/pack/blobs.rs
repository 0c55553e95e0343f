//! Compressing each distinct file once, and keeping the result.
//!
//! A blob is one file's bytes as they sit inside a zip (stored or raw
//! deflate) with their CRC-32. Blobs are keyed by content hash, method and
//! level, so the same bytes compressed once serve every zip that holds them,
//! in this run and, through the cache (`store`), in later ones. Files that are
//! already compressed (by name) or that deflate would not shrink are stored.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use flate2::Compression;

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

impl Codec {
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
        let mut enc = DeflateEncoder::new(
            Vec::with_capacity(data.len() / 2),
            Compression::new(codec.level),
        );
        // Writing to a Vec cannot fail.
        enc.write_all(data).expect("deflate into memory");
        let out = enc.finish().expect("deflate into memory");
        if out.len() < data.len() {
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
