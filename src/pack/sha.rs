//! SHA-256 of a zip that can resume from where an earlier zip left off.
//!
//! Lambda identifies code by the SHA-256 of the whole zip, and SHA-256 is a
//! chain: byte `n` cannot be hashed before bytes `0..n`. When one handler
//! changes, every byte of the rebuilt zip before its first changed entry is
//! the same as in the previous zip, so the hash state at any point of that
//! common prefix is the same too. While hashing a zip this keeps the state
//! every [`EVERY`] bytes (a checkpoint: 40 bytes each); a rebuild resumes
//! from the last checkpoint inside the common prefix and hashes only the
//! rest. The result is the plain SHA-256 of the zip, checked against the
//! `sha2` crate's in the tests.

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;

/// Bytes between checkpoints.
pub(super) const EVERY: u64 = 1 << 20;

/// SHA-256's initial state.
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The hash state after the first `offset` bytes (a multiple of [`EVERY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checkpoint {
    pub offset: u64,
    pub state: [u32; 8],
}

/// A SHA-256 in progress that keeps checkpoints.
pub(super) struct Sha {
    state: [u32; 8],
    /// Bytes compressed so far (a multiple of 64).
    done: u64,
    buf: [u8; 64],
    buf_len: usize,
    next: u64,
    checkpoints: Vec<Checkpoint>,
    blocks: Vec<GenericArray<u8, U64>>,
}

/// The state before the first byte.
pub(super) fn start() -> Checkpoint {
    Checkpoint {
        offset: 0,
        state: H0,
    }
}

impl Sha {
    /// A hash from the first byte.
    #[cfg(test)]
    pub(super) fn new() -> Sha {
        Sha::resume(start())
    }

    /// A hash that goes on from `at`: feed it the bytes from `at.offset` on.
    pub(super) fn resume(at: Checkpoint) -> Sha {
        Sha {
            state: at.state,
            done: at.offset,
            buf: [0; 64],
            buf_len: 0,
            next: (at.offset / EVERY + 1) * EVERY,
            checkpoints: Vec::new(),
            blocks: Vec::with_capacity(256),
        }
    }

    pub(super) fn update(&mut self, mut data: &[u8]) {
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            self.whole_blocks(&block);
            self.buf_len = 0;
        }
        let whole = data.len() - data.len() % 64;
        self.whole_blocks(&data[..whole]);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// Compresses `data` (a multiple of 64 bytes), keeping a checkpoint at
    /// every multiple of [`EVERY`] it passes.
    fn whole_blocks(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.done == self.next {
                self.checkpoints.push(Checkpoint {
                    offset: self.done,
                    state: self.state,
                });
                self.next += EVERY;
            }
            let room = usize::try_from(self.next - self.done).unwrap_or(usize::MAX);
            let take = room.min(data.len());
            for chunk in data[..take].chunks(64 * 256) {
                self.blocks.clear();
                self.blocks.extend(
                    chunk
                        .chunks_exact(64)
                        .map(GenericArray::<u8, U64>::clone_from_slice),
                );
                sha2::compress256(&mut self.state, &self.blocks);
            }
            self.done += take as u64;
            data = &data[take..];
        }
    }

    /// The digest, and the checkpoints passed since this hash started.
    pub(super) fn finish(mut self) -> ([u8; 32], Vec<Checkpoint>) {
        let bits = (self.done + self.buf_len as u64).wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let len = if self.buf_len < 56 { 64 } else { 128 };
        tail[len - 8..len].copy_from_slice(&bits.to_be_bytes());
        let blocks: Vec<GenericArray<u8, U64>> = tail[..len]
            .chunks_exact(64)
            .map(GenericArray::<u8, U64>::clone_from_slice)
            .collect();
        sha2::compress256(&mut self.state, &blocks);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        (out, self.checkpoints)
    }
}

/// Where hashing a new zip can start: the last of `checkpoints` (from the
/// previous zip `old`) that lies within the bytes `segments` have in common
/// with `old`. Byte-wise comparison, one segment at a time.
pub(super) fn resume_point(
    segments: &[bytes::Bytes],
    old: &[u8],
    checkpoints: &[Checkpoint],
) -> Checkpoint {
    let mut same = 0u64;
    for s in segments {
        let start = same as usize;
        let end = start + s.len();
        if end > old.len() || old[start..end] != s[..] {
            let common = old
                .get(start..)
                .unwrap_or_default()
                .iter()
                .zip(s.iter())
                .take_while(|(a, b)| a == b)
                .count();
            same += common as u64;
            break;
        }
        same += s.len() as u64;
    }
    checkpoints
        .iter()
        .rev()
        .find(|c| c.offset <= same && c.offset % EVERY == 0)
        .copied()
        .unwrap_or_else(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sha2::Digest;

    fn data(n: usize, seed: &str) -> Vec<u8> {
        let mut v = vec![0u8; n];
        blake3::Hasher::new()
            .update(seed.as_bytes())
            .finalize_xof()
            .fill(&mut v);
        v
    }

    #[test]
    fn the_digest_is_sha256_for_every_length_and_split() {
        for n in [
            0,
            1,
            55,
            56,
            63,
            64,
            65,
            119,
            120,
            128,
            1000,
            3 * EVERY as usize + 17,
        ] {
            let d = data(n, "x");
            let want: [u8; 32] = sha2::Sha256::digest(&d).into();
            let mut s = Sha::new();
            for part in d.chunks(7777) {
                s.update(part);
            }
            let (got, cps) = s.finish();
            assert_eq!(got, want, "length {n}");
            // A checkpoint at each whole MiB that more whole blocks followed.
            let offsets: Vec<u64> = cps.iter().map(|c| c.offset).collect();
            let expected: Vec<u64> = (1..)
                .map(|k| k * EVERY)
                .take_while(|o| o + 64 <= n as u64)
                .collect();
            assert_eq!(offsets, expected, "length {n}");
        }
    }

    #[test]
    fn a_rebuild_resumes_inside_the_common_prefix_and_gets_the_same_digest() {
        let old = data(5 * EVERY as usize + 100, "old");
        let (_, checkpoints) = {
            let mut s = Sha::new();
            s.update(&old);
            s.finish()
        };
        // The new zip: same first 3.5 MiB, then other bytes, and longer.
        let cut = 3 * EVERY as usize + EVERY as usize / 2;
        let mut new = old[..cut].to_vec();
        new.extend(data(2 * EVERY as usize, "new"));
        let segments: Vec<Bytes> = new.chunks(300_000).map(Bytes::copy_from_slice).collect();
        let at = resume_point(&segments, &old, &checkpoints);
        assert_eq!(at.offset, 3 * EVERY);
        let mut s = Sha::resume(at);
        s.update(&new[at.offset as usize..]);
        let (got, later) = s.finish();
        let want: [u8; 32] = sha2::Sha256::digest(&new).into();
        assert_eq!(got, want);
        assert_eq!(later.first().map(|c| c.offset), Some(4 * EVERY));
    }

    #[test]
    fn nothing_in_common_starts_from_the_beginning() {
        let old = data(2 * EVERY as usize, "old");
        let (_, cps) = {
            let mut s = Sha::new();
            s.update(&old);
            s.finish()
        };
        let new = vec![Bytes::from(data(2 * EVERY as usize, "other"))];
        assert_eq!(resume_point(&new, &old, &cps).offset, 0);
        assert_eq!(resume_point(&new, &old, &[]).offset, 0);
    }
}
