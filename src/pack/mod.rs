//! `artifact pack`: the Build stage's Lambda zips.
//!
//! Planning resolves every function's files, hashes their contents (skipping
//! reads the stat index vouches for), computes each zip's input hash and
//! decides which zips are already up to date. Applying compresses each
//! distinct file once, in parallel (or takes it from the cache of packed contents, `store`), writes
//! each stale zip to a temporary file and renames it into place, then writes
//! `manifest.json`. Same inputs give the same bytes on any machine, with any
//! thread count. It does not upload anything: that is `deploy-infra`.

mod apply;
mod blobs;
mod bytecode;
mod bytecode_index;
mod bytecode_keys;
mod bytecode_remote;
mod check;
mod check_packed;
mod child;
mod deps;
mod error;
mod hash;
mod inputs;
pub mod install;
mod install_log;
mod listing;
mod manifest;
pub mod observe;
mod options;
mod pack_writer;
mod paths;
pub mod plan;
pub mod provenance;
mod python;
mod remote;
mod report;
mod reuse;
mod sbom;
mod sha;
pub mod sign;
mod slim;
mod store;
mod stream;
pub mod zipfile;

use crate::config::Settings;
pub use plan::{PackPlan, ZipAction, ZipReason, ZipStep};

pub use apply::sbom_name;
pub use blobs::{compress, Codec};
pub use bytecode::BytecodeStats;
pub use check::CheckResult;
pub use check_packed::check_packed;
pub use error::PackError;
pub use manifest::BytecodeManifest;
pub(crate) use manifest::FORMAT_VERSION;
pub use manifest::{
    FunctionManifest, Manifest, LAMBDA_DIRECT_UPLOAD_MAX, LAMBDA_UNZIPPED_MAX, MANIFEST,
};
pub use options::PackOptions;
pub use remote::RemoteCache;
pub use report::{PackReport, RunStats};

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

/// Observe, plan, and unless `dry_run` apply. A dry run installs nothing.
fn run_in_pool(settings: &Settings, opts: &PackOptions) -> Result<PackReport, PackError> {
    let mut observed = observe::observe(settings, opts, !opts.dry_run)?;
    let scan = scan_inputs(settings, &mut observed, opts.dry_run)?;
    let inputs: Vec<plan::ZipInput<'_>> = observed
        .inputs
        .functions
        .iter()
        .zip(&observed.functions)
        .map(|(f, state)| plan::ZipInput {
            name: &f.name,
            layer: f.layer,
            state,
            entries: &f.entries,
            hashes: &observed.hashed.hashes,
            level: observed.level,
        })
        .collect();
    let installs = observed
        .installs
        .iter()
        .map(|i| plan::InstallStep {
            requirements: settings.shown(&i.requirements),
            target: i.target.describe(),
            runs: i.installed.as_ref().is_none_or(|x| !x.report.cached),
            used_by: i.used_by.clone(),
        })
        .collect();
    let plan = plan::plan(&inputs, observed.previous.as_ref(), installs);
    let mut stats = RunStats {
        out: observed.out.clone(),
        dry_run: opts.dry_run,
        written: plan.written().map(ZipStep::label).collect(),
        unchanged: plan
            .zips
            .iter()
            .filter(|z| z.action == ZipAction::Keep)
            .map(ZipStep::label)
            .collect(),
        removed: plan
            .removed
            .iter()
            .map(|r| {
                if r.layer {
                    format!("layer:{}", r.function)
                } else {
                    r.function.clone()
                }
            })
            .collect(),
        files: observed.sources,
        files_read: observed.hashed.read,
        requirements_cached: (!observed.installs.is_empty()).then(|| {
            observed
                .installs
                .iter()
                .all(|i| i.installed.as_ref().is_some_and(|x| x.report.cached))
        }),
        installs: observed
            .installs
            .iter()
            .filter_map(|i| Some(i.installed.as_ref()?.report.clone()))
            .collect(),
        scan,
        bytecode: observed.bytecode.stats.clone(),
        warnings: observed.bytecode.warnings.clone(),
        ..RunStats::default()
    };
    let manifest = if opts.dry_run {
        dry_run_manifest(settings, &observed, &plan)
    } else {
        let slimmed = slimmed_any(&observed);
        let wanted = check::wanted(settings, opts.check);
        if slimmed && wanted == Some(false) {
            return Err(PackError::SlimUnchecked(
                "the import check is off (--no-check or [pack] check = false)".into(),
            ));
        }
        let manifest = apply::apply(settings, &observed, &plan, opts, &mut stats)?;
        if wanted != Some(false) {
            let forced = wanted == Some(true);
            // A slimmed zip ships only once it is proven to import.
            stats.checks =
                check::run(settings, &observed, forced || slimmed).map_err(|e| {
                    match (slimmed, e) {
                        (true, PackError::ImportCheck(why)) => PackError::SlimUnchecked(why),
                        (_, e) => e,
                    }
                })?;
        }
        manifest
    };
    Ok(PackReport {
        manifest,
        run: stats,
        plan: Some(plan),
    })
}

/// Whether `[pack] slim` left something out of some zip.
fn slimmed_any(o: &observe::PackObserved) -> bool {
    o.inputs.functions.iter().any(|f| f.slimmed.is_some())
}

/// The secret scan over every file about to be packed: finished here for
/// the files the hash pass did not read (each content is read at most once,
/// ever: clean contents are remembered by hash in the cache folder).
fn scan_inputs(
    settings: &Settings,
    o: &mut observe::PackObserved,
    dry_run: bool,
) -> Result<Option<crate::scan::ScanStats>, PackError> {
    let Some((mut scanner, scanned)) = o.scan.take() else {
        return Ok(None);
    };
    if dry_run {
        scanner = scanner.remembering_nothing();
    }
    let files: Vec<crate::scan::ScanFile> = o
        .inputs
        .files
        .iter()
        .zip(&o.hashed.hashes)
        .map(|(f, h)| crate::scan::ScanFile {
            display: f.display.clone(),
            path: f.path.clone(),
            key: *h,
        })
        .collect();
    Ok(Some(scanner.finish(
        &files,
        scanned,
        &settings.scan.allow,
    )?))
}

/// The manifest a dry run reports: kept zips as they are, zips to write without sizes.
fn dry_run_manifest(settings: &Settings, o: &observe::PackObserved, plan: &PackPlan) -> Manifest {
    let mut manifest = Manifest::new(settings);
    for (i, f) in o.inputs.functions.iter().enumerate() {
        let m = match (&plan.zips[i].action, &o.functions[i].previous) {
            (ZipAction::Keep, Some(m)) => m.clone(),
            _ => apply::manifest_entry(settings, o, i, 0, &[]),
        };
        manifest.section(f.layer).insert(f.name.clone(), m);
    }
    manifest
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use apply::direct_upload_warnings;

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
            sbom: None,
            bytecode: None,
            slimmed: None,
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
