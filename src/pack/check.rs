//! The import check: each function's handler imported from its zip's
//! contents, by the interpreter of its runtime, before anything is deployed.
//!
//! A subprocess (`python -I -S`) gets the zip's files (as links to what was
//! packed, at their zip paths) and the layers' `python/` folders on
//! `sys.path`, nothing of the build host's site-packages but what Lambda's
//! runtime provides (boto3, botocore and their dependencies: the host's copy
//! for that interpreter, else a stand-in), the template's environment
//! variable names, and an AWS endpoint on a closed local port so a call at
//! import fails at once. A pass is remembered in the cache folder by
//! everything it depended on: an unchanged zip is not checked again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::inputs::FunctionInputs;
use super::observe::PackObserved;
use super::python::{Interpreter, Interpreters};
use super::PackError;
use crate::config::Settings;

const WORKER: &str = include_str!("check_worker.py");

/// What the check said of one function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub function: String,
    /// `passed`, `cached` (passed before, nothing changed) or `skipped`.
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Runtime-provided modules the handler imported, and where they came from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provided: BTreeMap<String, String>,
}

/// `--check` / `--no-check`; None: `[pack] check`, else on when the interpreter is found.
pub(super) fn wanted(settings: &Settings, flag: Option<bool>) -> Option<bool> {
    flag.or(settings.pack.check)
}

/// One function to check.
pub(super) struct Job<'a> {
    pub(super) name: &'a str,
    pub(super) deployed: &'a str,
    pub(super) handler: String,
    pub(super) env: Vec<(String, String)>,
    pub(super) interp: Interpreter,
    /// Its zip and its layers' zips, in `inputs.functions`.
    pub(super) unit: usize,
    pub(super) layers: Vec<usize>,
    pub(super) key: String,
}

/// Checks every function; `forced` (`--check`) makes a missing handler or
/// interpreter an error. Failures are one error naming each function.
pub(super) fn run(
    settings: &Settings,
    o: &PackObserved,
    forced: bool,
) -> Result<Vec<CheckResult>, PackError> {
    let mut interps = Interpreters::load(o.cache_dir.as_deref());
    let (jobs, mut results) = jobs_of(settings, o, &mut interps);
    interps.save();
    if forced {
        if let Some(r) = results.first() {
            return Err(PackError::ImportCheck(format!(
                "function `{}` cannot be checked: {}",
                r.function,
                r.reason.clone().unwrap_or_default()
            )));
        }
    }
    let passes = o.cache_dir.as_ref().map(|c| c.join("checks"));
    let outcomes: Vec<Result<CheckResult, String>> = jobs
        .par_iter()
        .map(|j| {
            if let Some(p) = &passes {
                if p.join(&j.key).exists() {
                    return Ok(CheckResult {
                        function: j.name.to_string(),
                        result: "cached".into(),
                        reason: None,
                        provided: BTreeMap::new(),
                    });
                }
            }
            let r = check_one(o, j)?;
            if let Some(p) = &passes {
                let _ = crate::util::write_atomic(&p.join(&j.key), b"");
            }
            Ok(r)
        })
        .collect();
    let mut failures = Vec::new();
    for r in outcomes {
        match r {
            Ok(r) => results.push(r),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(PackError::ImportCheck(failures.join("\n")));
    }
    results.sort_by(|a, b| a.function.cmp(&b.function));
    Ok(results)
}

/// The functions to check, and those that cannot be (with why).
fn jobs_of<'a>(
    settings: &'a Settings,
    o: &PackObserved,
    interps: &mut Interpreters,
) -> (Vec<Job<'a>>, Vec<CheckResult>) {
    let templates = crate::template::TemplateSet::read(settings).functions(settings, None);
    let mut results = Vec::new();
    let mut jobs = Vec::new();
    for (i, unit) in o.inputs.functions.iter().enumerate() {
        let Some(f) = settings
            .functions
            .iter()
            .find(|f| f.name == unit.name && !unit.layer)
        else {
            continue;
        };
        let found = templates.by_name.get(&f.deployed_name);
        let skip = |reason: String| skipped(&f.name, reason);
        let Some(handler) = found.and_then(|t| t.handler.clone()) else {
            results.push(skip(format!(
                "no template creates {} with a Handler artifact can read",
                f.deployed_name
            )));
            continue;
        };
        let Some(runtime) = o.runtimes.get(i).copied().flatten() else {
            results.push(skip("runtime not known".into()));
            continue;
        };
        let Ok(interp) = interps.find(runtime, &settings.pack.python) else {
            results.push(skip(format!("no python3.{} on this host", runtime.minor)));
            continue;
        };
        let layers: Vec<&FunctionInputs> = o
            .inputs
            .functions
            .iter()
            .filter(|l| l.layer && f.layers.contains(&l.name))
            .collect();
        let env = found.map(check_env).unwrap_or_default();
        let key = check_key(o, i, &layers, &interp, &handler, &env);
        jobs.push(Job {
            name: &f.name,
            deployed: &f.deployed_name,
            handler,
            env,
            interp,
            unit: i,
            layers: layers
                .iter()
                .filter_map(|l| o.inputs.functions.iter().position(|u| std::ptr::eq(u, *l)))
                .collect(),
            key,
        });
    }
    (jobs, results)
}

/// A function the check could not run for, and why.
pub(super) fn skipped(function: &str, reason: String) -> CheckResult {
    CheckResult {
        function: function.to_string(),
        result: "skipped".into(),
        reason: Some(reason),
        provided: BTreeMap::new(),
    }
}

/// `function `x`: handler a.b was not checked: <why>`.
pub(super) fn not_checked(j: &Job<'_>, why: String) -> String {
    format!(
        "function `{}`: handler {} was not checked: {why}",
        j.name, j.handler
    )
}

/// The template's environment variables for the check: a value not known
/// offline is a stand-in naming its variable.
pub(super) fn check_env(t: &crate::template::TemplateTarget) -> Vec<(String, String)> {
    t.environment
        .iter()
        .map(|(k, v)| {
            let v = v.clone().unwrap_or_else(|| format!("artifact-check-{k}"));
            (k.clone(), v)
        })
        .collect()
}

/// What a pass depends on: the zip's and its layers' inputs, the
/// interpreter, the handler, the environment and this check itself.
fn check_key(
    o: &PackObserved,
    i: usize,
    layers: &[&FunctionInputs],
    interp: &Interpreter,
    handler: &str,
    env: &[(String, String)],
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(WORKER.as_bytes());
    h.update(&o.functions[i].input_hash);
    for l in layers {
        if let Some(at) = o.inputs.functions.iter().position(|u| std::ptr::eq(u, *l)) {
            h.update(&o.functions[at].input_hash);
        }
    }
    for part in [
        interp.version.as_str(),
        &interp.path.to_string_lossy(),
        handler,
    ] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for (k, v) in env {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(b"\0");
    }
    crate::util::hex(h.finalize().as_bytes())
}

/// The answer of the worker.
#[derive(Debug, Deserialize)]
pub(super) struct Answer {
    pub(super) ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    missing: Option<String>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    pub(super) provided: BTreeMap<String, String>,
}

/// Runs the worker for `j` in `task` (under `tmp`) with this job.
pub(super) fn worker(j: &Job<'_>, tmp: &Path, task: &Path, input: &str) -> Result<Answer, String> {
    let mut cmd = Command::new(&j.interp.path);
    cmd.args(["-I", "-S", "-B", "-c", WORKER])
        .current_dir(task)
        .env_clear()
        .envs(j.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("HOME", tmp)
        .env("LAMBDA_TASK_ROOT", task)
        .env("AWS_LAMBDA_FUNCTION_NAME", j.deployed)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "artifact-check")
        .env("AWS_SECRET_ACCESS_KEY", "artifact-check")
        .env("AWS_SESSION_TOKEN", "artifact-check")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("LC_ALL", "C.UTF-8");
    let out = super::child::run(cmd, input.as_bytes(), Duration::from_secs(120))
        .map_err(|e| format!("{} {e}", j.interp.path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next_back()
        .and_then(|l| serde_json::from_str::<Answer>(l).ok())
        .ok_or_else(|| {
            let err = String::from_utf8_lossy(&out.stderr);
            format!(
                "the interpreter stopped: {}",
                err.lines().last().unwrap_or("no output")
            )
        })
}

/// Builds the function's tree of links and imports its handler there.
fn check_one(o: &PackObserved, j: &Job<'_>) -> Result<CheckResult, String> {
    let fail = |why: String| not_checked(j, why);
    let tmp = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    let task = tmp.path().join("task");
    let files = links(o, &o.inputs.functions[j.unit]);
    link_tree(&task, &collapsed(&files)).map_err(|e| fail(e.to_string()))?;
    let opt = tmp.path().join("opt");
    let layer_files: Vec<(String, PathBuf)> = j
        .layers
        .iter()
        .flat_map(|l| links(o, &o.inputs.functions[*l]))
        .collect();
    link_tree(&opt, &collapsed(&layer_files)).map_err(|e| fail(e.to_string()))?;
    let input = serde_json::json!({ "paths": [&task, opt.join("python")], "handler": j.handler });
    let answer = worker(j, tmp.path(), &task, &input.to_string()).map_err(fail)?;
    if !answer.ok {
        let entries: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        return Err(failure_message(j, &answer, &entries));
    }
    Ok(CheckResult {
        function: j.name.to_string(),
        result: "passed".into(),
        reason: None,
        provided: answer.provided,
    })
}

/// `function `x`: handler a.b does not import on python3.12 (3.12.1): <last line>` and where.
pub(super) fn failure_message(j: &Job<'_>, a: &Answer, entries: &[&str]) -> String {
    let mut msg = format!(
        "function `{}`: handler {} does not import on Python {}: {}",
        j.name,
        j.handler,
        j.interp.version,
        a.error.as_deref().unwrap_or("unknown error")
    );
    let module = a.module.as_deref().unwrap_or_default();
    if let (Some(missing), Some(file)) = (&a.missing, &a.file) {
        msg.push_str(&format!("\n  at {file}: `{missing}` is not in the zip"));
    } else if let Some(missing) = &a.missing {
        let wanted = module_path(missing);
        msg.push_str(&format!("\n  {wanted} is not in the zip"));
        if missing == module {
            if let Some(near) = nearest(entries, &wanted) {
                msg.push_str(&format!(" (it has {near}: fix Handler or the file's `as`)"));
            }
        }
    } else if let Some(file) = &a.file {
        msg.push_str(&format!("\n  at {file}"));
    }
    msg
}

/// `a.b` → `a/b.py` (or the package `a/b/`).
fn module_path(module: &str) -> String {
    format!("{}.py", module.replace('.', "/"))
}

/// A zip path ending with the wanted file's name, elsewhere in the zip.
fn nearest<'a>(entries: &[&'a str], wanted: &str) -> Option<&'a str> {
    let name = wanted.rsplit('/').next()?;
    entries
        .iter()
        .copied()
        .filter(|e| *e != wanted && (e.ends_with(&format!("/{name}")) || *e == name))
        .min_by_key(|e| e.len())
}

/// Links each file at its zip path under `dir`.
fn link_tree(dir: &Path, files: &[(String, PathBuf)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut made = std::collections::HashSet::new();
    for (zip_path, src) in files {
        let at = dir.join(zip_path);
        if let Some(parent) = at.parent() {
            if made.insert(parent.to_path_buf()) {
                std::fs::create_dir_all(parent)?;
            }
        }
        std::os::unix::fs::symlink(src, &at)?;
    }
    Ok(())
}

/// The links of a tree: a zip folder that is exactly one source folder (the
/// same files at the same paths, nothing more: `__pycache__` aside) becomes
/// one link to that folder, the rest one link per file. A shared dependency
/// folder is thousands of files: linking each costs far more than the import
/// (inode allocation after many deletes is slow on ext4). Bytecode under a
/// linked folder is not seen: the check compiles those sources in memory.
fn collapsed(files: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    let mut groups: BTreeMap<&str, Vec<&(String, PathBuf)>> = BTreeMap::new();
    for f in files {
        groups
            .entry(f.0.split('/').next().unwrap_or_default())
            .or_default()
            .push(f);
    }
    let mut out = Vec::new();
    for (top, group) in groups {
        match folder_of(top, &group) {
            Some(dir) => out.push((top.to_string(), dir)),
            None => out.extend(group.into_iter().cloned()),
        }
    }
    out
}

/// The source folder the zip folder `top` is exactly, if it is one.
fn folder_of(top: &str, group: &[&(String, PathBuf)]) -> Option<PathBuf> {
    let prefix = format!("{top}/");
    let mut wanted = std::collections::BTreeSet::new();
    let mut dir: Option<PathBuf> = None;
    for (zip_path, src) in group {
        let rel = zip_path.strip_prefix(&prefix)?;
        if is_bytecode(rel) {
            continue;
        }
        let root = src.to_str()?.strip_suffix(rel)?.strip_suffix('/')?;
        match &dir {
            Some(d) if d.as_os_str() != root => return None,
            Some(_) => {}
            None => dir = Some(PathBuf::from(root)),
        }
        wanted.insert(rel.to_string());
    }
    let dir = dir?;
    let mut present = std::collections::BTreeSet::new();
    list_files(&dir, "", &mut present).ok()?;
    (present == wanted).then_some(dir)
}

fn is_bytecode(rel: &str) -> bool {
    rel.ends_with(".pyc") || rel.split('/').any(|c| c == "__pycache__")
}

/// Every file under `dir` (links followed), `__pycache__` left out.
fn list_files(
    dir: &Path,
    rel: &str,
    out: &mut std::collections::BTreeSet<String>,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if std::fs::metadata(e.path())?.is_dir() {
            if name != "__pycache__" {
                list_files(&e.path(), &path, out)?;
            }
        } else if !is_bytecode(&path) {
            out.insert(path);
        }
    }
    Ok(())
}

/// The files to link: (zip path, source file) for `unit`.
fn links(o: &PackObserved, unit: &FunctionInputs) -> Vec<(String, PathBuf)> {
    unit.entries
        .iter()
        .map(|(p, id)| (p.to_string(), o.inputs.files[*id].path.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_the_zip_holds_whole_is_one_link_and_a_partial_one_is_not() {
        let d = tempfile::tempdir().unwrap();
        let pkg = d.path().join("package");
        for f in [
            "lib/a.py",
            "lib/sub/b.py",
            "lib/__pycache__/a.cpython-312.pyc",
            "part/x.py",
            "part/y.py",
        ] {
            std::fs::create_dir_all(pkg.join(f).parent().unwrap()).unwrap();
            std::fs::write(pkg.join(f), "").unwrap();
        }
        let at = |zip: &str, src: &str| (zip.to_string(), pkg.join(src));
        let files = vec![
            at("lib/a.py", "lib/a.py"),
            at("lib/sub/b.py", "lib/sub/b.py"),
            (
                "lib/__pycache__/a.cpython-312.pyc".to_string(),
                d.path().join("objects/k.pyc"),
            ),
            // part/y.py is left out of the zip (an exclude): part is linked file by file.
            at("part/x.py", "part/x.py"),
            ("index.py".to_string(), d.path().join("index.py")),
        ];
        let got = collapsed(&files);
        let names: Vec<&str> = got.iter().map(|(z, _)| z.as_str()).collect();
        assert_eq!(names, ["index.py", "lib", "part/x.py"]);
        assert_eq!(got[1].1, pkg.join("lib"));
    }

    #[test]
    fn a_handler_module_at_another_path_is_pointed_at() {
        let entries = ["index.py", "src/app.py", "lib/app.py.bak"];
        assert_eq!(module_path("pkg.mod"), "pkg/mod.py");
        assert_eq!(nearest(&entries, "app.py"), Some("src/app.py"));
        assert_eq!(nearest(&entries, "other.py"), None);
    }
}
