//! The name of each `.pyc`: a hash of everything its bytes depend on,
//! worked out once per (interpreter, mode, source) however many zips take
//! the source (a shared dependency folder sits in every zip).

use std::collections::HashMap;
use std::sync::Arc;

use super::hash::Hash;
use super::inputs::{FileId, ZipPath};
use super::python::Interpreter;

/// What names a `.pyc`: everything its bytes depend on.
pub(super) fn key_of(interp: &Interpreter, checked: bool, zip_path: &str, source: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"artifact-pyc-1\0");
    for part in [
        interp.magic.as_str(),
        interp.version.as_str(),
        if checked { "checked" } else { "unchecked" },
        zip_path,
    ] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.update(source);
    *h.finalize().as_bytes()
}

/// [`key_of`], remembered per (interpreter index, mode) and source file:
/// the same file at the same zip path gets its key without hashing again.
/// Per source file: the zip path its key was taken at, and the key.
type KnownKeys = Vec<Option<(ZipPath, Hash)>>;

#[derive(Default)]
pub(super) struct Keys {
    known: HashMap<(usize, bool), KnownKeys>,
}

impl Keys {
    /// The key of source `id` (content hash `source`) at `zip_path`, for
    /// interpreter `at` of `found`.
    pub(super) fn get(
        &mut self,
        found: &[Interpreter],
        at: usize,
        checked: bool,
        zip_path: &ZipPath,
        id: FileId,
        source: &Hash,
    ) -> Hash {
        let slots = self.known.entry((at, checked)).or_default();
        if slots.len() <= id {
            slots.resize(id + 1, None);
        }
        if let Some((p, key)) = &slots[id] {
            if Arc::ptr_eq(p, zip_path) || **p == **zip_path {
                return *key;
            }
        }
        let key = key_of(&found[at], checked, zip_path, source);
        slots[id] = Some((zip_path.clone(), key));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp(version: &str) -> Interpreter {
        Interpreter {
            path: "/p".into(),
            version: version.into(),
            minor: 12,
            magic: "cb0d0d0a".into(),
            cache_tag: "cpython-312".into(),
        }
    }

    #[test]
    fn the_key_changes_with_everything_the_bytes_depend_on() {
        let i = interp("3.12.1");
        let base = key_of(&i, false, "a.py", &[0; 32]);
        assert_ne!(base, key_of(&i, true, "a.py", &[0; 32]));
        assert_ne!(base, key_of(&i, false, "b.py", &[0; 32]));
        assert_ne!(base, key_of(&i, false, "a.py", &[1; 32]));
        assert_ne!(base, key_of(&interp("3.12.2"), false, "a.py", &[0; 32]));
        assert_eq!(base, key_of(&i, false, "a.py", &[0; 32]));
    }

    #[test]
    fn remembered_keys_are_the_keys_and_follow_path_and_mode() {
        let found = [interp("3.12.1"), interp("3.13.0")];
        let mut keys = Keys::default();
        let a: ZipPath = Arc::from("pkg/a.py");
        let b: ZipPath = Arc::from("lib/a.py");
        let h = [7; 32];
        let first = keys.get(&found, 0, false, &a, 3, &h);
        assert_eq!(first, key_of(&found[0], false, "pkg/a.py", &h));
        // Same file, a path equal but not shared: the remembered key.
        assert_eq!(
            keys.get(&found, 0, false, &Arc::from("pkg/a.py"), 3, &h),
            first
        );
        // The same file at another path, another mode, another interpreter.
        assert_eq!(
            keys.get(&found, 0, false, &b, 3, &h),
            key_of(&found[0], false, "lib/a.py", &h)
        );
        assert_eq!(
            keys.get(&found, 0, true, &a, 3, &h),
            key_of(&found[0], true, "pkg/a.py", &h)
        );
        assert_eq!(
            keys.get(&found, 1, false, &a, 3, &h),
            key_of(&found[1], false, "pkg/a.py", &h)
        );
    }
}
