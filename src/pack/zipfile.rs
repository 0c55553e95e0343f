//! A minimal, deterministic zip writer for entries that are already compressed.
//!
//! Entries arrive as finished [`Blob`]s (stored or raw-deflate bytes with their
//! CRC-32), so the same compressed bytes can be reused in any number of zips.
//! Nothing from the host lands in the archive: every entry has the same DOS
//! timestamp (1980-01-01 00:00), a Unix "version made by", a normalised mode and
//! no extra fields. It does not write Zip64: Lambda's limits are far below 4 GiB
//! and 65,535 entries, and going past either is an error.

use std::io::{self, IoSlice, Write};

use bytes::Bytes;

/// Compression method: stored.
pub const STORED: u16 = 0;
/// Compression method: deflate.
pub const DEFLATED: u16 = 8;

/// DOS date 1980-01-01 (the earliest a zip can say), time 00:00:00.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// Made by Unix (3), spec version 2.0: readers honour the Unix mode bits.
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
const FLAG_UTF8: u16 = 1 << 11;

/// One file's content, compressed once and reusable in every zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub method: u16,
    pub crc32: u32,
    pub size: u64,
    /// Shared, so one compressed copy can sit in several zips (or be a slice of an old zip).
    pub data: Bytes,
}

struct CentralEntry {
    name: String,
    method: u16,
    crc32: u32,
    compressed: u32,
    size: u32,
    external_attrs: u32,
    offset: u32,
}

/// Lays out a zip, one entry after another, in the order given, as a list of
/// byte segments: headers it makes and the blobs' own bytes, shared, not
/// copied. The caller writes them out (and can hash them at the same time).
#[derive(Default)]
pub struct ZipWriter {
    segments: Vec<Bytes>,
    offset: u64,
    entries: Vec<CentralEntry>,
}

fn too_large(what: &str) -> io::Error {
    io::Error::other(format!(
        "{what} exceeds what a zip without Zip64 can hold (and what Lambda accepts)"
    ))
}

impl ZipWriter {
    pub fn new() -> Self {
        ZipWriter::default()
    }

    /// Adds a folder entry (`name` ends with `/`), mode 0755.
    pub fn add_dir(&mut self, name: &str) -> io::Result<()> {
        debug_assert!(name.ends_with('/'));
        let empty = Blob {
            method: STORED,
            crc32: 0,
            size: 0,
            data: Bytes::new(),
        };
        // S_IFDIR | 0755 in the high half; MS-DOS directory bit in the low byte.
        self.add(name, (0o040755 << 16) | 0x10, &empty).map(|_| ())
    }

    /// Adds a file entry with mode 0644 or 0755; returns where its data starts.
    pub fn add_file(&mut self, name: &str, executable: bool, blob: &Blob) -> io::Result<u64> {
        let mode: u32 = if executable { 0o100755 } else { 0o100644 };
        self.add(name, mode << 16, blob)
    }

    fn add(&mut self, name: &str, external_attrs: u32, blob: &Blob) -> io::Result<u64> {
        let offset = u32::try_from(self.offset).map_err(|_| too_large("the archive"))?;
        let compressed = u32::try_from(blob.data.len()).map_err(|_| too_large(name))?;
        let size = u32::try_from(blob.size).map_err(|_| too_large(name))?;
        let name_len = u16::try_from(name.len()).map_err(|_| too_large(name))?;
        let mut h = Vec::with_capacity(30 + name.len());
        put32(&mut h, 0x0403_4b50);
        put16(&mut h, version_needed(blob.method));
        put16(&mut h, flags(name));
        put16(&mut h, blob.method);
        put16(&mut h, DOS_TIME);
        put16(&mut h, DOS_DATE);
        put32(&mut h, blob.crc32);
        put32(&mut h, compressed);
        put32(&mut h, size);
        put16(&mut h, name_len);
        put16(&mut h, 0);
        h.extend_from_slice(name.as_bytes());
        let header_len = h.len() as u64;
        self.segments.push(h.into());
        if !blob.data.is_empty() {
            self.segments.push(blob.data.clone());
        }
        let data_offset = self.offset + header_len;
        self.offset = data_offset + blob.data.len() as u64;
        self.entries.push(CentralEntry {
            name: name.to_string(),
            method: blob.method,
            crc32: blob.crc32,
            compressed,
            size,
            external_attrs,
            offset,
        });
        Ok(data_offset)
    }

    /// The segments laid out since the last call, to be written out now: the
    /// writer keeps only the central directory's entries, so a zip can be
    /// streamed to disk as its entries come.
    pub fn take_segments(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.segments)
    }

    /// Adds the central directory and returns the segments not yet taken, in order.
    pub fn finish(mut self) -> io::Result<Vec<Bytes>> {
        let count = u16::try_from(self.entries.len()).map_err(|_| too_large("the entry count"))?;
        let cd_start = u32::try_from(self.offset).map_err(|_| too_large("the archive"))?;
        let mut cd = Vec::with_capacity(self.entries.len() * 64);
        for e in &self.entries {
            put32(&mut cd, 0x0201_4b50);
            put16(&mut cd, VERSION_MADE_BY);
            put16(&mut cd, version_needed(e.method));
            put16(&mut cd, flags(&e.name));
            put16(&mut cd, e.method);
            put16(&mut cd, DOS_TIME);
            put16(&mut cd, DOS_DATE);
            put32(&mut cd, e.crc32);
            put32(&mut cd, e.compressed);
            put32(&mut cd, e.size);
            put16(&mut cd, e.name.len() as u16);
            put16(&mut cd, 0); // extra field length
            put16(&mut cd, 0); // comment length
            put16(&mut cd, 0); // disk number start
            put16(&mut cd, 0); // internal attributes
            put32(&mut cd, e.external_attrs);
            put32(&mut cd, e.offset);
            cd.extend_from_slice(e.name.as_bytes());
        }
        let cd_size = u32::try_from(cd.len()).map_err(|_| too_large("the central directory"))?;
        cd_start
            .checked_add(cd_size)
            .ok_or_else(|| too_large("the archive"))?;
        put32(&mut cd, 0x0605_4b50);
        put16(&mut cd, 0);
        put16(&mut cd, 0);
        put16(&mut cd, count);
        put16(&mut cd, count);
        put32(&mut cd, cd_size);
        put32(&mut cd, cd_start);
        put16(&mut cd, 0);
        self.segments.push(cd.into());
        Ok(self.segments)
    }
}

/// Writes `segments` to `out` with vectored writes, as many at a time as the system takes.
pub fn write_segments(out: &mut impl Write, segments: &[Bytes]) -> io::Result<()> {
    for batch in segments.chunks(512) {
        let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|s| IoSlice::new(s)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match out.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The segments as one buffer.
pub fn concat(segments: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.len()).sum());
    for s in segments {
        out.extend_from_slice(s);
    }
    out
}

fn version_needed(method: u16) -> u16 {
    if method == DEFLATED {
        20
    } else {
        10
    }
}

fn flags(name: &str) -> u16 {
    if name.is_ascii() {
        0
    } else {
        FLAG_UTF8
    }
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    fn stored(data: &[u8]) -> Blob {
        Blob {
            method: STORED,
            crc32: crc32fast::hash(data),
            size: data.len() as u64,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn an_independent_reader_sees_names_bytes_and_modes() {
        let mut w = ZipWriter::new();
        w.add_dir("pkg/").unwrap();
        w.add_file("pkg/ünï.py", false, &stored(b"print(1)\n"))
            .unwrap();
        w.add_file("run.sh", true, &stored(b"#!/bin/sh\n")).unwrap();
        let segments = w.finish().unwrap();
        let mut written = Vec::new();
        write_segments(&mut written, &segments).unwrap();
        let bytes = concat(&segments);
        assert_eq!(written, bytes);

        let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(z.len(), 3);
        let d = z.by_index(0).unwrap();
        assert!(d.is_dir());
        assert_eq!(d.unix_mode(), Some(0o040755));
        drop(d);
        let mut f = z.by_name("pkg/ünï.py").unwrap();
        assert_eq!(f.unix_mode(), Some(0o100644));
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "print(1)\n");
        drop(f);
        assert_eq!(z.by_name("run.sh").unwrap().unix_mode(), Some(0o100755));
    }

    #[test]
    fn an_empty_zip_is_just_the_end_record() {
        let bytes = concat(&ZipWriter::new().finish().unwrap());
        assert_eq!(bytes.len(), 22);
        assert_eq!(&bytes[..4], b"PK\x05\x06");
    }
}
