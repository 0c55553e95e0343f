//! Applying a [`PackPlan`]: each distinct content the written zips need is
//! taken from the previous zip or the cache, or compressed once while the
//! zips are streamed to temporary files ([`stream`]) and renamed into place;
//! removed functions' zips are deleted, then `manifest.json`, the cache
//! pruning and the stat index.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rayon::prelude::*;

use super::blobs::{self, Codec};
use super::inputs::FunctionInputs;
use super::observe::PackObserved;
use super::pack_writer::PackWriter;
use super::plan::{PackPlan, ZipAction};
use super::remote::RemoteCache;
use super::store::{self, Key, NewPack, Store};
use super::stream;
use super::zipfile::Blob;
use super::{
    reuse, FunctionManifest, Manifest, PackError, PackOptions, RunStats, LAMBDA_DIRECT_UPLOAD_MAX,
    MANIFEST,
};
use crate::config::Settings;
use crate::util::hex;

/// Carries out the plan; returns the new manifest.
pub(super) fn apply(
    settings: &Settings,
    o: &PackObserved,
    plan: &PackPlan,
    opts: &PackOptions,
    stats: &mut RunStats,
) -> Result<Manifest, PackError> {
    let remote = opts.remote.as_deref();
    let gathered = gather_blobs(o, plan, remote, stats)?;
    let out = &o.out;
    std::fs::create_dir_all(out).map_err(|e| PackError::io(out, e))?;
    // Zips half-written by a pack that was killed.
    crate::util::remove_stale_temp_files(out);
    crate::util::remove_stale_temp_files(&out.join("layers"));
    let to_write: Vec<usize> = (0..o.inputs.functions.len())
        .filter(|i| plan.zips[*i].action == ZipAction::Write)
        .collect();
    let mut gathered = gathered;
    let written = write_and_share(o, &to_write, &mut gathered, remote, stats)?;
    let mut manifest = Manifest::new(settings);
    for (i, f) in o.inputs.functions.iter().enumerate() {
        if plan.zips[i].action == ZipAction::Keep {
            if let Some(m) = &o.functions[i].previous {
                record_kept_zip(o, i, m);
                manifest.section(f.layer).insert(f.name.clone(), m.clone());
            }
        }
    }
    for (i, size, sha) in written {
        let f = &o.inputs.functions[i];
        let m = manifest_entry(settings, o, i, size, &sha);
        manifest.section(f.layer).insert(f.name.clone(), m);
    }
    stats
        .warnings
        .extend(direct_upload_warnings(&manifest.functions));
    write_sboms(settings, o, plan)?;
    for r in &plan.removed {
        for path in [out.join(&r.zip), out.join(sbom_name(&r.zip))] {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(PackError::io(&path, e));
                }
            }
        }
    }
    write_manifest(out, &manifest)?;
    if let Some(cache) = &o.cache_dir {
        let (n, bytes) = tidy_cache(cache, o, opts.prune_cache);
        stats.pruned = n;
        stats.pruned_bytes = bytes;
    }
    if let Err(e) = o
        .index
        .save_if_changed(&o.inputs.files[..o.sources], &o.hashed)
    {
        tracing::warn!("could not save the stat index: {e}");
    }
    if let Some(folders) = &o.inputs.folders {
        if let Err(e) = o.listings.save(folders) {
            tracing::warn!("could not save the folder listings: {e}");
        }
    }
    Ok(manifest)
}

/// A kept zip found intact by hashing gets a record (without a layout), so
/// the next run trusts it from its stat instead of hashing it again.
fn record_kept_zip(o: &PackObserved, i: usize, m: &FunctionManifest) {
    if let (true, Some(cache)) = (o.functions[i].unrecorded, &o.cache_dir) {
        if let Some(sha) = crate::util::unhex(&m.sha256) {
            reuse::save(cache, &o.out.join(&m.zip), &sha, &[], &[]);
        }
    }
}

/// The SBOM beside a zip: `a.zip` -> `a.cdx.json`.
pub fn sbom_name(zip: &str) -> String {
    format!("{}.cdx.json", zip.strip_suffix(".zip").unwrap_or(zip))
}

/// Writes the SBOM of every zip written now, and of kept zips that have none.
fn write_sboms(settings: &Settings, o: &PackObserved, plan: &PackPlan) -> Result<(), PackError> {
    let results: Vec<Result<(), PackError>> = o
        .inputs
        .functions
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            let path = o.out.join(sbom_name(&f.zip));
            if plan.zips[i].action == ZipAction::Keep && path.is_file() {
                return Ok(());
            }
            let name = manifest_entry(settings, o, i, 0, &[]).deployed_name;
            let bytes = super::sbom::sbom(f, &o.inputs, &o.hashed.hashes, &name);
            crate::util::write_atomic(&path, &bytes).map_err(|e| PackError::io(&path, e))
        })
        .collect();
    results.into_iter().collect()
}

/// The manifest entry of function `i`, written with `size` bytes and hash `sha`.
pub(crate) fn manifest_entry(
    settings: &Settings,
    o: &PackObserved,
    i: usize,
    zip_size: u64,
    sha: &[u8],
) -> FunctionManifest {
    let f = &o.inputs.functions[i];
    let deployed_name = if f.layer {
        let layer = settings.layers.iter().find(|l| l.name == f.name);
        layer.map(|l| l.deployed_name.clone())
    } else {
        let function = settings.functions.iter().find(|s| s.name == f.name);
        function.map(|s| s.deployed_name.clone())
    };
    FunctionManifest {
        deployed_name: deployed_name.unwrap_or_default(),
        zip: f.zip.clone(),
        zip_size,
        unzipped_size: o.functions[i].unzipped_size,
        file_count: f.entries.len(),
        sha256: hex(sha),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(sha),
        input_hash: hex(&o.functions[i].input_hash),
        sbom: Some(sbom_name(&f.zip)),
        bytecode: o.bytecode.units.get(i).cloned().flatten(),
        slimmed: f.slimmed.clone(),
    }
}

fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), PackError> {
    let path = out.join(MANIFEST);
    let mut json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| PackError::io(&path, std::io::Error::other(e)))?;
    json.push(b'\n');
    if std::fs::read(&path).ok().as_deref() != Some(&json[..]) {
        crate::util::write_atomic(&path, &json).map_err(|e| PackError::io(&path, e))?;
    }
    Ok(())
}

/// The contents the zips to write need, and where they came from.
struct Gathered {
    blobs: HashMap<Key, Blob>,
    /// The previous versions of the zips being rebuilt, by (layer, name).
    previous: HashMap<(bool, String), reuse::Previous>,
    /// Fetched from the shared cache: to be added to the local one.
    fetched: Vec<Key>,
    store: Store,
}

/// Writes the zips (streamed: see [`stream`]) while what this run compresses
/// goes into a new pack of the local cache; then adds what was fetched from
/// the shared cache to the local one, and what was compressed to the shared
/// one (a cache failing is a warning, never an error). Returns each zip's
/// function, size and SHA-256.
fn write_and_share(
    o: &PackObserved,
    to_write: &[usize],
    g: &mut Gathered,
    remote: Option<&RemoteCache>,
    stats: &mut RunStats,
) -> Result<Vec<(usize, u64, Vec<u8>)>, PackError> {
    g.store
        .add(g.fetched.iter().filter_map(|k| Some((*k, g.blobs.get(k)?))));
    let mut pack = o.cache_dir.as_ref().and_then(|c| {
        let dir = c.join("packs");
        PackWriter::create(&dir)
            .map_err(|e| tracing::warn!("could not add to the cache in {}: {e}", dir.display()))
            .ok()
    });
    // Without a local pack to publish from, the shared cache's share is kept in memory.
    let keep_new = remote.is_some() && pack.is_none();
    let done = stream::write_zips(
        o,
        to_write,
        &mut g.blobs,
        &g.previous,
        pack.as_mut(),
        keep_new,
    )?;
    stats.compressed += done.compressed;
    let written = match pack.map(PackWriter::finish) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            tracing::warn!("could not add to the cache: {e}");
            None
        }
        None => {
            (!done.kept.is_empty()).then(|| NewPack::build(done.kept.iter().map(|(k, b)| (*k, b))))
        }
    };
    if let (Some(remote), Some(new)) = (remote, written) {
        match remote.publish(&new) {
            Ok(true) => stats.remote_published = new.count,
            Ok(false) => {}
            Err(e) => stats.warnings.push(format!(
                "could not add {} contents to the shared cache {}: {e}",
                new.count,
                remote.url()
            )),
        }
    }
    Ok(done.written)
}

/// The contents of the previous versions of the stale zips that are still
/// `wanted` (removed from it), each checked against its content hash: an
/// entry that is not what its record says is left to the cache or compressed
/// afresh, with a warning naming the zip.
fn from_previous_zips(
    o: &PackObserved,
    stale: &[&FunctionInputs],
    wanted: &mut BTreeMap<Key, usize>,
    stats: &mut RunStats,
) -> (HashMap<Key, Blob>, HashMap<(bool, String), reuse::Previous>) {
    let mut blobs: HashMap<Key, Blob> = HashMap::with_capacity(wanted.len());
    let mut previous = HashMap::new();
    let (Some(cache_dir), Some(old)) = (&o.cache_dir, &o.previous) else {
        return (blobs, previous);
    };
    let found: Vec<((bool, String), PathBuf, reuse::Previous)> = stale
        .par_iter()
        .filter_map(|f| Some(((f.layer, f.name.clone()), old.entry(f.layer, &f.name)?)))
        .map(|(name, m)| {
            let zip = o.out.join(&m.zip);
            let p = reuse::load(cache_dir, &zip, &m.sha256);
            (name, zip, p)
        })
        .collect();
    // Each wanted content once, from the first zip that holds it.
    let mut candidates: BTreeMap<Key, (Blob, usize)> = BTreeMap::new();
    let mut zips = Vec::with_capacity(found.len());
    for (name, zip, mut p) in found {
        for (key, blob) in std::mem::take(&mut p.blobs) {
            if wanted.contains_key(&key) {
                candidates.entry(key).or_insert((blob, zips.len()));
            }
        }
        zips.push(zip);
        previous.insert(name, p);
    }
    let checked: Vec<(Key, Blob, usize, bool)> = candidates
        .into_par_iter()
        .map(|(key, (blob, zip))| {
            let ok = blobs::holds(&blob, &key.0);
            (key, blob, zip, ok)
        })
        .collect();
    let mut planted: BTreeMap<usize, usize> = BTreeMap::new();
    for (key, blob, zip, ok) in checked {
        if ok {
            wanted.remove(&key);
            stats.from_previous_zip += 1;
            blobs.insert(key, blob);
        } else {
            *planted.entry(zip).or_default() += 1;
        }
    }
    for (zip, n) in planted {
        stats.refused_from_cache += n;
        stats.warnings.push(format!(
            "{} holds {n} entr(ies) that do not match the content its cache record names \
             (changed by something other than artifact): not reused; those files were compressed afresh",
            zips[zip].display()
        ));
    }
    (blobs, previous)
}

/// The distinct contents the zips to write need that can be had without
/// compressing: from the previous versions of those zips, from the local
/// cache, or from the shared one. The rest are compressed as the zips are written.
fn gather_blobs(
    o: &PackObserved,
    plan: &PackPlan,
    remote: Option<&RemoteCache>,
    stats: &mut RunStats,
) -> Result<Gathered, PackError> {
    let stale: Vec<&FunctionInputs> = o
        .inputs
        .functions
        .iter()
        .enumerate()
        .filter(|(i, _)| plan.zips[*i].action == ZipAction::Write)
        .map(|(_, f)| f)
        .collect();
    let mut wanted: BTreeMap<Key, usize> = BTreeMap::new();
    for f in &stale {
        for (zip_path, id) in &f.entries {
            let codec = Codec::for_name(zip_path, o.level);
            wanted.entry((o.hashed.hashes[*id], codec)).or_insert(*id);
        }
    }
    // The previous versions of the zips being rebuilt hold most of what they need.
    let (mut blobs, previous) = from_previous_zips(o, &stale, &mut wanted, stats);
    // The cache is opened only when something is still missing.
    let store = if wanted.is_empty() {
        Store::default()
    } else {
        Store::open(o.cache_dir.as_deref())
    };
    let local: Vec<Option<Blob>> = wanted.par_iter().map(|(k, _)| store.get(k)).collect();
    for ((key, _), b) in wanted.iter().zip(local) {
        if let Some(b) = b {
            stats.from_cache += 1;
            blobs.insert(*key, b);
        }
    }
    stats.warnings.extend(store.remove_poisoned());
    wanted.retain(|k, _| !blobs.contains_key(k));
    let mut fetched = Vec::new();
    if let (Some(remote), false) = (remote, wanted.is_empty()) {
        let keys: Vec<Key> = wanted.keys().copied().collect();
        let got = remote.fetch(&keys);
        stats.remote_requests = got.requests;
        stats.refused_from_cache += got.planted;
        stats.warnings.extend(got.warnings);
        for (key, blob) in got.blobs {
            if wanted.remove(&key).is_some() {
                fetched.push(key);
                blobs.insert(key, blob);
            }
        }
        stats.from_remote = fetched.len();
    }
    Ok(Gathered {
        blobs,
        previous,
        fetched,
        store,
    })
}

/// The keys of every content this pack used.
fn used_keys(o: &PackObserved) -> HashSet<Key> {
    o.inputs
        .functions
        .iter()
        .flat_map(|f| f.entries.iter())
        .map(|(zip_path, id)| (o.hashed.hashes[*id], Codec::for_name(zip_path, o.level)))
        .collect()
}

/// Keeps the cache in shape: packs are merged when they pile up; with
/// `prune`, contents and pip installs this pack did not use are dropped.
/// Returns what was removed (entries and installs, and bytes).
fn tidy_cache(cache: &Path, o: &PackObserved, prune: bool) -> (usize, u64) {
    // Indexes and records half-written by a run that was killed.
    for dir in [cache.to_path_buf(), cache.join("zips")] {
        crate::util::remove_stale_temp_files(&dir);
    }
    let keep = prune.then(|| used_keys(o));
    let mut n = 0;
    let mut bytes = 0;
    match store::compact(cache, keep.as_ref()) {
        Ok(done) => {
            n += done.dropped;
            bytes += done.dropped_bytes;
        }
        Err(e) => tracing::warn!("could not compact the cache in {}: {e}", cache.display()),
    }
    if !prune {
        return (n, bytes);
    }
    let keep_pip: Vec<&Path> = o
        .installs
        .iter()
        .filter_map(|i| Some(i.installed.as_ref()?.dir.as_path()))
        .collect();
    for install in std::fs::read_dir(cache.join("pip"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if !keep_pip.contains(&install.path().join("target").as_path())
            && std::fs::remove_dir_all(install.path()).is_ok()
        {
            n += 1;
        }
    }
    // The loose-file cache of earlier versions.
    if std::fs::remove_dir_all(cache.join("blobs")).is_ok() {
        n += 1;
    }
    (n, bytes)
}

/// Zips too large for Lambda's direct upload (they deploy through S3).
pub(crate) fn direct_upload_warnings(
    functions: &BTreeMap<String, FunctionManifest>,
) -> Vec<String> {
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
