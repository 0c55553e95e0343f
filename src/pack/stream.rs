//! Writing the zips of a pack run side by side, a window of paths at a time.
//!
//! Every zip lists its entries in byte-wise path order, and the shared
//! dependency folder sits at the same paths in each, so one walk over the
//! paths of all of them, cut into windows of about [`WINDOW`] bytes of
//! sources, meets each shared content in every zip within one window. A
//! window's missing contents are compressed (in parallel, while the window
//! before is written out), appended to every zip that holds them and to the
//! cache's new pack, and dropped once no later entry needs them: memory holds
//! about two windows of compressed bytes, not the whole tree.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::blobs::{self, Codec};
use super::inputs::{FileId, FunctionInputs};
use super::observe::PackObserved;
use super::pack_writer::PackWriter;
use super::reuse;
use super::sha;
use super::store::Key;
use super::zipfile::{Blob, ZipWriter};
use super::PackError;

/// Bytes of distinct sources per window.
pub(super) const WINDOW: u64 = 16 << 20;

/// One entry of a zip, in the order it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step<'a> {
    Dir(&'a str),
    File(&'a str, FileId),
}

impl<'a> Step<'a> {
    fn path(&self) -> &'a str {
        match self {
            Step::Dir(p) | Step::File(p, _) => p,
        }
    }
}

/// A zip's entries: folders and files interleaved in byte-wise path order
/// (the order `unzip -l` shows).
pub(super) fn steps(f: &FunctionInputs) -> Vec<Step<'_>> {
    let mut out = Vec::with_capacity(f.entries.len() + f.dirs.len());
    let mut dirs = f.dirs.iter().peekable();
    for (zip_path, id) in &f.entries {
        while let Some(d) = dirs.next_if(|d| d.as_str() < &**zip_path) {
            out.push(Step::Dir(d));
        }
        out.push(Step::File(zip_path, *id));
    }
    out.extend(dirs.map(|d| Step::Dir(d)));
    out
}

/// Where each window after the first begins: `paths` (any order, repeats
/// allowed, each with its weight, counted once per path) cut at the first new
/// path once a window weighs `budget`. A path is never split between windows.
pub(super) fn window_starts(mut paths: Vec<(&str, u64)>, budget: u64) -> Vec<&str> {
    paths.sort_unstable();
    let mut starts = Vec::new();
    let mut weight = 0u64;
    let mut prev: Option<&str> = None;
    for (p, w) in paths {
        if prev == Some(p) {
            continue;
        }
        if prev.is_some() && weight >= budget {
            starts.push(p);
            weight = 0;
        }
        weight = weight.saturating_add(w);
        prev = Some(p);
    }
    starts
}

/// The zips' steps `from..` up to (not including) the first at or past `bound`.
fn span(steps: &[Step<'_>], from: usize, bound: Option<&str>) -> usize {
    let rest = &steps[from..];
    from + bound.map_or(rest.len(), |b| rest.partition_point(|s| s.path() < b))
}

/// One zip being written: to a temporary file beside its target, hashed as it goes.
struct ZipOut<'a> {
    /// Its function, in `inputs.functions`.
    index: usize,
    target: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    zip: ZipWriter,
    sha: sha::Resuming<'a>,
    record: Vec<reuse::RecordEntry>,
    steps: Vec<Step<'a>>,
    /// The current window: `steps[next..end]`.
    next: usize,
    end: usize,
}

impl<'a> ZipOut<'a> {
    fn open(
        o: &'a PackObserved,
        index: usize,
        previous: Option<&'a reuse::Previous>,
    ) -> Result<ZipOut<'a>, PackError> {
        let f = &o.inputs.functions[index];
        let target = o.out.join(&f.zip);
        let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
        if f.layer {
            std::fs::create_dir_all(&dir).map_err(|e| PackError::io(&dir, e))?;
        }
        let tmp = crate::util::temp_file_in(&dir, ".zip").map_err(|e| PackError::io(&dir, e))?;
        let (old, checkpoints) =
            previous.map_or((&[][..], &[][..]), |p| (&p.zip[..], &p.checkpoints[..]));
        Ok(ZipOut {
            index,
            target,
            file: BufWriter::with_capacity(256 << 10, tmp),
            zip: ZipWriter::new(),
            sha: sha::Resuming::new(old, checkpoints),
            record: Vec::with_capacity(f.entries.len()),
            steps: steps(f),
            next: 0,
            end: 0,
        })
    }

    /// The contents of `steps[range]`, one per file entry.
    fn keys<'s>(
        &'s self,
        o: &'s PackObserved,
        from: usize,
        to: usize,
    ) -> impl Iterator<Item = (Key, FileId)> + 's {
        let (hashes, level) = (&o.hashed.hashes, o.level);
        self.steps[from..to].iter().filter_map(move |s| match s {
            Step::File(p, id) => Some(((hashes[*id], Codec::for_name(p, level)), *id)),
            Step::Dir(_) => None,
        })
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        for s in self.zip.take_segments() {
            self.sha.update(&s);
            self.file.write_all(&s)?;
        }
        Ok(())
    }

    /// Writes the current window's entries.
    fn write_window(
        &mut self,
        o: &PackObserved,
        blobs: &HashMap<Key, Blob>,
    ) -> Result<(), PackError> {
        let io_err = |e| PackError::io(&self.target, e);
        for i in self.next..self.end {
            match self.steps[i] {
                Step::Dir(d) => self.zip.add_dir(d).map_err(io_err)?,
                Step::File(p, id) => {
                    let codec = Codec::for_name(p, o.level);
                    let hash = o.hashed.hashes[id];
                    let blob = blobs.get(&(hash, codec)).ok_or_else(|| {
                        PackError::Other(format!("no content for {p} in {}", self.target.display()))
                    })?;
                    let executable = o.inputs.files[id].executable;
                    let offset = self.zip.add_file(p, executable, blob).map_err(io_err)?;
                    self.record.push(reuse::RecordEntry {
                        hash,
                        codec,
                        method: blob.method,
                        crc32: blob.crc32,
                        size: blob.size,
                        offset,
                        compressed: blob.data.len() as u64,
                    });
                }
            }
        }
        self.next = self.end;
        let target = self.target.clone();
        self.write_out().map_err(|e| PackError::io(&target, e))
    }

    /// Adds the central directory, renames the zip into place and, with a
    /// cache, records its layout. Returns its function, size and SHA-256.
    fn finish(mut self, cache: Option<&Path>) -> Result<(usize, u64, Vec<u8>), PackError> {
        let target = self.target.clone();
        let io_err = |e| PackError::io(&target, e);
        let tail = self.zip.finish().map_err(io_err)?;
        for s in tail {
            self.sha.update(&s);
            self.file.write_all(&s).map_err(io_err)?;
        }
        let tmp = self.file.into_inner().map_err(|e| io_err(e.into_error()))?;
        let len = tmp.as_file().metadata().map_err(io_err)?.len();
        let (sha, checkpoints) = self.sha.finish();
        crate::util::persist_swap(tmp, &target).map_err(io_err)?;
        if let Some(cache) = cache {
            reuse::save(cache, &target, &sha, &self.record, &checkpoints);
        }
        Ok((self.index, len, sha.to_vec()))
    }
}

/// What [`write_zips`] did.
pub(super) struct Streamed {
    /// Per zip written: its function, size and SHA-256.
    pub written: Vec<(usize, u64, Vec<u8>)>,
    /// Contents compressed here.
    pub compressed: usize,
    /// With `keep_new`: those contents, for the shared cache.
    pub kept: Vec<(Key, Blob)>,
}

/// Compresses the contents `missing` (in parallel).
fn compress(o: &PackObserved, missing: &[(Key, FileId)]) -> Result<Vec<(Key, Blob)>, PackError> {
    missing
        .par_iter()
        .map(|(key, id)| {
            let f = &o.inputs.files[*id];
            blobs::compress_file(&f.path, &f.display, &key.0, key.1).map(|b| (*key, b))
        })
        .collect()
}

/// The contents in the zips' `spans` not in `blobs`, each once.
fn missing(
    o: &PackObserved,
    outs: &[ZipOut<'_>],
    spans: &[(usize, usize)],
    blobs: &HashMap<Key, Blob>,
) -> Vec<(Key, FileId)> {
    let mut seen = HashSet::new();
    outs.iter()
        .zip(spans)
        .flat_map(|(z, (from, to))| z.keys(o, *from, *to))
        .filter(|(k, _)| !blobs.contains_key(k) && seen.insert(*k))
        .collect()
}

/// Writes the zips of functions `to_write` (indexes into `inputs.functions`),
/// taking contents from `blobs` and compressing the rest, which go to `pack`
/// (and to [`Streamed::kept`] with `keep_new`). `blobs` loses each content
/// after its last use. Nothing is renamed into place unless every zip is whole.
pub(super) fn write_zips(
    o: &PackObserved,
    to_write: &[usize],
    blobs: &mut HashMap<Key, Blob>,
    previous: &HashMap<(bool, String), reuse::Previous>,
    mut pack: Option<&mut PackWriter>,
    keep_new: bool,
) -> Result<Streamed, PackError> {
    let mut outs: Vec<ZipOut<'_>> = to_write
        .iter()
        .map(|&i| {
            let f = &o.inputs.functions[i];
            ZipOut::open(o, i, previous.get(&(f.layer, f.name.clone())))
        })
        .collect::<Result<_, _>>()?;
    let mut uses: HashMap<Key, u32> = HashMap::new();
    for z in &outs {
        for (k, _) in z.keys(o, 0, z.steps.len()) {
            *uses.entry(k).or_default() += 1;
        }
    }
    let weights: Vec<(&str, u64)> = outs
        .iter()
        .flat_map(|z| z.steps.iter())
        .map(|s| match s {
            Step::File(p, id) => (*p, o.inputs.files[*id].size),
            Step::Dir(p) => (*p, 0),
        })
        .collect();
    let starts = window_starts(weights, WINDOW);
    let mut done = Streamed {
        written: Vec::with_capacity(outs.len()),
        compressed: 0,
        kept: Vec::new(),
    };
    for z in &mut outs {
        z.end = span(&z.steps, 0, starts.first().copied());
    }
    let spans: Vec<(usize, usize)> = outs.iter().map(|z| (0, z.end)).collect();
    let mut ready = compress(o, &missing(o, &outs, &spans, blobs))?;
    for w in 0..=starts.len() {
        done.compressed += ready.len();
        for (key, blob) in ready {
            if let Some(p) = pack.as_deref_mut() {
                p.append(key, &blob);
            }
            if keep_new {
                done.kept.push((key, blob.clone()));
            }
            blobs.insert(key, blob);
        }
        let used: Vec<Key> = outs
            .iter()
            .flat_map(|z| z.keys(o, z.next, z.end).map(|(k, _)| k))
            .collect();
        let upcoming: Vec<(usize, usize)> = outs
            .iter()
            .map(|z| (z.end, span(&z.steps, z.end, starts.get(w + 1).copied())))
            .collect();
        let wanted = missing(o, &outs, &upcoming, blobs);
        let have: &HashMap<Key, Blob> = blobs;
        let (next, written) = rayon::join(
            || compress(o, &wanted),
            || {
                outs.par_iter_mut()
                    .try_for_each(|z| z.write_window(o, have))
            },
        );
        written?;
        ready = next?;
        for k in used {
            if let Some(n) = uses.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    blobs.remove(&k);
                }
            }
        }
        for (z, (_, end)) in outs.iter_mut().zip(upcoming) {
            z.end = end;
        }
    }
    let cache = o.cache_dir.as_deref();
    done.written = outs
        .into_par_iter()
        .map(|z| z.finish(cache))
        .collect::<Result<_, _>>()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cut_at_a_new_path_once_the_budget_is_reached() {
        let paths = vec![("b", 5), ("a", 5), ("a", 5), ("c", 1), ("d", 9), ("e", 1)];
        // a (counted once) + b = 10: c starts the second window; c + d = 10: e the third.
        assert_eq!(window_starts(paths.clone(), 10), vec!["c", "e"]);
        assert_eq!(window_starts(paths.clone(), 1000), Vec::<&str>::new());
        assert_eq!(window_starts(paths, 0), vec!["b", "c", "d", "e"]);
        assert!(window_starts(Vec::new(), 0).is_empty());
    }

    #[test]
    fn a_span_runs_to_the_bound_or_the_end() {
        let s = [
            Step::Dir("a/"),
            Step::File("a/x", 0),
            Step::File("b", 1),
            Step::File("c", 2),
        ];
        assert_eq!(span(&s, 0, Some("b")), 2);
        assert_eq!(span(&s, 2, Some("b")), 2);
        assert_eq!(span(&s, 2, Some("bb")), 3);
        assert_eq!(span(&s, 1, None), 4);
        assert_eq!(span(&s, 4, Some("a")), 4);
    }
}
