//! `artifact pack`: the Build stage's Lambda zips.
//!
//! Planning resolves every function's files, hashes their contents (skipping
//! reads the stat index vouches for), computes each zip's input hash and
//! decides which zips are already up to date. Applying compresses each
//! distinct file once, in parallel (or takes it from the blob cache), writes
//! each stale zip to a temporary file and renames it into place, then writes
//! `manifest.json`. Same inputs give the same bytes on any machine, with any
//! thread count. It does not upload anything: that is `deploy-infra`.

mod blobs;
mod hash;
mod inputs;
mod pip;
mod reuse;
pub mod zipfile;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use blobs::BlobCache;
use hash::{Hash, StatIndex};
use inputs::{FunctionInputs, Inputs};
use zipfile::{Blob, ZipWriter};

pub use blobs::{compress, Codec};
pub use hash::hex;

/// Lambda's limit on a function's unzipped code size (250 MiB).
pub const LAMBDA_UNZIPPED_MAX: u64 = 262_144_000;
/// Lambda's limit on a zip uploaded directly (50 MiB); larger ones must go through S3.
pub const LAMBDA_DIRECT_UPLOAD_MAX: u64 = 52_428_800;
/// Bumped whenever the zip layout changes, so old zips are rebuilt.
const FORMAT_VERSION: &str = "artifact-zip-1";
const MANIFEST_VERSION: u32 = 1;
/// The manifest's file name inside the output folder.
pub const MANIFEST: &str = "manifest.json";

/// What can go wrong while packing, each naming the file or function at fault.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("function `{function}`: source file {path} does not exist")]
    MissingSource { function: String, path: String },
    #[error("the shared dependencies folder {path} does not exist")]
    MissingDependencies { path: String },
    #[error("function `{function}`: `{path}` needs a name inside the zip")]
    BadSpec { function: String, path: String },
    #[error(
        "function `{function}`: two sources land on `{zip_path}` in the zip: {first} and {second}"
    )]
    Collision {
        function: String,
        zip_path: String,
        first: String,
        second: String,
    },
    #[error("{path} is a broken symlink: {source}")]
    BrokenLink {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symlink to {}, outside the project", target.display())]
    LinkOutside { path: String, target: PathBuf },
    #[error("{path} is not a regular file, folder or symlink")]
    NotAFile { path: String },
    #[error("{path}: file name is not valid UTF-8")]
    NonUtf8 { path: String },
    #[error("function `{function}`: unzipped size {size} bytes is over Lambda's limit of {LAMBDA_UNZIPPED_MAX} bytes; largest folders: {}", largest_list(largest))]
    TooLarge {
        function: String,
        size: u64,
        largest: Vec<(String, u64)>,
    },
    #[error("{path} changed while it was being packed")]
    ChangedDuringPack { path: String },
    #[error("{message}")]
    Pip { message: String },
    #[error("{path} defines no functions to pack")]
    NoFunctions { path: String },
    #[error("{0}")]
    Other(String),
}

fn largest_list(largest: &[(String, u64)]) -> String {
    largest
        .iter()
        .map(|(d, s)| format!("{d} ({:.1} MB)", *s as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PackError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> PackError {
        PackError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PackError::MissingSource { .. } => {
                "paths in `files` are relative to `pack.source`; fix the path or create the file".into()
            }
            PackError::MissingDependencies { .. } => {
                "run the dependency install first (e.g. pip install -r requirements.txt -t lambda/package), set `pack.requirements`, or remove `pack.dependencies`".into()
            }
            PackError::BadSpec { .. } => {
                "give the entry a zip path: { path = \"...\", as = \"name.py\" }".into()
            }
            PackError::Collision { .. } => {
                "rename one of them with `as = \"...\"`, exclude one, or set `dependencies = false` on the function".into()
            }
            PackError::BrokenLink { .. } => "remove the link or create its target".into(),
            PackError::LinkOutside { .. } => {
                "copy the target into the project, or point the link at a file inside it".into()
            }
            PackError::NotAFile { .. } => "remove it or add it to `exclude`".into(),
            PackError::NonUtf8 { .. } => "rename the file to a UTF-8 name, or add it to `exclude`".into(),
            PackError::TooLarge { .. } => {
                "exclude what the function does not need (tests, docs, boto3 is already in the runtime), split the function, or use a container image".into()
            }
            PackError::ChangedDuringPack { .. } => "run pack again once nothing is writing to the source tree".into(),
            PackError::Read { .. } | PackError::Io { .. } => "check that the path exists and is readable".into(),
            PackError::Pip { .. } => {
                "check `pack.requirements`, `pack.python` and `pack.pip_args`; run the same pip command by hand to see the full log".into()
            }
            PackError::NoFunctions { .. } => {
                "add a table like [functions.api-handler] with files = [\"index.py\"]".into()
            }
            PackError::Other(_) => return None,
        })
    }
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    pub out: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub no_cache: bool,
    pub dry_run: bool,
    /// Delete cached blobs and pip installs this pack did not use.
    pub prune_cache: bool,
}

/// `manifest.json`: what was built, with no timestamps and no host details,
/// so the same inputs give the same manifest too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub project: String,
    pub environment: String,
    pub functions: BTreeMap<String, FunctionManifest>,
}

/// One function's zip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionManifest {
    /// `{project}-{environment}-{function}`.
    pub deployed_name: String,
    /// The zip's path, relative to the manifest's folder.
    pub zip: String,
    pub zip_size: u64,
    pub unzipped_size: u64,
    pub file_count: usize,
    /// SHA-256 of the zip, hex.
    pub sha256: String,
    /// SHA-256 of the zip, base64: what Lambda reports as `CodeSha256`.
    pub code_sha256: String,
    /// BLAKE3 over every entry's path, mode and content hash, and the zip format.
    pub input_hash: String,
}

impl Manifest {
    /// Reads a manifest written by an earlier pack.
    pub fn load(path: &Path) -> std::io::Result<Manifest> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// What one pack did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackReport {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub run: RunStats,
}

/// The run's own figures: these differ from run to run and are not in `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunStats {
    pub out: PathBuf,
    pub dry_run: bool,
    /// Zips (re)written, or that would be with `--dry-run`.
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// Zips of functions no longer in the project file, removed.
    pub removed: Vec<String>,
    /// Distinct input files, and how many were read (the rest the stat index vouched for).
    pub files: usize,
    pub files_read: usize,
    /// Distinct contents compressed in this run, taken from the blob cache,
    /// and copied out of the previous version of a zip being rebuilt.
    pub compressed: usize,
    pub from_cache: usize,
    pub from_previous_zip: usize,
    /// Cached files deleted by `--prune-cache`, and their bytes.
    pub pruned: usize,
    pub pruned_bytes: u64,
    /// `Some(true)` when the requirements install was reused.
    pub requirements_cached: Option<bool>,
    pub warnings: Vec<String>,
}

/// One function, planned.
struct Planned<'a> {
    inputs: &'a FunctionInputs,
    input_hash: Hash,
    unzipped_size: u64,
    up_to_date: Option<FunctionManifest>,
}

/// Packs every function of `settings`.
pub fn run(settings: &Settings, opts: &PackOptions) -> Result<PackReport, PackError> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(j) = opts.jobs {
        pool = pool.num_threads(j.max(1));
    }
    let pool = pool
        .build()
        .map_err(|e| PackError::Other(format!("could not start worker threads: {e}")))?;
    pool.install(|| run_in_pool(settings, opts))
}

fn run_in_pool(settings: &Settings, opts: &PackOptions) -> Result<PackReport, PackError> {
    let p = &settings.pack;
    if settings.functions.is_empty() {
        return Err(PackError::NoFunctions {
            path: settings.config_path.display().to_string(),
        });
    }
    let out = opts.out.clone().unwrap_or_else(|| p.out.clone());
    let cache_dir = if opts.no_cache {
        None
    } else {
        Some(
            opts.cache_dir
                .clone()
                .unwrap_or_else(|| p.cache_dir.clone()),
        )
    };
    let mut stats = RunStats {
        out: out.clone(),
        dry_run: opts.dry_run,
        ..RunStats::default()
    };

    // ---- plan ----
    let mut dep_dirs = Vec::new();
    if let Some(d) = &p.dependencies {
        if !d.is_dir() {
            return Err(PackError::MissingDependencies {
                path: d.display().to_string(),
            });
        }
        dep_dirs.push(d.clone());
    }
    let installed = match &p.requirements {
        Some(req) => {
            let i = pip::install(settings, req, cache_dir.as_deref())?;
            stats.requirements_cached = Some(i.cached);
            dep_dirs.push(i.dir.clone());
            Some(i)
        }
        None => None,
    };
    let inputs = inputs::resolve(settings, &dep_dirs)?;
    // Lambda's size limit is checked from metadata alone, before a byte is read.
    let mut unzipped = Vec::with_capacity(inputs.functions.len());
    for f in &inputs.functions {
        let size: u64 = f.entries.iter().map(|(_, id)| inputs.files[*id].size).sum();
        if size > LAMBDA_UNZIPPED_MAX {
            return Err(PackError::TooLarge {
                function: f.name.clone(),
                size,
                largest: largest_folders(f, &inputs),
            });
        }
        unzipped.push(size);
    }
    // One index per project folder, so checkouts sharing a cache do not evict each other.
    let index_name = format!(
        "stat-index-{}.json",
        &hex(blake3::hash(settings.root.as_os_str().as_encoded_bytes()).as_bytes())[..16]
    );
    let index = StatIndex::load(cache_dir.as_ref().map(|c| c.join(index_name)));
    let hashed = index.hash_all(&inputs.files)?;
    stats.files = inputs.files.len();
    stats.files_read = hashed.read;

    let old = Manifest::load(&out.join(MANIFEST)).ok();
    let level = p.compression_level;
    let mut planned = Vec::new();
    for (f, unzipped_size) in inputs.functions.iter().zip(unzipped) {
        let input_hash = input_hash(f, &inputs, &hashed.hashes, level);
        let up_to_date = old
            .as_ref()
            .and_then(|m| m.functions.get(&f.name))
            .filter(|m| m.input_hash == hex(&input_hash))
            .filter(|m| zip_is_intact(&out.join(&m.zip), m, cache_dir.as_deref()))
            .cloned();
        planned.push(Planned {
            inputs: f,
            input_hash,
            unzipped_size,
            up_to_date,
        });
    }
    for p in &planned {
        if p.up_to_date.is_some() {
            stats.unchanged.push(p.inputs.name.clone());
        } else {
            stats.written.push(p.inputs.name.clone());
        }
    }
    let removed: Vec<(String, String)> = old
        .iter()
        .flat_map(|m| m.functions.iter())
        .filter(|(name, _)| !settings.functions.iter().any(|f| &f.name == *name))
        .map(|(name, m)| (name.clone(), m.zip.clone()))
        .collect();
    stats.removed = removed.iter().map(|(n, _)| n.clone()).collect();

    let manifest_of = |p: &Planned<'_>, zip_size: u64, sha: &[u8]| FunctionManifest {
        deployed_name: settings
            .functions
            .iter()
            .find(|f| f.name == p.inputs.name)
            .map(|f| f.deployed_name.clone())
            .unwrap_or_default(),
        zip: format!("{}.zip", p.inputs.name),
        zip_size,
        unzipped_size: p.unzipped_size,
        file_count: p.inputs.entries.len(),
        sha256: hex(sha),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(sha),
        input_hash: hex(&p.input_hash),
    };

    if opts.dry_run {
        let functions = planned
            .iter()
            .map(|p| {
                let m = p
                    .up_to_date
                    .clone()
                    .unwrap_or_else(|| manifest_of(p, 0, &[]));
                (p.inputs.name.clone(), m)
            })
            .collect();
        return Ok(PackReport {
            manifest: Manifest {
                version: MANIFEST_VERSION,
                project: settings.project.name.clone(),
                environment: settings.project.environment.clone(),
                functions,
            },
            run: stats,
        });
    }

    // ---- apply: compress each distinct content once ----
    let cache = BlobCache::new(cache_dir.as_deref());
    let mut wanted: BTreeMap<(Hash, Codec), usize> = BTreeMap::new();
    for p in planned.iter().filter(|p| p.up_to_date.is_none()) {
        for (zip_path, id) in &p.inputs.entries {
            let codec = Codec::for_name(zip_path, level);
            wanted.entry((hashed.hashes[*id], codec)).or_insert(*id);
        }
    }
    // The previous versions of the zips being rebuilt hold most of what they need.
    let mut blobs: HashMap<(Hash, Codec), Blob> = HashMap::with_capacity(wanted.len());
    if let (Some(cache_dir), Some(old)) = (&cache_dir, &old) {
        let previous: Vec<HashMap<(Hash, Codec), Blob>> = planned
            .par_iter()
            .filter(|p| p.up_to_date.is_none())
            .filter_map(|p| old.functions.get(&p.inputs.name))
            .map(|m| reuse::load(cache_dir, &out.join(&m.zip), &m.sha256))
            .collect();
        for found in previous {
            for (key, blob) in found {
                if wanted.remove(&key).is_some() {
                    stats.from_previous_zip += 1;
                    blobs.insert(key, blob);
                }
            }
        }
    }
    let wanted: Vec<((Hash, Codec), usize)> = wanted.into_iter().collect();
    let made: Vec<Result<(Blob, bool), PackError>> = wanted
        .par_iter()
        .map(|((hash, codec), id)| {
            if let Some(b) = cache.get(hash, *codec) {
                return Ok((b, true));
            }
            let f = &inputs.files[*id];
            let b = blobs::compress_file(&f.path, &f.display, hash, *codec)?;
            cache.put(hash, *codec, &b);
            Ok((b, false))
        })
        .collect();
    for (((hash, codec), _), r) in wanted.iter().zip(made) {
        let (b, cached) = r?;
        if cached {
            stats.from_cache += 1;
        } else {
            stats.compressed += 1;
        }
        blobs.insert((*hash, *codec), b);
    }

    // ---- apply: write the stale zips, each atomically ----
    std::fs::create_dir_all(&out).map_err(|e| PackError::io(&out, e))?;
    let written: Vec<Result<(String, FunctionManifest), PackError>> = planned
        .par_iter()
        .filter(|p| p.up_to_date.is_none())
        .map(|p| {
            let target = out.join(format!("{}.zip", p.inputs.name));
            let (size, sha) = write_zip(
                &target,
                p.inputs,
                &inputs,
                &hashed.hashes,
                &blobs,
                level,
                cache_dir.as_deref(),
            )?;
            Ok((p.inputs.name.clone(), manifest_of(p, size, &sha)))
        })
        .collect();
    let mut functions = BTreeMap::new();
    for p in &planned {
        if let Some(m) = &p.up_to_date {
            functions.insert(p.inputs.name.clone(), m.clone());
        }
    }
    for r in written {
        let (name, m) = r?;
        functions.insert(name, m);
    }
    stats.warnings.extend(direct_upload_warnings(&functions));
    for (_, zip) in &removed {
        let path = out.join(zip);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(PackError::io(&path, e));
            }
        }
    }
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        project: settings.project.name.clone(),
        environment: settings.project.environment.clone(),
        functions,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    json.push(b'\n');
    let manifest_path = out.join(MANIFEST);
    if std::fs::read(&manifest_path).ok().as_deref() != Some(&json[..]) {
        crate::util::write_atomic(&manifest_path, &json)
            .map_err(|e| PackError::io(&manifest_path, e))?;
    }
    if let (true, Some(cache)) = (opts.prune_cache, &cache_dir) {
        let used: HashSet<String> = planned
            .iter()
            .flat_map(|p| p.inputs.entries.iter())
            .map(|(zip_path, id)| {
                BlobCache::file_name(&hashed.hashes[*id], Codec::for_name(zip_path, level))
            })
            .collect();
        let keep_pip = installed.as_ref().map(|i| i.dir.clone());
        let (n, bytes) = prune(cache, &used, keep_pip.as_deref());
        stats.pruned = n;
        stats.pruned_bytes = bytes;
    }
    if let Err(e) = index.save_if_changed(&inputs.files, &hashed) {
        tracing::warn!("could not save the stat index: {e}");
    }
    drop(installed);
    Ok(PackReport {
        manifest,
        run: stats,
    })
}

/// Deletes cached blobs not in `used` and pip installs other than `keep_pip`.
/// Stat indexes and zip layout records are small and stay.
fn prune(cache: &Path, used: &HashSet<String>, keep_pip: Option<&Path>) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    let mut remove = |p: &Path, is_dir: bool| {
        let size = if is_dir {
            0
        } else {
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        };
        let removed = if is_dir {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        if removed.is_ok() {
            n += 1;
            bytes += size;
        }
    };
    for shard in std::fs::read_dir(cache.join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for blob in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = blob.file_name();
            if !used.contains(name.to_string_lossy().as_ref()) {
                remove(&blob.path(), false);
            }
        }
    }
    for install in std::fs::read_dir(cache.join("pip"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let target = install.path().join("target");
        if keep_pip != Some(target.as_path()) {
            remove(&install.path(), true);
        }
    }
    (n, bytes)
}

/// Zips too large for Lambda's direct upload (they deploy through S3).
fn direct_upload_warnings(functions: &BTreeMap<String, FunctionManifest>) -> Vec<String> {
    functions
        .iter()
        .filter(|(_, m)| m.zip_size > LAMBDA_DIRECT_UPLOAD_MAX)
        .map(|(name, m)| {
            format!(
                "{name}.zip is {:.1} MB, over Lambda's {} MiB direct-upload limit: deploy it through S3 (deploy-infra does)",
                m.zip_size as f64 / 1e6,
                LAMBDA_DIRECT_UPLOAD_MAX / (1024 * 1024)
            )
        })
        .collect()
}

/// Whether the zip on disk is still the one the manifest describes: vouched
/// for by its recorded stat when there is a cache, else hashed again.
fn zip_is_intact(zip: &Path, m: &FunctionManifest, cache_dir: Option<&Path>) -> bool {
    if let Some(cache) = cache_dir {
        if reuse::vouches(cache, zip, &m.sha256) {
            return true;
        }
    }
    let Ok(file) = std::fs::File::open(zip) else {
        return false;
    };
    let mut sha = Sha256Writer {
        inner: std::io::sink(),
        sha: Sha256::new(),
        len: 0,
    };
    std::io::copy(
        &mut std::io::BufReader::with_capacity(256 * 1024, file),
        &mut sha,
    )
    .is_ok()
        && sha.len == m.zip_size
        && hex(&sha.sha.finalize()) == m.sha256
}

/// The hash that decides whether a zip must be rebuilt: every entry's path,
/// mode and content, the compression level and the zip format.
fn input_hash(f: &FunctionInputs, inputs: &Inputs, hashes: &[Hash], level: u32) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(FORMAT_VERSION.as_bytes());
    h.update(&level.to_le_bytes());
    for d in &f.dirs {
        h.update(b"d\0");
        h.update(d.as_bytes());
        h.update(b"\0");
    }
    for (zip_path, id) in &f.entries {
        h.update(if inputs.files[*id].executable {
            b"x\0"
        } else {
            b"f\0"
        });
        h.update(zip_path.as_bytes());
        h.update(b"\0");
        h.update(&hashes[*id]);
    }
    *h.finalize().as_bytes()
}

/// The folders (two levels deep at most) holding the most bytes, largest first.
fn largest_folders(f: &FunctionInputs, inputs: &Inputs) -> Vec<(String, u64)> {
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for (zip_path, id) in &f.entries {
        let parts: Vec<&str> = zip_path.split('/').collect();
        let key = match parts.len() {
            1 => "(zip root)".to_string(),
            2 => format!("{}/", parts[0]),
            _ => format!("{}/{}/", parts[0], parts[1]),
        };
        *sizes.entry(key).or_default() += inputs.files[*id].size;
    }
    let mut v: Vec<(String, u64)> = sizes.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(5);
    v
}

/// A writer that hashes what passes through it.
struct Sha256Writer<W: Write> {
    inner: W,
    sha: Sha256,
    len: u64,
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

/// Writes one zip to a temporary file beside `target` and renames it into
/// place; with a cache, records its layout for the next rebuild.
fn write_zip(
    target: &Path,
    f: &FunctionInputs,
    inputs: &Inputs,
    hashes: &[Hash],
    blobs: &HashMap<(Hash, Codec), Blob>,
    level: u32,
    cache_dir: Option<&Path>,
) -> Result<(u64, Vec<u8>), PackError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".artifact-")
        .suffix(".zip.tmp")
        .tempfile_in(dir)
        .map_err(|e| PackError::io(dir, e))?;
    let io_err = |e| PackError::io(target, e);
    let out = Sha256Writer {
        inner: std::io::BufWriter::with_capacity(256 * 1024, tmp.as_file()),
        sha: Sha256::new(),
        len: 0,
    };
    let mut zip = ZipWriter::new(out);
    let mut record = Vec::with_capacity(f.entries.len());
    // Folders and files interleaved in byte-wise path order: the order `unzip -l` shows.
    let mut dirs = f.dirs.iter().peekable();
    for (zip_path, id) in &f.entries {
        while let Some(d) = dirs.next_if(|d| d.as_str() < &**zip_path) {
            zip.add_dir(d).map_err(io_err)?;
        }
        let codec = Codec::for_name(zip_path, level);
        let hash = hashes[*id];
        let blob = &blobs[&(hash, codec)];
        let offset = zip
            .add_file(zip_path, inputs.files[*id].executable, blob)
            .map_err(io_err)?;
        record.push(reuse::RecordEntry {
            hash,
            codec,
            method: blob.method,
            crc32: blob.crc32,
            size: blob.size,
            offset,
            compressed: blob.data.len() as u64,
        });
    }
    for d in dirs {
        zip.add_dir(d).map_err(io_err)?;
    }
    let Sha256Writer { inner, sha, len } = zip.finish().map_err(io_err)?;
    drop(inner);
    let sha = sha.finalize().to_vec();
    crate::util::persist(tmp, target).map_err(io_err)?;
    if let Some(cache) = cache_dir {
        reuse::save(cache, target, &sha, &record);
    }
    Ok((len, sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(size: u64) -> FunctionManifest {
        FunctionManifest {
            deployed_name: "p-dev-f".into(),
            zip: "f.zip".into(),
            zip_size: size,
            unzipped_size: size,
            file_count: 1,
            sha256: String::new(),
            code_sha256: String::new(),
            input_hash: String::new(),
        }
    }

    #[test]
    fn zips_over_the_direct_upload_limit_are_reported() {
        let functions = BTreeMap::from([
            ("at".to_string(), zip_of(LAMBDA_DIRECT_UPLOAD_MAX)),
            ("over".to_string(), zip_of(LAMBDA_DIRECT_UPLOAD_MAX + 1)),
        ]);
        let w = direct_upload_warnings(&functions);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("over.zip is 52.4 MB"), "{}", w[0]);
        assert!(w[0].contains("through S3"));
    }
}
