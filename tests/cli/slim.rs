//! `[pack] slim`: what is never imported is left out of installed
//! dependencies, only with the import check passing after.

use std::path::Path;

use crate::common::*;

/// The sample on python3.11 with what slim drops (and keeps) in its package.
fn slim_sample(slim: &str) -> Sample {
    let s = Sample::new();
    s.pack_keys(&format!("runtime = \"python3.11\"\nslim = {slim}\n"));
    let pkg = s.path("lambda/package");
    let files = [
        ("crhelper/tests/test_resource.py", "assert True\n"),
        ("crhelper/tests/__init__.py", ""),
        ("crhelper/resource_helper.pyi", "def x() -> None: ...\n"),
        ("crhelper/_speedups.c", "int main(void) { return 0; }\n"),
        ("crhelper/README.md", "# crhelper\n"),
        ("crhelper/LICENSE.md", "Apache-2.0\n"),
        ("crhelper-2.0.11.dist-info/README.md", "kept: metadata\n"),
    ];
    for (rel, text) in files {
        let p = pkg.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    s
}

fn names_in(zip: &Path) -> Vec<String> {
    let a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    a.file_names().map(str::to_string).collect()
}

#[test]
fn slim_leaves_out_tests_stubs_sources_and_docs_and_reports_the_bytes() {
    let s = slim_sample("true");
    let r = s.pack(&[]);
    let names = names_in(&s.path("build/lambda/api-handler.zip"));
    for gone in [
        "crhelper/tests/test_resource.py",
        "crhelper/tests/",
        "crhelper/resource_helper.pyi",
        "crhelper/_speedups.c",
        "crhelper/README.md",
    ] {
        assert!(!names.iter().any(|n| n == gone), "{gone} shipped");
    }
    for kept in [
        "crhelper/LICENSE.md",
        "crhelper-2.0.11.dist-info/README.md",
        "crhelper/resource_helper.py",
        "index.py",
    ] {
        assert!(names.iter().any(|n| n == kept), "{kept} left out");
    }
    let m = &r.manifest.functions["api-handler"];
    let slimmed = m.slimmed.as_ref().expect("the manifest says what slim did");
    assert_eq!(slimmed.files, 5, "{slimmed:?}");
    assert_eq!(slimmed.bytes, 73, "{slimmed:?}");
    assert_eq!(slimmed.kinds["tests"], 2, "{slimmed:?}");
    // Slimmed zips were import-checked.
    assert!(
        r.run.checks.iter().all(|c| c.result == "passed"),
        "{:?}",
        r.run.checks
    );
    let text = String::from_utf8(s.run(&["pack"]).stderr).unwrap();
    assert!(text.contains("slim left out 5 files"), "{text}");
    // Off by default: the same tree keeps everything.
    let plain = Sample::new();
    let r = plain.pack(&[]);
    assert!(r.manifest.functions["api-handler"].slimmed.is_none());
}

#[test]
fn a_slimmed_zip_that_does_not_import_fails_and_no_check_is_refused() {
    let s = slim_sample("[\"docs\"]");
    // A package that imports its own docs/ folder: slim breaks it, and the check says so.
    let lib = s.path("lambda/package/helperlib");
    std::fs::create_dir_all(lib.join("docs")).unwrap();
    std::fs::write(lib.join("__init__.py"), "from .docs import render\n").unwrap();
    std::fs::write(
        lib.join("docs/__init__.py"),
        "def render():\n    return 1\n",
    )
    .unwrap();
    s.edit("lambda/index.py", |t| format!("import helperlib\n{t}"));
    let err = assert_failure(&s.run(&["pack"]));
    assert!(err.contains("[pack] slim left files out"), "{err}");
    assert!(err.contains("function `api-handler`"), "{err}");
    assert!(err.contains("helperlib.docs"), "{err}");
    assert!(err.contains("narrow [pack] slim"), "{err}");
    let err = assert_failure(&s.run(&["pack", "--no-check"]));
    assert!(err.contains("the import check is off"), "{err}");
    // Slim narrowed to what the package does not import: it packs.
    s.edit("artifact.toml", |t| {
        t.replace("slim = [\"docs\"]", "slim = [\"tests\"]")
    });
    let r = s.pack(&[]);
    assert_eq!(
        r.manifest.functions["api-handler"]
            .slimmed
            .as_ref()
            .unwrap()
            .files,
        2
    );
}

#[test]
fn an_unknown_slim_kind_names_the_key_and_the_kinds() {
    let s = slim_sample("[\"tests\", \"everything\"]");
    let err = assert_failure(&s.run(&["pack"]));
    assert!(err.contains("pack.slim"), "{err}");
    assert!(
        err.contains("\"everything\" is not a kind of file slim drops"),
        "{err}"
    );
    assert!(err.contains("\"stubs\""), "{err}");
}
