//! The local side of a sync: every file below the folder, its content hash
//! and the headers its rule gives it.
//!
//! Symlinks are followed only while they stay inside the folder; names must
//! be UTF-8 (S3 keys are); keys always use `/`.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::rules::{Headers, Rules};
use super::SyncError;

/// One local file to sync.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Path relative to the synced folder, `/`-separated.
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: [u8; 32],
    pub headers: Headers,
}

/// Lists and hashes every file below `dir`, sorted by relative path.
pub fn scan(dir: &Path, rules: &Rules) -> Result<Vec<LocalFile>, SyncError> {
    let meta = std::fs::metadata(dir).map_err(|_| SyncError::MissingDir {
        path: dir.to_path_buf(),
    })?;
    if !meta.is_dir() {
        return Err(SyncError::MissingDir {
            path: dir.to_path_buf(),
        });
    }
    let root = dir.canonicalize().map_err(|e| SyncError::io(dir, e))?;
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    seen.insert((meta.dev(), meta.ino()));
    walk(&root, &root, "", &mut found, &mut seen)?;
    found.sort();
    found
        .into_par_iter()
        .map(|(rel, path, size)| {
            let sha256 = sha256_file(&path)?;
            let headers = rules.headers_for(&rel);
            Ok(LocalFile {
                rel,
                path,
                size,
                sha256,
                headers,
            })
        })
        .collect()
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf, u64)>,
    seen: &mut HashSet<(u64, u64)>,
) -> Result<(), SyncError> {
    for entry in std::fs::read_dir(dir).map_err(|e| SyncError::io(dir, e))? {
        let entry = entry.map_err(|e| SyncError::io(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(SyncError::NonUtf8 { path });
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let mut meta = entry.metadata().map_err(|e| SyncError::io(&path, e))?;
        let mut target = path.clone();
        if meta.file_type().is_symlink() {
            target = path.canonicalize().map_err(|e| SyncError::io(&path, e))?;
            if !target.starts_with(root) {
                return Err(SyncError::LinkOutside { path, target });
            }
            meta = std::fs::metadata(&target).map_err(|e| SyncError::io(&target, e))?;
        }
        if meta.is_dir() {
            if seen.insert((meta.dev(), meta.ino())) {
                walk(root, &target, &rel, out, seen)?;
            }
        } else if meta.is_file() {
            out.push((rel, target, meta.len()));
        } else {
            return Err(SyncError::NotAFile { path });
        }
    }
    Ok(())
}

/// SHA-256 of a file's bytes, with the file named in the error.
pub fn sha256_file(path: &Path) -> Result<[u8; 32], SyncError> {
    crate::util::sha256_file(path).map_err(|e| SyncError::io(path, e))
}
