//! Bytecode in the zips and the import check, with the host's python3.11
//! (the interpreter every machine here has) as the runtime's.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The sample, packed for python3.11.
fn sample_311() -> Sample {
    let s = Sample::new();
    s.pack_keys("runtime = \"python3.11\"\n");
    s
}

fn unzip_to(zip: &Path, dir: &Path) {
    let mut a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    a.extract(dir).unwrap();
}

fn zip_entry(zip: &Path, name: &str) -> Vec<u8> {
    let mut a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut buf = Vec::new();
    a.by_name(name).unwrap().read_to_end(&mut buf).unwrap();
    buf
}

/// Imports `modules` from `dir` with python3.11, read-only, and returns the
/// sources Python had to compile (none when the zip's .pyc were used).
fn compiled_at_import(dir: &Path, modules: &[&str]) -> Vec<String> {
    let script = format!(
        "import sys, importlib.machinery as m\nseen=[]\norig=m.SourceFileLoader.source_to_code\ndef spy(self,*a,**k):\n    seen.append(self.path); return orig(self,*a,**k)\nm.SourceFileLoader.source_to_code=spy\nsys.path.insert(0, {:?})\nfor name in {:?}: __import__(name)\nprint(repr(seen))\n",
        dir.to_str().unwrap(),
        modules
    );
    let out = Command::new("python3.11")
        .args(["-I", "-S", "-c", &script])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text == "[]" {
        Vec::new()
    } else {
        vec![text]
    }
}

#[test]
fn zips_carry_hash_based_bytecode_that_python_loads_without_compiling() {
    let s = sample_311();
    let r = s.pack(&[]);
    let m = &r.manifest.functions["api-handler"];
    let b = m.bytecode.as_ref().expect("bytecode in the manifest");
    assert_eq!((b.mode.as_str(), b.files), ("unchecked-hash", 4));
    assert!(b.python.starts_with("3.11."), "{}", b.python);
    assert!(r.run.bytecode.compiled > 0 && r.run.bytecode.from_cache == 0);
    let zip = s.path("build/lambda/api-handler.zip");
    // PEP 552 header: magic, flags 0b01 (hash-based, unchecked), source hash.
    let pyc = zip_entry(&zip, "__pycache__/index.cpython-311.pyc");
    assert_eq!(&pyc[4..8], &[1, 0, 0, 0]);
    let dir = tempfile::tempdir().unwrap();
    unzip_to(&zip, dir.path());
    assert_eq!(
        compiled_at_import(dir.path(), &["index", "crhelper.resource_helper"]),
        Vec::<String>::new()
    );
    // Warm: nothing compiled, nothing written; checked-hash changes the flags and the zips.
    let warm = s.pack(&[]);
    assert_eq!(warm.run.bytecode.compiled, 0);
    assert!(warm.run.written.is_empty(), "{:?}", warm.run.written);
    s.pack_keys("bytecode = \"checked-hash\"\n");
    let checked = s.pack(&[]);
    assert_eq!(checked.run.written.len(), 5);
    assert_eq!(
        &zip_entry(&zip, "__pycache__/index.cpython-311.pyc")[4..8],
        &[3, 0, 0, 0]
    );
}

#[test]
fn bytecode_is_byte_identical_across_clones_thread_counts_and_processes() {
    let a = sample_311();
    let b = sample_311();
    let ra = a.pack(&["--jobs", "1", "--no-cache"]);
    let rb = b.pack(&["--jobs", "2"]);
    for (name, fa) in &ra.manifest.functions {
        assert_eq!(fa.sha256, rb.manifest.functions[name].sha256, "{name}");
        assert!(fa.bytecode.is_some(), "{name}");
    }
    // One edited handler: one .pyc compiled, one zip written.
    b.edit("lambda/index.py", |t| format!("{t}\n# edited\n"));
    let edited = b.pack(&[]);
    assert_eq!(edited.run.bytecode.compiled, 1);
    assert_eq!(edited.run.written, vec!["api-handler".to_string()]);
}

#[test]
fn pyc_files_an_installer_left_never_ship() {
    let s = sample_311();
    s.pack_keys("default_excludes = false\n");
    let stray = s.path("lambda/package/crhelper/__pycache__");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("utils.cpython-39.pyc"), b"stale").unwrap();
    std::fs::write(s.path("lambda/package/crhelper/old.pyc"), b"stale").unwrap();
    let r = s.pack(&[]);
    assert_eq!(r.run.bytecode.dropped, 10, "two files in five zips");
    let zip = s.path("build/lambda/api-handler.zip");
    let a = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let names: Vec<&str> = a.file_names().collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("cpython-39") || n.ends_with("old.pyc")),
        "{names:?}"
    );
}

#[test]
fn sources_in_a_package_test_folder_get_no_pyc_unless_asked() {
    let s = sample_311();
    let tests = s.path("lambda/package/crhelper/tests");
    std::fs::create_dir_all(&tests).unwrap();
    std::fs::write(tests.join("test_utils.py"), b"X = 1\n").unwrap();
    let names = |s: &Sample| -> Vec<String> {
        let zip = s.path("build/lambda/api-handler.zip");
        let a = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
        a.file_names().map(str::to_string).collect()
    };
    let r = s.pack(&[]);
    assert_eq!(r.run.bytecode.left_in_tests, 1);
    let n = names(&s);
    assert!(
        n.iter().any(|n| n == "crhelper/tests/test_utils.py"),
        "{n:?}"
    );
    assert!(
        !n.iter()
            .any(|n| n.starts_with("crhelper/tests/__pycache__/")),
        "{n:?}"
    );
    assert!(
        n.iter().any(|n| n.starts_with("crhelper/__pycache__/")),
        "{n:?}"
    );
    s.pack_keys("bytecode_tests = true\n");
    let r = s.pack(&[]);
    assert_eq!(r.run.bytecode.left_in_tests, 0);
    assert_eq!(
        r.run.bytecode.compiled, 1,
        "the test module, once for five zips"
    );
    let n = names(&s);
    assert!(
        n.iter()
            .any(|n| n == "crhelper/tests/__pycache__/test_utils.cpython-311.pyc"),
        "{n:?}"
    );
}

#[test]
fn without_an_interpreter_pack_says_so_and_required_refuses() {
    let s = Sample::new();
    s.pack_keys("runtime = \"python3.13\"\npython = \"python3.11\"\n");
    let home = tempfile::tempdir().unwrap();
    let run = |s: &Sample| {
        Command::new(env!("CARGO_BIN_EXE_artifact"))
            .args(["pack", "--json"])
            .current_dir(s.dir.path())
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home.path())
            .env("PYENV_ROOT", home.path())
            .env("UV_PYTHON_INSTALL_DIR", home.path())
            .output()
            .unwrap()
    };
    let out = run(&s);
    assert_success(&out);
    let r: artifact::pack::PackReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r.manifest.functions.values().all(|f| f.bytecode.is_none()));
    let warned: Vec<&String> = r
        .run
        .warnings
        .iter()
        .filter(|w| w.contains("python3.13"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", r.run.warnings);
    assert_eq!(r.run.bytecode.without.len(), 5);
    assert!(
        r.run.checks.iter().all(|c| c.result == "skipped"),
        "{:?}",
        r.run.checks
    );
    s.pack_keys("bytecode = \"required\"\n");
    let err = assert_failure(&run(&s));
    assert!(
        err.contains("bytecode = \"required\"") && err.contains("python3.13"),
        "{err}"
    );
}

#[test]
fn the_import_check_names_a_handler_at_the_wrong_path_and_a_missing_module() {
    let s = sample_311();
    // The handler file lands under src/ while Handler says index.handler.
    s.edit("artifact.toml", |t| {
        t.replace(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            "files = [{ path = \"index.py\", as = \"src/index.py\" }, \"rbac_middleware.py\"]",
        )
    });
    let err = assert_failure(&s.run(&["pack"]));
    assert!(
        err.contains("function `api-handler`: handler index.handler does not import"),
        "{err}"
    );
    assert!(
        err.contains("index.py is not in the zip (it has src/index.py"),
        "{err}"
    );
    // A local module the zip lacks: the file and line that imports it.
    let s = sample_311();
    s.edit("artifact.toml", |t| {
        t.replace(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            "files = [\"index.py\"]",
        )
    });
    let err = assert_failure(&s.run(&["pack"]));
    assert!(
        err.contains("ModuleNotFoundError: No module named 'rbac_middleware'"),
        "{err}"
    );
    assert!(
        err.contains("at index.py (line 5): `rbac_middleware` is not in the zip"),
        "{err}"
    );
    // --no-check packs anyway; a pass is remembered.
    assert_success(&s.run(&["pack", "--no-check"]));
    let ok = sample_311();
    let first = ok.pack(&[]);
    assert!(
        first.run.checks.iter().all(|c| c.result == "passed"),
        "{:?}",
        first.run.checks
    );
    let second = ok.pack(&[]);
    assert!(
        second.run.checks.iter().all(|c| c.result == "cached"),
        "{:?}",
        second.run.checks
    );
}

/// `artifact validate` with zips in the output folder: each handler is
/// imported from its zip as packed; a zip packed with --no-check that cannot
/// import is a problem naming the function and the module it lacks.
/// The sample on python3.11, its template saying so too (validate compares them).
fn sample_311_throughout() -> Sample {
    let s = sample_311();
    s.edit("cfn/master-template.yaml", |t| {
        t.replace("Default: python3.12", "Default: python3.11")
    });
    s
}

#[test]
fn validate_checks_the_zips_already_packed() {
    let s = sample_311_throughout();
    s.edit("artifact.toml", |t| {
        t.replace(
            "files = [\"index.py\", \"rbac_middleware.py\"]",
            "files = [\"index.py\"]",
        )
    });
    assert_success(&s.run(&["pack", "--no-check"]));
    let out = s.run(&["validate", "--offline"]);
    let err = assert_failure(&out);
    assert!(
        err.contains("function `api-handler`: handler index.handler does not import"),
        "{err}"
    );
    assert!(
        err.contains("at index.py (line 5): `rbac_middleware` is not in the zip"),
        "{err}"
    );
    let ok = sample_311_throughout();
    ok.pack(&[]);
    let out = ok.run(&["validate", "--offline", "--json"]);
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imports = doc["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 5, "{doc:#}");
    assert!(imports.iter().all(|i| i["result"] == "passed"), "{doc:#}");
}
