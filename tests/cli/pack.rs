//! `artifact pack` end to end.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::common::*;

/// One zip entry as Python's `zipfile` (an independent reader) sees it.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
struct Seen {
    name: String,
    mode: u32,
    sha256: Option<String>,
    date: [u32; 6],
}

fn read_with_python(zip: &Path) -> Vec<Seen> {
    const SCRIPT: &str = r#"
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    out = []
    for i in z.infolist():
        data = None if i.is_dir() else hashlib.sha256(z.read(i)).hexdigest()
        out.append({"name": i.filename, "mode": i.external_attr >> 16, "sha256": data, "date": list(i.date_time)})
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(zip)
        .output()
        .expect("python3 is needed to read zips independently");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256_file(p: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(p).unwrap()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a function's zip must hold: zip path -> (mode, sha256 of the source).
fn expected(s: &Sample, own: &[(&str, &str)]) -> BTreeMap<String, (u32, Option<String>)> {
    let mut m = BTreeMap::new();
    let pkg = s.path("lambda/package");
    for rel in files_below(&pkg) {
        if rel.contains("__pycache__") || rel.ends_with(".pyc") {
            continue;
        }
        let p = pkg.join(&rel);
        let exec = std::fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0;
        let mode = if exec { 0o100755 } else { 0o100644 };
        m.insert(rel, (mode, Some(sha256_file(&p))));
    }
    for (zip_path, src) in own {
        m.insert(
            zip_path.to_string(),
            (0o100644, Some(sha256_file(&s.path(src)))),
        );
    }
    let dirs: Vec<String> = m
        .keys()
        .flat_map(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            (1..parts.len())
                .map(|n| format!("{}/", parts[..n].join("/")))
                .collect::<Vec<_>>()
        })
        .collect();
    for d in dirs {
        m.insert(d, (0o040755, None));
    }
    m
}

#[test]
fn zips_unpack_to_exactly_the_expected_paths_bytes_and_modes() {
    let s = Sample::new().without_bytecode();
    // A handler saved with a private mode must still be readable by Lambda.
    std::fs::set_permissions(s.path("lambda/index.py"), PermissionsExt::from_mode(0o600)).unwrap();
    // Bytecode caches are left out by default.
    std::fs::create_dir_all(s.path("lambda/package/crhelper/__pycache__")).unwrap();
    std::fs::write(
        s.path("lambda/package/crhelper/__pycache__/x.cpython-312.pyc"),
        b"\0",
    )
    .unwrap();
    let report = s.pack(&[]);
    assert_eq!(report.run.written, FUNCTIONS);

    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "api-handler",
            vec![
                ("index.py", "lambda/index.py"),
                ("rbac_middleware.py", "lambda/rbac_middleware.py"),
            ],
        ),
        (
            "execution-finder",
            vec![("execution_finder.py", "lambda/poller/execution_finder.py")],
        ),
        (
            "execution-poller",
            vec![("execution_poller.py", "lambda/poller/execution_poller.py")],
        ),
        (
            "frontend-builder",
            vec![("build_and_deploy.py", "lambda/build_and_deploy.py")],
        ),
        (
            "orchestration-stepfunctions",
            vec![(
                "orchestration_stepfunctions.py",
                "lambda/orchestration_stepfunctions.py",
            )],
        ),
    ];
    for (name, own) in cases {
        let zip = s.path(&format!("build/lambda/{name}.zip"));
        let seen = read_with_python(&zip);
        let names: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{name}: entries in byte-wise order");
        let got: BTreeMap<String, (u32, Option<String>)> = seen
            .iter()
            .map(|e| (e.name.clone(), (e.mode, e.sha256.clone())))
            .collect();
        assert_eq!(got, expected(&s, &own), "{name}");
        assert!(seen.iter().all(|e| e.date == [1980, 1, 1, 0, 0, 0]));
        assert!(got.contains_key("bin/crhelper-info"));
        assert_eq!(got["bin/crhelper-info"].0, 0o100755);

        let m = &report.manifest.functions[name];
        assert_eq!(m.sha256, sha256_file(&zip));
        assert_eq!(m.zip_size, std::fs::metadata(&zip).unwrap().len());
        assert_eq!(
            m.file_count,
            seen.iter().filter(|e| e.sha256.is_some()).count()
        );
        assert_eq!(
            m.deployed_name,
            format!("aws-elasticdrs-orchestrator-dev-{name}")
        );
    }
    // The manifest on disk is what --json printed, minus the run's own figures.
    let on_disk = artifact::pack::Manifest::load(&s.path("build/lambda/manifest.json")).unwrap();
    assert_eq!(on_disk, report.manifest);
}

#[test]
fn code_sha256_is_base64_of_the_zip_sha256() {
    let s = Sample::new();
    let report = s.pack(&[]);
    let m = &report.manifest.functions["api-handler"];
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,hashlib,sys;print(base64.b64encode(hashlib.sha256(open(sys.argv[1],'rb').read()).digest()).decode())",
        ])
        .arg(s.path("build/lambda/api-handler.zip"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), m.code_sha256);
}

fn zip_bytes(s: &Sample) -> BTreeMap<String, Vec<u8>> {
    FUNCTIONS
        .iter()
        .map(|f| {
            let p = s.path(&format!("build/lambda/{f}.zip"));
            (f.to_string(), std::fs::read(p).unwrap())
        })
        .collect()
}

#[test]
fn same_inputs_give_identical_zips_across_folders_mtimes_umask_and_jobs() {
    let a = Sample::new();
    a.pack(&["--jobs", "1"]);

    let b = Sample::new();
    // Different mtimes, permissions that differ only in bits we normalise, another umask.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for rel in files_below(b.dir.path()) {
        let f = std::fs::File::options()
            .write(true)
            .open(b.path(&rel))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    std::fs::set_permissions(b.path("lambda/index.py"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        b.path("lambda/rbac_middleware.py"),
        PermissionsExt::from_mode(0o664),
    )
    .unwrap();
    let out = Command::new("sh")
        .args(["-c", "umask 077 && exec \"$0\" pack --jobs 4 --no-cache"])
        .arg(env!("CARGO_BIN_EXE_artifact"))
        .current_dir(b.dir.path())
        .output()
        .unwrap();
    assert_success(&out);

    assert_eq!(zip_bytes(&a), zip_bytes(&b));
    assert_eq!(
        std::fs::read(a.path("build/lambda/manifest.json")).unwrap(),
        std::fs::read(b.path("build/lambda/manifest.json")).unwrap()
    );
    // The output is readable by the next stage whatever the umask.
    let mode = std::fs::metadata(b.path("build/lambda/api-handler.zip"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

fn zip_identity(s: &Sample, f: &str) -> (u64, i64, i64) {
    let m = std::fs::metadata(s.path(&format!("build/lambda/{f}.zip"))).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

#[test]
fn nothing_changed_rewrites_no_zip() {
    let s = Sample::new();
    s.pack(&[]);
    let before: Vec<_> = FUNCTIONS.iter().map(|f| zip_identity(&s, f)).collect();
    let manifest_before = zip_identity_path(&s.path("build/lambda/manifest.json"));
    let report = s.pack(&[]);
    assert!(report.run.written.is_empty(), "{:?}", report.run.written);
    assert_eq!(report.run.unchanged, FUNCTIONS);
    assert_eq!(report.run.compressed + report.run.from_cache, 0);
    let after: Vec<_> = FUNCTIONS.iter().map(|f| zip_identity(&s, f)).collect();
    assert_eq!(before, after);
    assert_eq!(
        manifest_before,
        zip_identity_path(&s.path("build/lambda/manifest.json"))
    );
}

fn zip_identity_path(p: &Path) -> (u64, i64, i64) {
    let m = std::fs::metadata(p).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

#[test]
fn editing_one_handler_rewrites_only_that_zip() {
    let s = Sample::new().without_bytecode();
    let first = s.pack(&[]);
    let before: Vec<_> = FUNCTIONS.iter().map(|f| zip_identity(&s, f)).collect();
    s.edit("lambda/poller/execution_poller.py", |t| {
        t.replace("POLLING", "POLLED")
    });
    let report = s.pack(&[]);
    assert_eq!(report.run.written, ["execution-poller"]);
    // Only the edited file is compressed again; the rest is copied out of the previous zip.
    assert_eq!(report.run.compressed, 1);
    assert_eq!(report.run.from_cache, 0, "{:?}", report.run);
    assert!(report.run.from_previous_zip >= 5, "{:?}", report.run);
    for (i, f) in FUNCTIONS.iter().enumerate() {
        let same = zip_identity(&s, f) == before[i];
        assert_eq!(same, *f != "execution-poller", "{f}");
    }
    assert_ne!(
        first.manifest.functions["execution-poller"].sha256,
        report.manifest.functions["execution-poller"].sha256
    );
    let seen = read_with_python(&s.path("build/lambda/execution-poller.zip"));
    let poller = seen
        .iter()
        .find(|e| e.name == "execution_poller.py")
        .unwrap();
    assert_eq!(
        poller.sha256.as_deref(),
        Some(sha256_file(&s.path("lambda/poller/execution_poller.py")).as_str())
    );
}

#[test]
fn a_previous_zip_changed_behind_our_back_is_not_reused() {
    let s = Sample::new();
    s.pack(&[]);
    // Same size, other bytes: the layout record no longer vouches for it. (A
    // moment passes first, as it does for any real edit: the clock behind
    // mtimes ticks in milliseconds.)
    std::thread::sleep(Duration::from_millis(50));
    let zip = s.path("build/lambda/execution-poller.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let n = bytes.len();
    bytes[n / 2..n / 2 + 64].fill(0);
    std::fs::write(&zip, &bytes).unwrap();
    s.edit("lambda/poller/execution_poller.py", |t| {
        t.replace("POLLING", "POLLED")
    });
    let report = s.pack(&[]);
    assert_eq!(report.run.written, ["execution-poller"]);
    assert_eq!(report.run.from_previous_zip, 0, "{:?}", report.run);
    assert!(report.run.from_cache >= 5, "{:?}", report.run);
    let seen = read_with_python(&zip);
    let crhelper = seen
        .iter()
        .find(|e| e.name == "crhelper/resource_helper.py")
        .unwrap();
    assert_eq!(
        crhelper.sha256.as_deref(),
        Some(sha256_file(&s.path("lambda/package/crhelper/resource_helper.py")).as_str())
    );
}

#[test]
fn a_damaged_zip_is_rebuilt_even_when_no_input_changed() {
    for extra in [&[][..], &["--no-cache"][..]] {
        let s = Sample::new();
        let first = s.pack(extra);
        let zip = s.path("build/lambda/api-handler.zip");
        std::thread::sleep(Duration::from_millis(50));
        let mut bytes = std::fs::read(&zip).unwrap();
        let n = bytes.len();
        bytes[n / 3] ^= 0xff;
        std::fs::write(&zip, &bytes).unwrap();
        let report = s.pack(extra);
        assert_eq!(report.run.written, ["api-handler"], "{extra:?}");
        assert_eq!(report.manifest, first.manifest);
        assert_eq!(
            sha256_file(&zip),
            first.manifest.functions["api-handler"].sha256
        );
    }
}

#[test]
fn a_fresh_checkout_reuses_the_compressed_cache() {
    let s = Sample::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let first = s.pack(&["--cache-dir", cache_arg]);
    assert!(first.run.compressed > 0);
    // A new clone: new folder, new mtimes, no build output; the cache survived.
    let fresh = tempfile::tempdir().unwrap();
    let clone = fresh.path().join("clone");
    copy_tree(s.dir.path(), &clone);
    assert!(!clone.join("build").exists());
    let out = artifact(&clone, &["pack", "--json", "--cache-dir", cache_arg]);
    assert_success(&out);
    let second: artifact::pack::PackReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second.run.written.len(), 5);
    assert_eq!(second.run.compressed, 0, "{:?}", second.run);
    assert_eq!(second.run.from_cache, first.run.compressed);
    assert_eq!(second.manifest, first.manifest);
}

#[test]
fn prune_cache_drops_only_what_this_pack_did_not_use() {
    let s = Sample::new().without_bytecode();
    let first = s.pack(&[]);
    s.edit("lambda/index.py", |t| format!("{t}\n# edited\n"));
    let r = s.pack(&["--prune-cache"]);
    assert_eq!(r.run.pruned, 1, "the old index.py: {:?}", r.run);
    assert!(r.run.pruned_bytes > 0);
    // Everything the current zips hold is still cached: a new clone compresses nothing.
    std::fs::remove_dir_all(s.path("build")).unwrap();
    let r = s.pack(&[]);
    assert_eq!(r.run.compressed, 0, "{:?}", r.run);
    assert_eq!(r.run.from_cache, first.run.compressed);
}

#[test]
fn no_cache_writes_no_cache_folder() {
    let s = Sample::new();
    s.pack(&["--no-cache"]);
    assert!(!s.path(".artifact-cache").exists());
    // Five zips, their SBOMs, the manifest and the provenance.
    assert_eq!(files_below(&s.path("build/lambda")).len(), 12);
}

#[test]
fn a_function_removed_from_the_project_file_loses_its_zip() {
    let s = Sample::new();
    s.pack(&[]);
    s.edit("artifact.toml", |t| {
        t.replace(
            "[functions.frontend-builder]\nfiles = [\"build_and_deploy.py\"]\n",
            "",
        )
    });
    let report = s.pack(&[]);
    assert_eq!(report.run.removed, ["frontend-builder"]);
    assert!(report.run.written.is_empty());
    assert!(!s.path("build/lambda/frontend-builder.zip").exists());
    assert!(!s.path("build/lambda/frontend-builder.cdx.json").exists());
    assert!(!report.manifest.functions.contains_key("frontend-builder"));
}

#[test]
fn a_folder_entry_packs_its_whole_tree_and_dependencies_can_be_refused() {
    let s = Sample::new();
    s.edit("artifact.toml", |t| {
        format!("{t}\n[functions.poller-bundle]\nfiles = [\"poller\"]\ndependencies = false\n")
    });
    let report = s.pack(&[]);
    let seen = read_with_python(&s.path("build/lambda/poller-bundle.zip"));
    let names: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "poller/",
            "poller/execution_finder.py",
            "poller/execution_poller.py"
        ]
    );
    assert_eq!(report.manifest.functions["poller-bundle"].file_count, 2);
}

#[test]
fn dry_run_writes_nothing() {
    let s = Sample::new();
    let report = s.pack(&["--dry-run"]);
    assert_eq!(report.run.written, FUNCTIONS);
    assert!(!s.path("build").exists());
    // Not even the secret scan's memo of clean contents, though it scanned.
    assert!(report.run.scan.as_ref().is_some_and(|s| s.scanned > 0));
    assert!(
        !s.path(".artifact-cache").exists(),
        "a dry run wrote to the cache"
    );
}

#[test]
fn human_summary_goes_to_stderr_and_stdout_stays_empty() {
    let s = Sample::new();
    let out = s.run(&["pack"]);
    assert_success(&out);
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrote 5 of 5 zips"), "{err}");
}

// ---- requirements ----------------------------------------------------------

/// `lambda/requirements.txt` naming a wheel built by hand.
fn require_tiny_wheel(s: &Sample) {
    let wheel = crate::install::wheelhouse().join("purepkg-1.0-py3-none-any.whl");
    std::fs::write(
        s.path("lambda/requirements.txt"),
        format!("{}\n", wheel.display()),
    )
    .unwrap();
}

#[test]
fn requirements_are_installed_once_and_then_reused() {
    let s = Sample::new().without_bytecode();
    require_tiny_wheel(&s);
    s.edit("artifact.toml", |t| {
        t.replace(
            "dependencies = \"lambda/package\"",
            "requirements = \"lambda/requirements.txt\"\npip_args = [\"--no-index\"]",
        )
    });
    let first = s.pack(&[]);
    assert_eq!(first.run.requirements_cached, Some(false));
    let seen = read_with_python(&s.path("build/lambda/api-handler.zip"));
    let init = seen
        .iter()
        .find(|e| e.name == "purepkg/__init__.py")
        .unwrap();
    assert_eq!(init.mode, 0o100644);
    assert!(seen.iter().any(|e| e.name == "index.py"));
    // pip's own bookkeeping under the target is packed as pip left it, but no bytecode.
    assert!(!seen.iter().any(|e| e.name.ends_with(".pyc")));

    let second = s.pack(&[]);
    assert_eq!(second.run.requirements_cached, Some(true));
    assert!(second.run.written.is_empty());
}

#[test]
fn a_dry_run_never_runs_the_installer() {
    let s = Sample::new();
    require_tiny_wheel(&s);
    // An interpreter that records any pip run and refuses it.
    let marker = s.path("pip-ran");
    let python = s.path("python-spy");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\ncase \"$*\" in *\"-m pip\"*) touch {}; exit 1;; esac\nexec python3 \"$@\"\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.edit("artifact.toml", |t| {
        t.replace(
            "out = \"build/lambda\"",
            &format!(
                "out = \"build/lambda\"\nrequirements = \"lambda/requirements.txt\"\npip_args = [\"--no-index\"]\npython = \"{}\"",
                python.display()
            ),
        )
    });
    let report = s.pack(&["--dry-run"]);
    assert!(!marker.exists(), "pip ran in a dry run");
    let plan = report.plan.unwrap();
    assert!(plan.installs[0].runs);
    assert_eq!(plan.zips.len(), FUNCTIONS.len());
    assert!(plan
        .zips
        .iter()
        .all(|z| z.reason == artifact::pack::ZipReason::DependenciesPending));
    assert!(!s.path("build").exists());
    assert!(!s.path(".artifact-cache/pip").exists());
}

#[test]
fn a_failing_pip_install_is_an_error_naming_the_requirements() {
    let s = Sample::new();
    std::fs::write(
        s.path("lambda/requirements.txt"),
        "no-such-package-xyz==1.0\n",
    )
    .unwrap();
    s.edit("artifact.toml", |t| {
        t.replace(
            "dependencies = \"lambda/package\"",
            "requirements = \"lambda/requirements.txt\"\npip_args = [\"--no-index\"]",
        )
    });
    let err = assert_failure(&s.run(&["pack"]));
    assert!(err.contains("requirements.txt"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!s.path("build").exists());
}

#[test]
fn temporary_files_left_by_a_killed_pack_are_removed_by_the_next() {
    let s = Sample::new();
    s.pack(&[]);
    // A pid above the kernel's limit is never running: this is a dead pack's half-written zip.
    let stale = s.path("build/lambda/.artifact-99999999-x1.zip.tmp");
    std::fs::write(&stale, "half a zip").unwrap();
    let report = s.pack(&[]);
    assert!(report.run.written.is_empty());
    assert!(!stale.exists(), "the leftover is removed");
    let left: Vec<String> = files_below(&s.path("build/lambda"))
        .into_iter()
        .filter(|f| f.contains(".artifact-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_symlink_loop_is_not_followed_and_a_linked_folder_is_packed_where_it_is_linked() {
    let s = Sample::new();
    // A link back to its own folder, and a link to a sibling folder.
    std::os::unix::fs::symlink("..", s.path("lambda/package/crhelper/up")).unwrap();
    std::os::unix::fs::symlink("crhelper", s.path("lambda/package/alias")).unwrap();
    let report = s.pack(&[]);
    let seen = read_with_python(&s.path("build/lambda/api-handler.zip"));
    let names: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"crhelper/resource_helper.py"), "{names:?}");
    assert!(names.contains(&"alias/resource_helper.py"), "{names:?}");
    // The loop is cut where it comes back to a folder being walked.
    assert!(
        !names.iter().any(|n| n.contains("up/crhelper/up/")),
        "{names:?}"
    );
    // The same bytes again: deterministic whatever the walk's thread count.
    let again = s.pack(&["--jobs", "1", "--no-cache", "--out", "build/again"]);
    assert_eq!(again.run.written.len(), 5);
    assert_eq!(
        again.manifest.functions["api-handler"].sha256,
        report.manifest.functions["api-handler"].sha256
    );
}

#[test]
fn after_edits_anywhere_in_a_zip_the_manifest_hash_is_the_zips() {
    let s = Sample::new();
    s.pack(&[]);
    // A large file late in the zip, so that its checkpoints matter.
    let big: String = (0..60_000)
        .map(|i| format!("V{i} = {}\n", i * 7919 % 10007))
        .collect();
    std::fs::write(s.path("lambda/package/zz_big.py"), &big).unwrap();
    s.pack(&[]);
    // (file, text added at its end or, with `true`, at its start)
    let edits = [
        ("lambda/index.py", "\n# one\n", false),
        ("lambda/package/zz_big.py", "W = 1\n", false),
        ("lambda/package/crhelper/__init__.py", "# first\n", true),
    ];
    for (file, text, at_start) in edits {
        s.edit(file, |t| {
            if at_start {
                format!("{text}{t}")
            } else {
                format!("{t}{text}")
            }
        });
        let r = s.pack(&[]);
        assert!(!r.run.written.is_empty(), "{file}");
        for (name, m) in &r.manifest.functions {
            let zip = s.path(&format!("build/lambda/{}", m.zip));
            assert_eq!(sha256_file(&zip), m.sha256, "{name} after editing {file}");
        }
        // And the same bytes as a pack from scratch.
        let fresh = s.pack(&["--no-cache", "--out", "build/fresh"]);
        assert_eq!(fresh.manifest.functions, r.manifest.functions);
        std::fs::remove_dir_all(s.path("build/fresh")).unwrap();
    }
}

#[test]
fn provenance_names_every_zip_and_verify_refuses_a_changed_one() {
    let s = Sample::new();
    let report = s.pack(&[]);
    let path = s.path("build/lambda/provenance.intoto.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let subjects = artifact::pack::provenance::parse(&text, None)
        .unwrap()
        .subjects();
    assert_eq!(subjects.len(), FUNCTIONS.len());
    for m in report.manifest.functions.values() {
        assert_eq!(subjects[&m.zip], m.sha256, "{}", m.zip);
    }
    assert!(text.contains("https://slsa.dev/provenance/v1"));
    // The same inputs give the same line.
    std::fs::remove_dir_all(s.path("build")).unwrap();
    s.pack(&[]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    let ok = s.run(&["verify", "build/lambda/api-handler.zip"]);
    assert_success(&ok);
    // One byte changed, same size: refused, naming the zip.
    let zip = s.path("build/lambda/api-handler.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&zip, bytes).unwrap();
    let err = assert_failure(&s.run(&["verify", "build/lambda/api-handler.zip"]));
    assert!(err.contains("api-handler.zip: its SHA-256 is"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn verify_json_gives_the_hint_as_the_hint() {
    let s = Sample::new();
    s.pack(&[]);
    std::fs::remove_file(s.path("build/lambda/provenance.intoto.jsonl")).unwrap();
    let out = s.run(&["verify", "--json", "build/lambda/api-handler.zip"]);
    assert!(!out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.starts_with("no provenance.intoto.jsonl beside"),
        "{doc}"
    );
    assert!(!error.contains("hint:"), "{doc}");
    assert!(
        doc["hint"]
            .as_str()
            .is_some_and(|h| h.contains("artifact pack writes it")),
        "{doc}"
    );
    // People still read both lines.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: no provenance") && err.contains("\nhint: artifact pack writes it"),
        "{err}"
    );
}

/// `path` validates against the CycloneDX 1.5 JSON schema (the copy
/// cyclonedx-python-lib ships, with the SPDX and JSF schemas it refers to).
pub(crate) fn assert_valid_cyclonedx(path: &std::path::Path) {
    crate::local_aws::server(); // the venv, with jsonschema and cyclonedx-python-lib
    let out = std::process::Command::new(repo().join(".venv/bin/python"))
        .arg("-c")
        .arg(
            r#"
import json, sys, pathlib, jsonschema, referencing, cyclonedx
res = pathlib.Path(cyclonedx.__file__).parent / 'schema' / '_res'
schemas = {}
for name in ['bom-1.5.SNAPSHOT.schema.json', 'spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json']:
    doc = json.loads((res / name).read_text())
    schemas[name] = doc
    schemas[name.replace('.SNAPSHOT', '')] = doc
import urllib.parse
schema = schemas['bom-1.5.schema.json']
base = schema.get('$id', '')
def resource(v):
    return referencing.Resource.from_contents(v, default_specification=referencing.jsonschema.DRAFT7)
pairs = []
for k, v in schemas.items():
    pairs += [(k, resource(v)), (urllib.parse.urljoin(base, k), resource(v))]
    if '$id' in v:
        pairs.append((v['$id'], resource(v)))
registry = referencing.Registry().with_resources(pairs)
v = jsonschema.Draft7Validator(schema, registry=registry)
errors = sorted(v.iter_errors(json.loads(pathlib.Path(sys.argv[1]).read_text())), key=str)
for e in errors[:5]:
    print(list(e.absolute_path), e.message)
sys.exit(1 if errors else 0)
"#,
        )
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not CycloneDX 1.5:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file edited after install is listed with the hash of its bytes as
/// zipped, not the one RECORD keeps; RECORD's files outside the zip are not
/// listed; licences map to SPDX ids; the SBOM validates against the schema.
#[test]
fn the_sbom_describes_the_bytes_zipped_not_what_record_says() {
    let s = Sample::new();
    let info = s.path("lambda/package/crhelper-2.0.11.dist-info");
    std::fs::write(
        info.join("RECORD"),
        "crhelper/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
         ../../bin/normalizer,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
         crhelper-2.0.11.dist-info/RECORD,,\n",
    )
    .unwrap();
    s.edit("lambda/package/crhelper-2.0.11.dist-info/METADATA", |t| {
        t.replacen(
            "\nVersion:",
            "\nLicense: Apache Software License\nVersion:",
            1,
        )
    });
    s.edit("lambda/package/crhelper/__init__.py", |t| {
        format!("{t}# edited after install\n")
    });
    s.pack(&[]);
    let path = s.path("build/lambda/api-handler.cdx.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let text = doc.to_string();
    let crhelper = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "crhelper")
        .unwrap_or_else(|| panic!("{doc:#}"));
    let files = crhelper["components"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only RECORD's files in the zip: {files:?}");
    assert_eq!(files[0]["name"], "crhelper/__init__.py");
    let edited = std::fs::read(s.path("lambda/package/crhelper/__init__.py")).unwrap();
    assert_eq!(files[0]["hashes"][0]["alg"], "BLAKE3");
    assert_eq!(
        files[0]["hashes"][0]["content"],
        artifact::util::hex(blake3::hash(&edited).as_bytes())
    );
    assert!(!text.contains("normalizer"), "{doc:#}");
    assert!(
        crhelper["licenses"].to_string().contains("Apache-2.0"),
        "{}",
        crhelper["licenses"]
    );
    assert!(doc["dependencies"].is_array(), "{doc:#}");
    assert_valid_cyclonedx(&path);
}
