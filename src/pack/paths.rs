//! Pure helpers of input resolution: whether a resolved path stays in the
//! project, sorted merges, the folders of a zip, excludes and zip names.

use std::collections::BTreeSet;
use std::path::Path;

use globset::GlobSet;

/// Whether `resolved` (a canonical path) lies inside the project whose
/// canonical root is `root`, and not in a system folder (a project at `/`
/// would otherwise take `/proc` as its own).
pub(super) fn is_inside(root: &Path, resolved: &Path) -> bool {
    resolved.starts_with(root)
        && !["/proc", "/sys", "/dev"]
            .iter()
            .any(|system| resolved.starts_with(system))
}

/// `a` and `b` (each sorted) merged into one sorted list; on ties `a`'s come first.
pub(super) fn merge_sorted<T: Clone>(
    a: &[T],
    b: &[T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if cmp(&b[j], &a[i]).is_lt() {
            out.push(b[j].clone());
            j += 1;
        } else {
            out.push(a[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Every folder (ending with `/`) that holds one of `paths`, sorted. Each
/// folder is a slice of a path until it is kept (no string per path), and
/// paths in a row under one folder (sorted input) skip the set.
pub(super) fn dirs_of<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut dirs: BTreeSet<&'a str> = BTreeSet::new();
    let mut last: &str = "";
    for zip_path in paths {
        let Some(i) = zip_path.rfind('/') else {
            continue;
        };
        let parent = &zip_path[..=i];
        if parent == last {
            continue;
        }
        last = parent;
        let mut end = i;
        loop {
            if !dirs.insert(&zip_path[..=end]) {
                break;
            }
            match zip_path[..end].rfind('/') {
                Some(j) => end = j,
                None => break,
            }
        }
    }
    dirs.into_iter().map(str::to_string).collect()
}

/// `path` below `root` as text, when showing it needs no normalizing: both
/// UTF-8, `path` inside `root`, and neither with a `.`, `..` or empty part.
pub(super) fn plain_relative<'a>(root: &Path, path: &'a Path) -> Option<&'a str> {
    let root = root.to_str()?;
    let rel = path.to_str()?.strip_prefix(root)?.strip_prefix('/')?;
    let plain = |s: &str| s.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    (plain(rel) && plain(root.strip_prefix('/')?)).then_some(rel)
}

pub(super) fn excluded(excludes: &GlobSet, zip_path: &str) -> bool {
    excludes.is_match(zip_path)
}

/// The zip path of a `files` entry given without `as`: its path, `/`-separated,
/// with `.` parts dropped; `None` if it climbs out with `..`.
pub(super) fn zip_name_of(path: &Path) -> Option<String> {
    use std::path::Component;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_of_lists_every_holding_folder_once_sorted() {
        let paths = [
            "a.py",
            "pkg/__init__.py",
            "pkg/sub/deep/x.py",
            "pkg/sub/deep/y.py",
            "pkg/sub/z.py",
            "pkg2/m.py",
        ];
        assert_eq!(
            dirs_of(paths.into_iter()),
            ["pkg/", "pkg/sub/", "pkg/sub/deep/", "pkg2/"]
        );
    }

    #[test]
    fn plain_relative_only_when_nothing_needs_normalizing() {
        fn rel<'a>(root: &str, path: &'a str) -> Option<&'a str> {
            plain_relative(Path::new(root), Path::new(path))
        }
        assert_eq!(rel("/p/proj", "/p/proj/lambda/a.py"), Some("lambda/a.py"));
        assert_eq!(rel("/p/proj", "/p/proj"), None);
        assert_eq!(rel("/p/proj", "/p/project/a.py"), None);
        assert_eq!(rel("/p/proj", "/p/proj/./a.py"), None);
        assert_eq!(rel("/p/proj", "/p/proj/x/../a.py"), None);
        assert_eq!(rel("/p/proj", "/p/proj//a.py"), None);
        assert_eq!(rel("/p/proj", "/p/proj/a/"), None);
        assert_eq!(rel("/p/./proj", "/p/./proj/a.py"), None);
        assert_eq!(rel("p/proj", "p/proj/a.py"), None);
    }

    #[test]
    fn dirs_of_takes_unsorted_paths_and_none() {
        let paths = ["b/c/d.txt", "a/e.txt", "b/f.txt", "b/c/g.txt"];
        assert_eq!(dirs_of(paths.into_iter()), ["a/", "b/", "b/c/"]);
        assert!(dirs_of(["top.py"].into_iter()).is_empty());
        assert!(dirs_of(std::iter::empty()).is_empty());
    }
}
