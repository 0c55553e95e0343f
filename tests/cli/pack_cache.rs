//! The compressed-content cache of `artifact pack`: shared by concurrent
//! packs, damaged on purpose, never the cause of a wrong zip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A new copy of the sample in a temporary folder.
fn clone_of(s: &Sample) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let clone = parent.path().join("clone");
    copy_tree(s.dir.path(), &clone);
    (parent, clone)
}

fn pack_in(dir: &Path, args: &[&str]) -> artifact::pack::PackReport {
    let mut all = vec!["pack", "--json"];
    all.extend_from_slice(args);
    let out = artifact(dir, &all);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The cache's files with the given ending.
fn cache_files(cache: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn packs_running_at_once_share_one_cache_without_damage() {
    let s = Sample::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let clones: Vec<_> = (0..4).map(|_| clone_of(&s)).collect();
    // All four start together, each with an empty cache to fill.
    let children: Vec<_> = clones
        .iter()
        .map(|(_, dir)| {
            Command::new(env!("CARGO_BIN_EXE_artifact"))
                .args(["pack", "--json", "--cache-dir", cache_arg])
                .current_dir(dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let reports: Vec<artifact::pack::PackReport> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert_success(&out);
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    for r in &reports[1..] {
        assert_eq!(r.manifest, reports[0].manifest);
    }
    // Whatever they wrote, a later pack finds every content in it.
    let (_keep, fresh) = clone_of(&s);
    let r = pack_in(&fresh, &["--cache-dir", cache_arg]);
    assert_eq!(r.run.compressed, 0, "{:?}", r.run);
    assert!(r.run.from_cache > 0);
    assert_eq!(r.manifest, reports[0].manifest);
    assert!(
        !cache_files(cache.path(), "pack").is_empty(),
        "{:?}",
        files_below(cache.path())
    );
    let temp: Vec<String> = files_below(cache.path())
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(temp.is_empty(), "{temp:?}");
}

/// Cuts `path` to `len` bytes.
fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn a_truncated_cache_costs_recompression_never_a_wrong_zip() {
    let s = Sample::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let first = s.pack(&["--cache-dir", cache_arg]);
    let total = first.run.compressed;
    assert!(total > 4, "{:?}", first.run);
    let pack = cache_files(cache.path(), "pack").pop().unwrap();
    let idx = cache_files(cache.path(), "idx").pop().unwrap();
    // The pack loses the second half of its bytes, the index half of a record.
    let pack_len = std::fs::metadata(&pack).unwrap().len();
    truncate(&pack, pack_len / 2 + 7);
    let idx_len = std::fs::metadata(&idx).unwrap().len();
    truncate(&idx, idx_len - 40);

    let (_keep, fresh) = clone_of(&s);
    let r = pack_in(&fresh, &["--cache-dir", cache_arg]);
    assert_eq!(r.manifest, first.manifest, "the zips are the same bytes");
    assert!(r.run.compressed > 0, "{:?}", r.run);
    assert!(r.run.from_cache > 0, "{:?}", r.run);
    assert_eq!(r.run.compressed + r.run.from_cache, total);

    // What was compressed again is cached again: the next clone needs nothing.
    let (_keep2, again) = clone_of(&s);
    let r = pack_in(&again, &["--cache-dir", cache_arg]);
    assert_eq!(r.run.compressed, 0, "{:?}", r.run);
    assert_eq!(r.manifest, first.manifest);
}

#[test]
fn garbage_in_the_cache_folder_is_ignored() {
    let s = Sample::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let packs = cache.path().join("packs");
    std::fs::create_dir_all(&packs).unwrap();
    std::fs::write(packs.join("0123.idx"), b"ARTPIDX1 not records").unwrap();
    std::fs::write(packs.join("0123.pack"), b"nothing").unwrap();
    std::fs::write(packs.join("4567.idx"), b"").unwrap();
    let first = s.pack(&["--cache-dir", cache_arg]);
    let nocache = {
        let (_k, d) = clone_of(&s);
        pack_in(&d, &["--no-cache"])
    };
    assert_eq!(first.manifest, nocache.manifest);
    assert_eq!(first.run.from_cache, 0);
}
