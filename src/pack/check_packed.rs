//! The import check on zips already packed (`artifact validate` when the
//! output folder holds a manifest): each function's zip, and its layers',
//! unpacked by the worker where Lambda puts them, its handler imported.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::bytecode::function_runtime;
use super::check::{check_env, failure_message, not_checked, skipped, worker, CheckResult, Job};
use super::manifest::{Manifest, MANIFEST};
use super::python::Interpreters;
use crate::config::Settings;
use crate::template::TemplateTarget;

/// None when nothing was packed; else each function's result, a failure
/// as the message pack gives.
/// `found`: the functions the templates create (validate has read them).
pub fn check_packed(
    settings: &Settings,
    found: &BTreeMap<String, TemplateTarget>,
) -> Option<Vec<Result<CheckResult, String>>> {
    let manifest = Manifest::load(&settings.pack.out.join(MANIFEST)).ok()?;
    let mut interps = Interpreters::load(None);
    let mut out = Vec::new();
    for f in &settings.functions {
        let Some(m) = manifest.functions.get(&f.name) else {
            continue;
        };
        let Some(t) = found.get(&f.deployed_name) else {
            out.push(Ok(skipped(
                &f.name,
                format!("no template creates {}", f.deployed_name),
            )));
            continue;
        };
        let Some(handler) = t.handler.clone() else {
            out.push(Ok(skipped(
                &f.name,
                "its template gives no Handler artifact can read".into(),
            )));
            continue;
        };
        let Some(runtime) = function_runtime(&settings.pack, f, found) else {
            out.push(Ok(skipped(&f.name, "runtime not known".into())));
            continue;
        };
        let Ok(interp) = interps.find(runtime, &settings.pack.python) else {
            out.push(Ok(skipped(
                &f.name,
                format!("no python3.{} on this host", runtime.minor),
            )));
            continue;
        };
        let layers: Vec<PathBuf> = f
            .layers
            .iter()
            .filter_map(|l| manifest.layers.get(l))
            .map(|l| settings.pack.out.join(&l.zip))
            .collect();
        let job = Job {
            name: &f.name,
            deployed: &f.deployed_name,
            handler,
            env: check_env(t),
            interp,
            unit: 0,
            layers: Vec::new(),
            key: String::new(),
        };
        out.push(check_zip(&job, settings.pack.out.join(&m.zip), &layers));
    }
    Some(out)
}

fn check_zip(j: &Job<'_>, zip: PathBuf, layers: &[PathBuf]) -> Result<CheckResult, String> {
    let fail = |why: String| not_checked(j, why);
    let tmp = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    let (task, opt) = (tmp.path().join("task"), tmp.path().join("opt"));
    std::fs::create_dir_all(&task).map_err(|e| fail(e.to_string()))?;
    let mut extract = vec![(zip, task.clone())];
    extract.extend(layers.iter().map(|l| (l.clone(), opt.clone())));
    let input = serde_json::json!({
        "paths": [&task, opt.join("python")],
        "handler": j.handler,
        "extract": extract,
    });
    let answer = worker(j, tmp.path(), &task, &input.to_string()).map_err(fail)?;
    if !answer.ok {
        return Err(failure_message(j, &answer, &[]));
    }
    Ok(CheckResult {
        function: j.name.to_string(),
        result: "passed".into(),
        reason: None,
        provided: answer.provided,
    })
}
