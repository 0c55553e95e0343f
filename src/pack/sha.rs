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

/// The SHA-256 of a new zip fed piece by piece as it is written, resumed from
/// the previous zip `old`: while the new bytes are `old`'s first bytes nothing
/// is hashed; at the first difference the hash starts from the last of
/// `checkpoints` inside the common prefix (hashing the old bytes from there,
/// which are the same) and goes on with the new ones.
pub(super) struct Resuming<'a> {
    old: &'a [u8],
    checkpoints: &'a [Checkpoint],
    /// While `Some(n)`: the `n` bytes so far are `old`'s first `n`.
    same: Option<u64>,
    sha: Option<Sha>,
    at: Checkpoint,
}

impl<'a> Resuming<'a> {
    pub(super) fn new(old: &'a [u8], checkpoints: &'a [Checkpoint]) -> Resuming<'a> {
        Resuming {
            old,
            checkpoints,
            same: Some(0),
            sha: None,
            at: start(),
        }
    }

    /// Starts hashing: the first `same` bytes are `old`'s.
    fn diverge(&mut self, same: u64) -> &mut Sha {
        let at = self
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.offset <= same && c.offset % EVERY == 0)
            .copied()
            .unwrap_or_else(start);
        let mut sha = Sha::resume(at);
        sha.update(&self.old[at.offset as usize..same as usize]);
        self.at = at;
        self.same = None;
        self.sha.insert(sha)
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        let Some(n) = self.same else {
            if let Some(sha) = &mut self.sha {
                sha.update(data);
            }
            return;
        };
        let rest = self.old.get(n as usize..).unwrap_or_default();
        if rest.len() >= data.len() && rest[..data.len()] == *data {
            self.same = Some(n + data.len() as u64);
            return;
        }
        let common = rest.iter().zip(data).take_while(|(a, b)| a == b).count();
        self.diverge(n + common as u64).update(&data[common..]);
    }

    /// The digest, and the checkpoints of the new zip: the old ones it
    /// resumed past, then those passed since.
    pub(super) fn finish(mut self) -> ([u8; 32], Vec<Checkpoint>) {
        if let Some(n) = self.same {
            self.diverge(n);
        }
        let sha = self.sha.take().unwrap_or_else(|| Sha::resume(start()));
        let (digest, later) = sha.finish();
        let at = self.at.offset;
        let mut checkpoints: Vec<Checkpoint> = self
            .checkpoints
            .iter()
            .filter(|c| c.offset > 0 && c.offset <= at)
            .copied()
            .collect();
        checkpoints.extend(later);
        (digest, checkpoints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn checkpoints_of(d: &[u8]) -> Vec<Checkpoint> {
        let mut s = Sha::new();
        s.update(d);
        s.finish().1
    }

    fn resumed(
        new: &[u8],
        old: &[u8],
        cps: &[Checkpoint],
        piece: usize,
    ) -> ([u8; 32], Vec<Checkpoint>, u64) {
        let mut r = Resuming::new(old, cps);
        for part in new.chunks(piece) {
            r.update(part);
        }
        let at = r.same.map_or(r.at.offset, |_| u64::MAX);
        let (d, c) = r.finish();
        (d, c, at)
    }

    #[test]
    fn a_rebuild_resumes_inside_the_common_prefix_and_gets_the_same_digest() {
        let old = data(5 * EVERY as usize + 100, "old");
        let checkpoints = checkpoints_of(&old);
        // The new zip: same first 3.5 MiB, then other bytes, and longer.
        let cut = 3 * EVERY as usize + EVERY as usize / 2;
        let mut new = old[..cut].to_vec();
        new.extend(data(2 * EVERY as usize, "new"));
        for piece in [1 << 20, 300_000, 4097] {
            let (got, cps, at) = resumed(&new, &old, &checkpoints, piece);
            assert_eq!(at, 3 * EVERY, "pieces of {piece}");
            let want: [u8; 32] = sha2::Sha256::digest(&new).into();
            assert_eq!(got, want);
            // The same checkpoints as hashing the new zip from the start.
            assert_eq!(cps, checkpoints_of(&new));
        }
    }

    #[test]
    fn an_identical_a_shorter_and_an_unrelated_zip_all_get_their_digest() {
        let old = data(2 * EVERY as usize + 5, "old");
        let cps = checkpoints_of(&old);
        let other = data(2 * EVERY as usize, "other");
        for new in [&old[..], &old[..EVERY as usize + 3], &other[..], &[][..]] {
            let want: [u8; 32] = sha2::Sha256::digest(new).into();
            assert_eq!(resumed(new, &old, &cps, 65_536).0, want);
            assert_eq!(resumed(new, &[], &[], 65_536).0, want);
        }
        // Nothing in common: from the beginning.
        assert_eq!(resumed(&other, &old, &cps, 1 << 20).2, 0);
    }
}
