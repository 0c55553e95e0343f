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

/// Every folder (ending with `/`) that holds one of `paths`, sorted.
pub(super) fn dirs_of<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for zip_path in paths {
        let mut end = zip_path.len();
        while let Some(i) = zip_path[..end].rfind('/') {
            if !dirs.insert(format!("{}/", &zip_path[..i])) {
                break;
            }
            end = i;
        }
    }
    dirs.into_iter().collect()
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
