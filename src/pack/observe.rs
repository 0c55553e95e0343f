//! What a pack starts from, read only: the shared dependencies (installed
//! unless this is a dry run), every function's inputs and their hashes (the
//! stat index spares the reads), Lambda's size limit checked from metadata,
//! and the previous manifest with whether each zip on disk is still intact.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::hash::{Hash, Hashed, StatIndex};
use super::inputs::{self, FunctionInputs, Inputs};
use super::listing::Listings;
use super::{
    reuse, FunctionManifest, Manifest, PackError, PackOptions, FORMAT_VERSION, LAMBDA_UNZIPPED_MAX,
    MANIFEST,
};
use crate::config::Settings;
use crate::util::hex;

pub use super::deps::InstallState;

/// One function as found.
#[derive(Debug, Clone)]
pub struct FunctionState {
    pub input_hash: Hash,
    pub unzipped_size: u64,
    /// The previous manifest's entry for it.
    pub previous: Option<FunctionManifest>,
    /// Whether the zip on disk is the one `previous` describes (checked only
    /// when the inputs are the same).
    pub intact: bool,
    /// Intact, but found so by hashing it: no record vouches for it yet.
    pub unrecorded: bool,
    /// An install it takes has not run (dry run): its contents are unknown.
    pub pending: bool,
}

/// Everything a pack plan is made from.
pub struct PackObserved {
    pub out: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub level: u32,
    pub inputs: Inputs,
    pub hashed: Hashed,
    pub index: StatIndex,
    pub listings: Listings,
    /// Same order as `inputs.functions`.
    pub functions: Vec<FunctionState>,
    pub previous: Option<Manifest>,
    pub installs: Vec<InstallState>,
    /// The secret scan, begun during hashing (None when `[scan] enabled = false`).
    pub scan: Option<(crate::scan::Scanner, HashMap<Hash, crate::scan::Scanned>)>,
    /// `inputs.files` below this are sources; from it on, `.pyc` made here.
    pub sources: usize,
    pub(super) bytecode: super::bytecode::Added,
    /// Each zip's runtime, same order as `inputs.functions`.
    pub runtimes: Vec<Option<&'static crate::model::Runtime>>,
}

/// Reads everything the plan needs. Runs pip only when `install` is set.
pub fn observe(
    settings: &Settings,
    opts: &PackOptions,
    install: bool,
) -> Result<PackObserved, PackError> {
    let p = &settings.pack;
    if settings.functions.is_empty() {
        return Err(PackError::NoFunctions {
            path: settings.config_path.display().to_string(),
        });
    }
    let out = opts.out.clone().unwrap_or_else(|| p.out.clone());
    let cache_dir = (!opts.no_cache).then(|| {
        opts.cache_dir
            .clone()
            .unwrap_or_else(|| p.cache_dir.clone())
    });
    let deps = super::deps::resolve(settings, cache_dir.as_deref(), install)?;
    let dep_dirs: Vec<PathBuf> = deps
        .units
        .iter()
        .flat_map(|u| u.folders.iter().cloned())
        .collect();
    refuse_out_inside_packed(settings, &out, &dep_dirs)?;
    let (listings, index) = project_indexes(settings, cache_dir.as_deref());
    let mut inputs = inputs::resolve(settings, &deps.units, &listings)?;
    // Lambda's size limit is checked from metadata alone, before a byte is read.
    let unzipped = unzipped_sizes(&inputs)?;
    // The secret scan rides on the hash pass: each file read is scanned then.
    let scanner = settings
        .scan
        .enabled
        .then(|| crate::scan::Scanner::load(cache_dir.as_deref()));
    let (mut hashed, scanned) = index.hash_all(&inputs.files, scanner.as_ref())?;
    // Bytecode rides on the hashes: each .pyc is named by its source's.
    let sources = inputs.files.len();
    let runtimes = super::bytecode::runtimes(settings);
    let (bytecode, bytecode_pending) = super::bytecode::add(
        settings,
        &mut inputs,
        &mut hashed.hashes,
        &runtimes,
        cache_dir.as_deref(),
        install,
        opts.remote.as_deref(),
    )?;
    let unzipped = if inputs.files.len() > sources {
        unzipped_sizes(&inputs)?
    } else {
        unzipped
    };
    let previous = Manifest::load(&out.join(MANIFEST)).ok();
    let level = p.compression_level;
    let input_hashes: Vec<Hash> = {
        use rayon::prelude::*;
        let (inputs, hashes) = (&inputs, &hashed.hashes);
        inputs
            .functions
            .par_iter()
            .map(|f| input_hash(f, inputs, hashes, level))
            .collect()
    };
    let functions = inputs
        .functions
        .iter()
        .zip(input_hashes)
        .zip(unzipped)
        .zip(&deps.units)
        .zip(&bytecode_pending)
        .map(
            |((((f, input_hash), unzipped_size), unit), bytecode_pending)| {
                let prev = previous.as_ref().and_then(|m| m.entry(f.layer, &f.name));
                let check = prev
                    .filter(|m| m.input_hash == hex(&input_hash))
                    .map(|m| zip_is_intact(&out.join(&m.zip), m, cache_dir.as_deref()));
                let intact = check.is_some_and(|c| c != Intact::No);
                FunctionState {
                    input_hash,
                    unzipped_size,
                    previous: prev.cloned(),
                    intact,
                    unrecorded: check == Some(Intact::Hashed) && cache_dir.is_some(),
                    pending: unit.pending || *bytecode_pending,
                }
            },
        )
        .collect();
    Ok(PackObserved {
        out,
        cache_dir,
        level,
        inputs,
        hashed,
        index,
        listings,
        functions,
        previous,
        installs: deps.installs,
        scan: scanner.map(|s| (s, scanned)),
        sources,
        bytecode,
        runtimes,
    })
}

/// The folder listings and the stat index of this project folder: one of
/// each per folder, so checkouts sharing a cache do not evict each other.
fn project_indexes(settings: &Settings, cache_dir: Option<&Path>) -> (Listings, StatIndex) {
    let root_key =
        &hex(blake3::hash(settings.root.as_os_str().as_encoded_bytes()).as_bytes())[..16];
    let at = |name: &str| cache_dir.map(|c| c.join(format!("{name}-{root_key}.bin")));
    (
        Listings::load(at("listings")),
        StatIndex::load(at("stat-index")),
    )
}

/// Each zip's unzipped size, checked against Lambda's limit.
fn unzipped_sizes(inputs: &Inputs) -> Result<Vec<u64>, PackError> {
    let mut unzipped = Vec::with_capacity(inputs.functions.len());
    for f in &inputs.functions {
        let size = f
            .entries
            .iter()
            .fold(0u64, |n, (_, id)| n.saturating_add(inputs.files[*id].size));
        if size > LAMBDA_UNZIPPED_MAX {
            return Err(PackError::TooLarge {
                function: f.name.clone(),
                size,
                largest: largest_folders(f, inputs),
            });
        }
        unzipped.push(size);
    }
    Ok(unzipped)
}

/// The output folder must not be inside a folder that is packed.
fn refuse_out_inside_packed(
    settings: &Settings,
    out: &Path,
    dep_dirs: &[PathBuf],
) -> Result<(), PackError> {
    let packed_folders = settings
        .functions
        .iter()
        .flat_map(|f| f.files.iter())
        .map(|spec| settings.pack.source.join(&spec.path))
        .filter(|p| p.is_dir())
        .chain(dep_dirs.iter().cloned());
    for folder in packed_folders {
        let inside = match (out.canonicalize(), folder.canonicalize()) {
            (Ok(o), Ok(f)) => o.starts_with(f),
            _ => out.starts_with(&folder),
        };
        if inside {
            return Err(PackError::OutInsidePacked {
                out: out.to_path_buf(),
                folder,
            });
        }
    }
    Ok(())
}

/// Whether a zip on disk is the one the manifest describes, and how that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intact {
    No,
    /// Its record in the cache vouches for it, from its stat.
    Recorded,
    /// Hashed again: same bytes.
    Hashed,
}

/// Whether the zip on disk is still the one the manifest describes: vouched
/// for by its recorded stat when there is a cache, else hashed again.
fn zip_is_intact(zip: &Path, m: &FunctionManifest, cache_dir: Option<&Path>) -> Intact {
    if let Some(cache) = cache_dir {
        if reuse::vouches(cache, zip, &m.sha256) {
            return Intact::Recorded;
        }
    }
    let Ok(file) = std::fs::File::open(zip) else {
        return Intact::No;
    };
    let mut sha = Sha256Writer {
        inner: std::io::sink(),
        sha: Sha256::new(),
        len: 0,
    };
    let same = std::io::copy(
        &mut std::io::BufReader::with_capacity(256 * 1024, file),
        &mut sha,
    )
    .is_ok()
        && sha.len == m.zip_size
        && hex(&sha.sha.finalize()) == m.sha256;
    if same {
        Intact::Hashed
    } else {
        Intact::No
    }
}

/// The hash that decides whether a zip must be rebuilt: every entry's path,
/// mode and content, the compression level and the zip format.
fn input_hash(f: &FunctionInputs, inputs: &Inputs, hashes: &[Hash], level: u32) -> Hash {
    // One buffer hashed at once: BLAKE3 takes many chunks in a stride then,
    // and the hash is the one of the same bytes fed piece by piece.
    let paths: usize = f.dirs.iter().map(|d| d.len() + 3).sum::<usize>()
        + f.entries.iter().map(|(p, _)| p.len() + 35).sum::<usize>();
    let mut b = Vec::with_capacity(paths + 16);
    b.extend_from_slice(FORMAT_VERSION.as_bytes());
    b.extend_from_slice(&level.to_le_bytes());
    for d in &f.dirs {
        b.extend_from_slice(b"d\0");
        b.extend_from_slice(d.as_bytes());
        b.push(0);
    }
    for (zip_path, id) in &f.entries {
        b.extend_from_slice(if inputs.files[*id].executable {
            b"x\0"
        } else {
            b"f\0"
        });
        b.extend_from_slice(zip_path.as_bytes());
        b.push(0);
        b.extend_from_slice(&hashes[*id]);
    }
    *blake3::hash(&b).as_bytes()
}

/// The folders (two levels deep at most) holding the most bytes, largest first.
fn largest_folders(f: &FunctionInputs, inputs: &Inputs) -> Vec<(String, u64)> {
    let mut sizes: std::collections::BTreeMap<String, u64> = Default::default();
    for (zip_path, id) in &f.entries {
        let parts: Vec<&str> = zip_path.split('/').collect();
        let key = match parts.len() {
            1 => "(zip root)".to_string(),
            2 => format!("{}/", parts[0]),
            _ => format!("{}/{}/", parts[0], parts[1]),
        };
        let size = sizes.entry(key).or_default();
        *size = size.saturating_add(inputs.files[*id].size);
    }
    let mut v: Vec<(String, u64)> = sizes.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(5);
    v
}

/// A writer that hashes what passes through it.
pub(crate) struct Sha256Writer<W: Write> {
    pub(crate) inner: W,
    pub(crate) sha: Sha256,
    pub(crate) len: u64,
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
