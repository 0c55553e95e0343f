//! `[pack] slim`: what pack may leave out of the installed dependencies
//! because no import ever reads it. Off by default; a zip slimmed is always
//! import-checked after.
//!
//! Never dropped, whatever is asked: anything inside a `*.dist-info` or
//! `*.egg-info` folder (`importlib.metadata` reads it), licence and notice
//! files (their terms travel with the code), compiled extensions (`.so`,
//! stripped or not) and `.py` modules other than under a test folder.

/// One kind of file `slim` can drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlimKind {
    /// `tests/` and `test/` folders inside an installed package.
    Tests,
    /// Type stubs: `*.pyi`.
    Stubs,
    /// C, C++ and Cython sources and headers shipped beside extensions.
    Sources,
    /// Documentation: `*.md`, `*.rst`, and `docs/`/`doc/` folders inside a package.
    Docs,
}

/// Every kind, in the order `slim = true` lists them.
pub const SLIM_KINDS: [SlimKind; 4] = [
    SlimKind::Tests,
    SlimKind::Stubs,
    SlimKind::Sources,
    SlimKind::Docs,
];

/// The values `slim` takes, for error hints.
pub const SLIM_VALUES: &str =
    "true (all of them), false (the default), or a list of \"tests\", \"stubs\", \"sources\", \"docs\"";

impl SlimKind {
    pub fn parse(name: &str) -> Option<SlimKind> {
        SLIM_KINDS.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            SlimKind::Tests => "tests",
            SlimKind::Stubs => "stubs",
            SlimKind::Sources => "sources",
            SlimKind::Docs => "docs",
        }
    }
}

const SOURCE_EXTENSIONS: [&str; 10] = [
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".pyx", ".pxd", ".pxi",
];
const DOC_EXTENSIONS: [&str; 2] = [".md", ".rst"];
const KEPT_NAMES: [&str; 5] = ["license", "licence", "copying", "notice", "authors"];

/// Whether `path` (a path in a zip, `/` separators) lies in a `tests/` or
/// `test/` folder below a top-level package (`pandas/tests/frame/test_x.py`),
/// the folders slim's "tests" drops: code no handler imports at run time.
pub fn in_test_folder(path: &str) -> bool {
    // The folders between the top-level package and the file's name.
    path.rsplit_once('/')
        .and_then(|(folders, _)| folders.split_once('/'))
        .is_some_and(|(_, inner)| inner.split('/').any(|f| matches!(f, "tests" | "test")))
}

/// Which of `kinds` drops `path`, a path inside an installed-packages folder
/// (`numpy/_core/tests/test_api.py`, with `/` separators); None: kept.
pub fn dropped_by(kinds: &[SlimKind], path: &str) -> Option<SlimKind> {
    if kinds.is_empty() {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let (name, folders) = parts.split_last()?;
    if folders
        .iter()
        .any(|f| f.ends_with(".dist-info") || f.ends_with(".egg-info"))
    {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if KEPT_NAMES.iter().any(|k| lower.starts_with(k)) || lower.ends_with(".so") {
        return None;
    }
    // A folder below the package's own (a top-level `tests` package is left alone).
    let inner = |names: &[&str]| folders.iter().skip(1).any(|f| names.contains(f));
    kinds.iter().copied().find(|k| match k {
        SlimKind::Tests => in_test_folder(path),
        SlimKind::Stubs => lower.ends_with(".pyi"),
        SlimKind::Sources => SOURCE_EXTENSIONS.iter().any(|e| lower.ends_with(e)),
        SlimKind::Docs => {
            DOC_EXTENSIONS.iter().any(|e| lower.ends_with(e)) || inner(&["docs", "doc"])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[SlimKind] = &SLIM_KINDS;

    #[test]
    fn test_folders_inside_packages_go() {
        assert_eq!(
            dropped_by(ALL, "numpy/_core/tests/test_api.py"),
            Some(SlimKind::Tests)
        );
        assert_eq!(
            dropped_by(ALL, "pandas/tests/frame/test_x.py"),
            Some(SlimKind::Tests)
        );
        assert_eq!(dropped_by(ALL, "pkg/test/data.json"), Some(SlimKind::Tests));
        // A top-level package named tests, and modules named test_*, stay.
        assert_eq!(dropped_by(ALL, "tests/__init__.py"), None);
        assert_eq!(dropped_by(ALL, "numpy/testing/__init__.py"), None);
        assert_eq!(dropped_by(ALL, "pkg/test_utils.py"), None);
    }

    #[test]
    fn a_test_folder_is_one_below_a_top_level_package() {
        assert!(in_test_folder("numpy/_core/tests/test_api.py"));
        assert!(in_test_folder("pandas/tests/frame/test_x.py"));
        assert!(in_test_folder("pkg/test/x.py"));
        assert!(!in_test_folder("tests/__init__.py"));
        assert!(!in_test_folder("tests/unit/x.py"));
        assert!(!in_test_folder("numpy/testing/__init__.py"));
        assert!(!in_test_folder("pkg/test_utils.py"));
        assert!(!in_test_folder("index.py"));
        assert!(!in_test_folder("pkg/tests"));
    }

    #[test]
    fn stubs_sources_and_docs_go_by_extension() {
        assert_eq!(
            dropped_by(ALL, "botocore/session.pyi"),
            Some(SlimKind::Stubs)
        );
        assert_eq!(
            dropped_by(ALL, "numpy/_core/include/numpy/ndarraytypes.h"),
            Some(SlimKind::Sources)
        );
        assert_eq!(
            dropped_by(ALL, "pandas/_libs/lib.pyx"),
            Some(SlimKind::Sources)
        );
        assert_eq!(dropped_by(ALL, "pkg/README.md"), Some(SlimKind::Docs));
        assert_eq!(dropped_by(ALL, "pkg/docs/conf.json"), Some(SlimKind::Docs));
    }

    #[test]
    fn metadata_licences_extensions_and_modules_stay() {
        for kept in [
            "numpy-2.2.6.dist-info/RECORD",
            "numpy-2.2.6.dist-info/licenses/tests/LICENSE.md",
            "foo.egg-info/PKG-INFO",
            "pkg/LICENSE.md",
            "pkg/licenses/LICENCE.rst",
            "pkg/NOTICE.rst",
            "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
            "pkg/tests/_helper.cpython-312-x86_64-linux-gnu.so",
            "botocore/session.py",
            "pkg/data/schema.json",
            "pkg/py.typed",
        ] {
            assert_eq!(dropped_by(ALL, kept), None, "{kept}");
        }
    }

    #[test]
    fn only_the_kinds_asked_for_drop() {
        assert_eq!(dropped_by(&[], "pkg/tests/test_a.py"), None);
        assert_eq!(dropped_by(&[SlimKind::Stubs], "pkg/tests/test_a.py"), None);
        assert_eq!(
            dropped_by(&[SlimKind::Docs, SlimKind::Tests], "pkg/tests/README.md"),
            Some(SlimKind::Docs)
        );
    }

    #[test]
    fn names_round_trip() {
        for k in SLIM_KINDS {
            assert_eq!(SlimKind::parse(k.name()), Some(k));
        }
        assert_eq!(SlimKind::parse("everything"), None);
    }
}
