//! Where a function's files come from: its own folder (`[functions.X]
//! source`), the paths every function shares (`[pack] shared`), and the rule
//! that every path named stays inside the project.

use std::path::{Path, PathBuf};

use super::error::{invalid, Problem};
use super::raw::FileSpec;
use crate::util::normalize;

/// A path named in the project file must stay inside the project root
/// (lexically: links are checked when pack reads them).
pub(crate) fn inside_root(key: &str, base: &Path, path: &Path, root: &Path) -> Result<(), Problem> {
    if normalize(&base.join(path)).starts_with(normalize(root)) {
        return Ok(());
    }
    Err(invalid(
        key,
        format!(
            "`{}` is outside the project folder {}",
            path.display(),
            root.display()
        ),
        "name paths inside the project (the folder holding artifact.toml)",
    ))
}

/// `[pack] shared`: each path relative to the project root, inside it, existing.
pub(crate) fn shared(specs: Vec<FileSpec>, root: &Path) -> Result<Vec<FileSpec>, Problem> {
    for (i, spec) in specs.iter().enumerate() {
        let key = format!("pack.shared[{i}]");
        if spec.path.as_os_str().is_empty() || spec.path.is_absolute() {
            return Err(invalid(
                &key,
                format!("`{}` is not a relative path", spec.path.display()),
                "give paths relative to the project root, e.g. { path = \"lambda/shared\", as = \"shared\" }",
            ));
        }
        inside_root(&key, root, &spec.path, root)?;
        if !root.join(&spec.path).exists() {
            return Err(invalid(
                &key,
                format!("`{}` does not exist", spec.path.display()),
                "fix the path (relative to the project root) or remove the entry",
            ));
        }
    }
    Ok(specs)
}

/// A function's own folder, else `pack.source`.
pub(crate) fn function_source(
    key: &str,
    own: Option<&Path>,
    pack_source: &Path,
    root: &Path,
) -> Result<PathBuf, Problem> {
    let Some(own) = own else {
        return Ok(pack_source.to_path_buf());
    };
    let key = format!("{key}.source");
    inside_root(&key, root, own, root)?;
    let dir = normalize(&root.join(own));
    if !dir.is_dir() {
        return Err(invalid(
            &key,
            format!("`{}` is not a folder", own.display()),
            "give the function's folder relative to the project root, e.g. \"lambda/api\"",
        ));
    }
    Ok(dir)
}

/// A function's requirements: as given (relative to the project root), else
/// `<source>/requirements.txt` when the function has a folder of its own that holds one.
pub(crate) fn requirements(
    given: Option<PathBuf>,
    own_source: bool,
    source: &Path,
    root: &Path,
) -> Option<PathBuf> {
    match given {
        Some(r) => Some(root.join(r)),
        None if own_source => Some(source.join("requirements.txt")).filter(|p| p.is_file()),
        None => None,
    }
}
