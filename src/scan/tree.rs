//! `validate`'s secret scan over the source tree: the folders pack reads
//! (functions' source, dependency folders), the templates, and the built
//! site when there is one. Build output, the cache and version-control and
//! tool folders are skipped.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{ScanFile, ScanStats, Scanned, Scanner, SecretsFound};
use crate::config::Settings;

/// Folder names never walked.
const SKIPPED: &[&str] = &[
    ".git",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
];

/// The folders `validate` scans, existing ones only, none inside another.
fn roots(settings: &Settings) -> Vec<PathBuf> {
    let p = &settings.pack;
    let mut dirs: Vec<PathBuf> = vec![p.source.clone(), settings.infra.templates.clone()];
    dirs.extend(p.dependencies.clone());
    dirs.extend(
        settings
            .layers
            .iter()
            .filter_map(|l| l.dependencies.clone()),
    );
    dirs.push(settings.frontend.dist.clone());
    // What functions take from outside pack.source: their own folders, the
    // paths every function shares, and files named through `..`.
    dirs.extend(settings.functions.iter().map(|f| f.source.clone()));
    let shared = p.shared.iter().map(|s| settings.root.join(&s.path));
    let outside = settings
        .functions
        .iter()
        .flat_map(|f| f.files.iter().map(|s| f.source.join(&s.path)));
    dirs.extend(
        shared
            .chain(outside)
            .map(|d| crate::util::normalize(&d))
            .filter(|d| !d.starts_with(&p.source)),
    );
    dirs.retain(|d| d.is_dir());
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

/// Every file below `dir`, following links; a folder reached twice (a link
/// loop, or two links to one folder) is walked once.
fn walk(dir: &Path, skip: &[PathBuf], seen: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(real) = dir.canonicalize() else { return };
    if !seen.insert(real) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        if path.is_dir() {
            if !SKIPPED.iter().any(|s| name == *s) && !skip.contains(&path) {
                walk(&path, skip, seen, out);
            }
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// Scans the source tree; clean contents are remembered in the pack cache.
/// Each file is read once: scanned while its bytes are in memory for its hash.
pub fn scan_tree(settings: &Settings) -> Result<ScanStats, SecretsFound> {
    let skip = [settings.pack.out.clone(), settings.pack.cache_dir.clone()];
    let (mut paths, mut seen) = (Vec::new(), HashSet::new());
    for root in roots(settings) {
        walk(&root, &skip, &mut seen, &mut paths);
    }
    let scanner = Scanner::load(Some(&settings.pack.cache_dir));
    let read: Vec<(ScanFile, Option<Scanned>)> = paths
        .par_iter()
        .filter_map(|path| {
            let bytes = std::fs::read(path).ok()?;
            let file = ScanFile {
                display: path
                    .strip_prefix(&settings.root)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .replace('\\', "/"),
                path: path.clone(),
                key: *blake3::hash(&bytes).as_bytes(),
            };
            let scanned = scanner.inspect(&file.display, &file.key, &bytes);
            Some((file, scanned))
        })
        .collect();
    let mut files = Vec::with_capacity(read.len());
    let mut scanned = HashMap::new();
    for (file, s) in read {
        if let Some(s) = s {
            scanned.insert(file.key, s);
        }
        files.push(file);
    }
    scanner.finish(&files, scanned, &settings.scan.allow)
}
