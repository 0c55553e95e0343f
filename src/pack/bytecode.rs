//! Bytecode in the zips: for every `.py` of a zip, a PEP 552 hash-based
//! `__pycache__/<name>.<tag>.pyc` compiled by the interpreter of the zip's
//! runtime, so Lambda loads modules instead of compiling them at each cold
//! start (its `/var/task` is read-only: nothing compiled there is kept).
//!
//! A `.pyc` is named by (interpreter version and magic, mode, zip path,
//! source hash), and the cache folder keeps each one with its content hash:
//! a warm pack compiles nothing and starts no process, an edited handler
//! compiles one file. `.pyc` an installer left are dropped, so only files
//! made here for the runtime ship. Compiling runs `python -I -S -B` with
//! `PYTHONHASHSEED=0` and nothing else from the environment: the same
//! source gives the same bytes on any machine and at any thread count.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bytecode_index::{Compiled, Index};
use super::bytecode_keys::Keys;
use super::bytecode_remote::{self, Wanted};
use super::hash::Hash;
use super::inputs::{FileId, Inputs, SourceFile, ZipPath};
use super::manifest::{BytecodeManifest, Skipped};
use super::python::{Interpreter, Interpreters};
use super::remote::RemoteCache;
use super::PackError;
use crate::config::{Function, PackSettings, Settings};
use crate::model::{slim, Bytecode, BytecodeMode, Runtime};
use crate::template::TemplateTarget;

const WORKER: &str = include_str!("bytecode_worker.py");

/// What this run did about bytecode, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytecodeStats {
    /// `.pyc` compiled by this run.
    pub compiled: usize,
    /// `.pyc` taken from the cache folder.
    pub from_cache: usize,
    /// Installer-left `.pyc` files dropped from the zips.
    pub dropped: usize,
    /// `.pyc` taken from the shared cache (`--cache-url`), and the requests that took.
    #[serde(default)]
    pub from_remote: usize,
    #[serde(default)]
    pub remote_requests: usize,
    /// Sources in test folders inside packages left without `.pyc`
    /// (`[pack] bytecode_tests = false`, the default), counted once per content.
    #[serde(default)]
    pub left_in_tests: usize,
    /// Zips packed without bytecode, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without: Vec<Skipped>,
}

/// Bytecode added to the inputs.
#[derive(Default)]
pub(super) struct Added {
    /// Same order as `inputs.functions`; None: packed without.
    pub units: Vec<Option<BytecodeManifest>>,
    pub stats: BytecodeStats,
    pub warnings: Vec<String>,
    /// Where `.pyc` files live when there is no cache folder.
    pub _scratch: Option<tempfile::TempDir>,
}

/// One `.pyc` wanted by some zip.
struct Job {
    key: Hash,
    src: FileId,
    zip_path: String,
    interpreter: usize,
    checked: bool,
}

/// Adds every zip's `.pyc` entries (and files) to `inputs`, with their
/// content hashes to `hashes`. `runtimes` gives each zip's runtime, same
/// order as `inputs.functions`. Without `compile` (a dry run) nothing is
/// compiled: zips needing a new `.pyc` are marked in the returned `pending`.
pub(super) fn add(
    settings: &Settings,
    inputs: &mut Inputs,
    hashes: &mut Vec<Hash>,
    runtimes: &[Option<&'static Runtime>],
    cache_dir: Option<&Path>,
    compile: bool,
    remote: Option<&RemoteCache>,
) -> Result<(Added, Vec<bool>), PackError> {
    let mut added = Added::default();
    let (found, plans) = choose(settings, inputs, runtimes, cache_dir, compile, &mut added)?;
    let mut index = Index::load(cache_dir);
    let objects = match cache_dir {
        Some(c) => c.join("bytecode").join("objects"),
        None => {
            let t = tempfile::tempdir().map_err(|e| PackError::io(Path::new("(temp)"), e))?;
            let p = t.path().to_path_buf();
            added._scratch = Some(t);
            p
        }
    };
    // Every .pyc wanted, once per key however many zips hold it.
    let mut keys = Keys::default();
    let mut jobs: BTreeMap<Hash, Job> = BTreeMap::new();
    for (f, plan) in inputs.functions.iter().zip(&plans) {
        let Some((at, setting)) = plan else { continue };
        for (zip_path, id) in &f.entries {
            if !is_source(zip_path) || left_in_tests(settings, zip_path) {
                continue;
            }
            let checked = setting.mode == BytecodeMode::CheckedHash;
            let key = keys.get(&found, *at, checked, zip_path, *id, &hashes[*id]);
            jobs.entry(key).or_insert_with(|| Job {
                key,
                src: *id,
                zip_path: zip_path.to_string(),
                interpreter: *at,
                checked,
            });
        }
    }
    let mut missing: Vec<&Job> = jobs.values().filter(|j| !index.has(&j.key)).collect();
    let mut pending = vec![false; inputs.functions.len()];
    let cached = jobs.len().saturating_sub(missing.len());
    if !missing.is_empty() && !compile {
        for (p, plan) in pending.iter_mut().zip(&plans) {
            *p = plan.is_some();
        }
    } else if !missing.is_empty() {
        std::fs::create_dir_all(&objects).map_err(|e| PackError::io(&objects, e))?;
        // Bytecode cannot be checked without compiling: shared only when asked.
        let remote = remote.filter(|_| settings.pack.share_bytecode);
        if let Some(remote) = remote {
            let wanted: Vec<Wanted<'_>> = missing
                .iter()
                .map(|j| Wanted {
                    key: j.key,
                    magic: &found[j.interpreter].magic,
                    checked: j.checked,
                })
                .collect();
            let level = settings.pack.compression_level;
            let taken = bytecode_remote::fetch(remote, &wanted, level, &objects, cache_dir);
            added.stats.from_remote = taken.compiled.len();
            added.stats.remote_requests = taken.requests;
            added.warnings.extend(taken.warnings);
            missing.retain(|j| !taken.compiled.contains_key(&j.key));
            for (key, c) in taken.compiled {
                index.insert(key, c);
            }
        }
        let done = compile_all(&missing, &found, &inputs.files, &objects)?;
        added.stats.compiled = done
            .values()
            .filter(|c| matches!(c, Compiled::Pyc { .. }))
            .count();
        if let Some(w) = remote.and_then(|r| bytecode_remote::publish(r, &done)) {
            added.warnings.push(w);
        }
        for (key, c) in done {
            index.insert(key, c);
        }
        index.save();
    }
    added.stats.from_cache = cached;
    let at = Attach {
        found: &found,
        plans: &plans,
        index: &index,
        objects: &objects,
    };
    attach(settings, inputs, hashes, &at, &mut keys, &mut added);
    Ok((added, pending))
}

/// Whether the source `zip_path` ships without a `.pyc` because it lies in a
/// test folder (unless `[pack] bytecode_tests`).
fn left_in_tests(settings: &Settings, zip_path: &str) -> bool {
    !settings.pack.bytecode_tests && slim::in_test_folder(zip_path)
}

/// What [`attach`] reads: the interpreters, each zip's plan, the index of
/// compiled files and the folder holding them.
struct Attach<'a> {
    found: &'a [Interpreter],
    plans: &'a [Option<(usize, Bytecode)>],
    index: &'a Index,
    objects: &'a Path,
}

/// Puts each zip's `.pyc` entries in (dropping installer-left ones), and
/// the `.pyc` files after the sources, each once. Sources [`left_in_tests`]
/// get none (counted in the unit's `left_in_tests`).
fn attach(
    settings: &Settings,
    inputs: &mut Inputs,
    hashes: &mut Vec<Hash>,
    at: &Attach<'_>,
    keys: &mut Keys,
    added: &mut Added,
) {
    // Each .pyc once: its file, and its zip path shared by every zip holding it.
    let mut file_of: HashMap<Hash, (FileId, ZipPath)> = HashMap::new();
    let mut left: HashSet<Hash> = HashSet::new();
    for (i, plan) in at.plans.iter().enumerate() {
        let Some((which, setting)) = plan else {
            added.units.push(None);
            continue;
        };
        let interp = &at.found[*which];
        let checked = setting.mode == BytecodeMode::CheckedHash;
        let f = &mut inputs.functions[i];
        let before = f.entries.len();
        f.entries.retain(|(p, _)| !is_foreign_pyc(p));
        let dropped = before - f.entries.len();
        added.stats.dropped += dropped;
        let mut new: Vec<(ZipPath, FileId)> = Vec::new();
        let mut skipped = Vec::new();
        let mut in_tests = 0;
        for (zip_path, id) in &f.entries {
            if !is_source(zip_path) {
                continue;
            }
            if left_in_tests(settings, zip_path) {
                in_tests += 1;
                left.insert(hashes[*id]);
                continue;
            }
            let key = keys.get(at.found, *which, checked, zip_path, *id, &hashes[*id]);
            match at.index.get(&key) {
                Some(Compiled::Pyc { hash, size }) => {
                    let (fid, path) = file_of.entry(key).or_insert_with(|| {
                        let shown = pyc_path(zip_path, &interp.cache_tag);
                        let path: ZipPath = Arc::from(shown.as_str());
                        inputs.files.push(pyc_file(at.objects, &key, shown, *size));
                        hashes.push(*hash);
                        (inputs.files.len() - 1, path)
                    });
                    new.push((path.clone(), *fid));
                }
                Some(Compiled::Skipped(reason)) => skipped.push(Skipped {
                    file: zip_path.to_string(),
                    reason: reason.clone(),
                }),
                None => {} // dry run: pending
            }
        }
        let files = new.len();
        place(f, new, dropped > 0);
        added.units.push(Some(BytecodeManifest {
            mode: setting.name().into(),
            python: interp.version.clone(),
            files,
            skipped,
            left_in_tests: in_tests,
        }));
    }
    added.stats.left_in_tests = left.len();
}

/// Merges the `.pyc` entries `new` into the zip's sorted entries, and their
/// `__pycache__/` folders into its folders (all recounted when entries were
/// dropped: a folder may hold nothing now).
fn place(f: &mut super::inputs::FunctionInputs, mut new: Vec<(ZipPath, FileId)>, dropped: bool) {
    use super::paths::{dirs_of, merge_sorted};
    new.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    f.entries = merge_sorted(&f.entries, &new, |a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    f.dirs = if dropped {
        dirs_of(f.entries.iter().map(|(p, _)| &**p))
    } else {
        let mut d = merge_sorted(&f.dirs, &dirs_of(new.iter().map(|(p, _)| &**p)), |a, b| {
            a.cmp(b)
        });
        d.dedup();
        d
    };
}

/// Each zip's interpreter (index into the first list) and setting, or None
/// when it is packed without bytecode (said in `added`).
#[allow(clippy::type_complexity)]
fn choose(
    settings: &Settings,
    inputs: &Inputs,
    runtimes: &[Option<&'static Runtime>],
    cache_dir: Option<&Path>,
    compile: bool,
    added: &mut Added,
) -> Result<(Vec<Interpreter>, Vec<Option<(usize, Bytecode)>>), PackError> {
    let mut interps = Interpreters::load(cache_dir);
    let mut found: Vec<Interpreter> = Vec::new();
    let mut by_runtime: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    let mut plans: Vec<Option<(usize, Bytecode)>> = Vec::new();
    for (i, f) in inputs.functions.iter().enumerate() {
        let setting = setting_of(settings, i, f.layer, &f.name);
        let unit = unit_label(f.layer, &f.name);
        if setting.mode == BytecodeMode::Off {
            plans.push(None);
            continue;
        }
        let Some(runtime) = runtimes.get(i).copied().flatten() else {
            if setting.required {
                return Err(PackError::Bytecode(format!(
                    "{unit}: bytecode = \"required\", but its runtime is not known; set `runtime` for it (or [pack] runtime), or a Runtime the template states"
                )));
            }
            added.stats.without.push(Skipped {
                file: unit,
                reason: "runtime not known".into(),
            });
            plans.push(None);
            continue;
        };
        let at = *by_runtime.entry(runtime.name).or_insert_with(|| {
            match interps.find(runtime, &settings.pack.python) {
                Ok(i) => {
                    found.push(i);
                    Some(found.len() - 1)
                }
                Err(tried) => {
                    added.warnings.push(no_interpreter(runtime, &tried));
                    None
                }
            }
        });
        match at {
            Some(at) => plans.push(Some((at, setting))),
            None if setting.required => {
                return Err(PackError::Bytecode(format!(
                    "{unit}: bytecode = \"required\", but {}",
                    no_interpreter(runtime, &[])
                )))
            }
            None => {
                added.stats.without.push(Skipped {
                    file: unit,
                    reason: format!("no {} interpreter on this host", runtime.name),
                });
                plans.push(None);
            }
        }
    }
    if compile {
        interps.save();
    }
    Ok((found, plans))
}

/// A function's runtime: its own, `[pack] runtime`, else its template's
/// (`found`: the functions the templates create).
pub(super) fn function_runtime(
    p: &PackSettings,
    f: &Function,
    found: &BTreeMap<String, TemplateTarget>,
) -> Option<&'static Runtime> {
    f.runtime.or(p.runtime).or_else(|| {
        found
            .get(&f.deployed_name)
            .and_then(|t| t.runtime.as_deref())
            .and_then(crate::model::runtime::runtime_named)
    })
}

/// Each zip's runtime (functions in settings order, then layers): its own,
/// `[pack] runtime`, else its template's; a layer's, else the one every
/// function using it agrees on. Templates are read only when needed.
pub(super) fn runtimes(settings: &Settings) -> Vec<Option<&'static Runtime>> {
    let p = &settings.pack;
    let wants = |b: Option<Bytecode>| b.unwrap_or(p.bytecode).mode != BytecodeMode::Off;
    let need_templates = settings
        .functions
        .iter()
        .any(|f| f.runtime.or(p.runtime).is_none() && wants(f.bytecode));
    let from_templates = if need_templates {
        crate::template::TemplateSet::read(settings)
            .functions(settings, None)
            .by_name
    } else {
        BTreeMap::new()
    };
    let mut out: Vec<Option<&'static Runtime>> = settings
        .functions
        .iter()
        .map(|f| function_runtime(p, f, &from_templates))
        .collect();
    for l in &settings.layers {
        let users: Vec<Option<&'static Runtime>> = settings
            .functions
            .iter()
            .zip(&out)
            .filter(|(f, _)| f.layers.contains(&l.name))
            .map(|(_, r)| *r)
            .collect();
        let agreed = users
            .first()
            .copied()
            .flatten()
            .filter(|r| users.iter().all(|u| u.map(|u| u.name) == Some(r.name)));
        out.push(l.runtime.or(p.runtime).or(agreed));
    }
    out
}

/// A zip's own `bytecode`, else `[pack] bytecode`.
fn setting_of(settings: &Settings, i: usize, layer: bool, name: &str) -> Bytecode {
    let own = if layer {
        settings
            .layers
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.bytecode)
    } else {
        settings.functions.get(i).and_then(|f| f.bytecode)
    };
    own.unwrap_or(settings.pack.bytecode)
}

fn unit_label(layer: bool, name: &str) -> String {
    if layer {
        format!("layer `{name}`")
    } else {
        format!("function `{name}`")
    }
}

fn no_interpreter(runtime: &Runtime, tried: &[String]) -> String {
    let tried = if tried.is_empty() {
        String::new()
    } else {
        format!(" (tried {})", tried.join(", "))
    };
    format!(
        "no python3.{} found for the {} runtime{tried}: its zips are packed without bytecode; install python3.{} or point [pack] python at it",
        runtime.minor, runtime.name, runtime.minor
    )
}

/// A source Python compiles: `.py`, outside `__pycache__`.
fn is_source(zip_path: &str) -> bool {
    zip_path.ends_with(".py") && !zip_path.contains("__pycache__/")
}

/// A `.pyc` not made here: whatever an installer or a developer left.
fn is_foreign_pyc(zip_path: &str) -> bool {
    zip_path.ends_with(".pyc") || zip_path.contains("__pycache__/")
}

/// Where Python looks for the `.pyc` of `a/b.py`: `a/__pycache__/b.<tag>.pyc`.
pub(super) fn pyc_path(zip_path: &str, cache_tag: &str) -> String {
    let (dir, name) = match zip_path.rfind('/') {
        Some(i) => (&zip_path[..=i], &zip_path[i + 1..]),
        None => ("", zip_path),
    };
    let stem = name.strip_suffix(".py").unwrap_or(name);
    format!("{dir}__pycache__/{stem}.{cache_tag}.pyc")
}

fn pyc_file(objects: &Path, key: &Hash, shown: String, size: u64) -> SourceFile {
    SourceFile {
        path: objects.join(format!("{}.pyc", crate::util::hex(key))),
        display: format!("{shown} (bytecode)"),
        size,
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        executable: false,
    }
}

/// Compiles `jobs` in as many worker processes as there are threads, and
/// reads back what each made.
fn compile_all(
    jobs: &[&Job],
    found: &[Interpreter],
    files: &[SourceFile],
    objects: &Path,
) -> Result<BTreeMap<Hash, Compiled>, PackError> {
    // Groups by (interpreter, mode), each split into near-equal byte shares.
    let mut groups: BTreeMap<(usize, bool), Vec<&Job>> = BTreeMap::new();
    for j in jobs {
        groups
            .entry((j.interpreter, j.checked))
            .or_default()
            .push(j);
    }
    let threads = rayon::current_num_threads().max(1);
    let mut batches: Vec<(usize, bool, Vec<&Job>)> = Vec::new();
    for ((at, checked), js) in groups {
        let total: u64 = js.iter().map(|j| files[j.src].size).sum();
        let n = threads.min(js.len().div_ceil(64)).max(1);
        let share = total / n as u64 + 1;
        let mut cur = Vec::new();
        let mut bytes = 0u64;
        for j in js {
            bytes = bytes.saturating_add(files[j.src].size);
            cur.push(j);
            if bytes >= share && batches.len() + 1 < n {
                batches.push((at, checked, std::mem::take(&mut cur)));
                bytes = 0;
            }
        }
        if !cur.is_empty() {
            batches.push((at, checked, cur));
        }
    }
    let results: Vec<Result<BTreeMap<Hash, Compiled>, PackError>> = std::thread::scope(|s| {
        let handles: Vec<_> = batches
            .iter()
            .map(|(at, checked, js)| {
                s.spawn(move || run_worker(&found[*at], *checked, js, files, objects))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(PackError::Bytecode("a bytecode worker panicked".into()))
                })
            })
            .collect()
    });
    let mut out = BTreeMap::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// One worker process over `jobs`.
fn run_worker(
    interp: &Interpreter,
    checked: bool,
    jobs: &[&Job],
    files: &[SourceFile],
    objects: &Path,
) -> Result<BTreeMap<Hash, Compiled>, PackError> {
    let mut input = Vec::new();
    for j in jobs {
        let line = serde_json::json!({
            "src": files[j.src].path.to_string_lossy(),
            "name": j.zip_path,
            "key": crate::util::hex(&j.key),
        });
        input.extend(line.to_string().as_bytes());
        input.push(b'\n');
    }
    let mut cmd = Command::new(&interp.path);
    cmd.args(["-I", "-S", "-B", "-c", WORKER])
        .arg(if checked { "checked" } else { "unchecked" })
        .arg(objects)
        .env_clear()
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONUTF8", "1")
        .env("LC_ALL", "C.UTF-8");
    let fail = |why: String| {
        PackError::Bytecode(format!(
            "compiling bytecode with {} failed: {why}",
            interp.path.display()
        ))
    };
    let out = super::child::run(cmd, &input, Duration::from_secs(600))
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(fail(err.lines().last().unwrap_or("no output").to_string()));
    }
    let by_hex: HashMap<String, &Job> = jobs
        .iter()
        .map(|j| (crate::util::hex(&j.key), *j))
        .collect();
    let mut done = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(status), Some(hex)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(job) = by_hex.get(hex) else { continue };
        let c = if status == "ok" {
            let path = objects.join(format!("{hex}.pyc"));
            let bytes = std::fs::read(&path).map_err(|e| PackError::io(&path, e))?;
            Compiled::Pyc {
                hash: *blake3::hash(&bytes).as_bytes(),
                size: bytes.len() as u64,
            }
        } else {
            Compiled::Skipped(parts.next().unwrap_or("").to_string())
        };
        done.insert(job.key, c);
    }
    if done.len() != jobs.len() {
        return Err(fail(format!(
            "it answered for {} of {} files",
            done.len(),
            jobs.len()
        )));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_paths_are_where_python_looks() {
        assert_eq!(
            pyc_path("index.py", "cpython-312"),
            "__pycache__/index.cpython-312.pyc"
        );
        assert_eq!(
            pyc_path("python/a/b.py", "cpython-313"),
            "python/a/__pycache__/b.cpython-313.pyc"
        );
        assert!(is_source("a/b.py") && !is_source("a/__pycache__/b.py") && !is_source("a.pyi"));
        assert!(is_foreign_pyc("a/b.pyc") && is_foreign_pyc("a/__pycache__/x.txt"));
        assert!(!is_foreign_pyc("a/b.py"));
    }
}
