//! Which files go into which zip, under which name.
//!
//! Walks the `files` of every function and the shared dependency folder,
//! applies exclude patterns, follows symlinks only while they stay inside the
//! project, and refuses anything that cannot be packed reproducibly (non-UTF-8
//! names, special files, two sources landing on one zip path). It reads
//! metadata only; file contents are read by [`super::hash`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::{DirEntryExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::PackError;
use crate::config::{FileSpec, Function, Settings};

/// A source file, found once however many zips hold it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file the bytes come from (symlinks resolved).
    pub path: PathBuf,
    /// How errors and reports name it: relative to the project root where possible.
    pub display: String,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub inode: u64,
    pub device: u64,
    pub executable: bool,
}

/// A path inside a zip; shared, since the dependency folder's paths repeat in every zip.
pub(super) type ZipPath = Arc<str>;

/// Index into [`Inputs::files`].
pub(super) type FileId = usize;

/// One function's zip contents, sorted by zip path (byte-wise).
#[derive(Debug, Clone)]
pub struct FunctionInputs {
    pub name: String,
    /// `(zip path, file)`, sorted by zip path.
    pub entries: Vec<(ZipPath, FileId)>,
    /// Folder entries (each ends with `/`), sorted.
    pub dirs: Vec<String>,
}

/// Everything every function needs, with shared files listed once.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub files: Vec<SourceFile>,
    pub functions: Vec<FunctionInputs>,
}

/// Where a zip path came from, to name both sides of a collision.
struct Origin {
    file: FileId,
}

struct Resolver<'a> {
    root: PathBuf,
    root_canonical: PathBuf,
    files: Vec<SourceFile>,
    by_path: HashMap<PathBuf, FileId>,
    settings: &'a Settings,
}

/// Resolves the inputs of every function. `dependencies` is the shared folder
/// (from `pack.dependencies` and/or an installed requirements folder).
pub(super) fn resolve(settings: &Settings, dependencies: &[PathBuf]) -> Result<Inputs, PackError> {
    let root_canonical = settings
        .root
        .canonicalize()
        .map_err(|e| PackError::io(&settings.root, e))?;
    let mut r = Resolver {
        root: settings.root.clone(),
        root_canonical,
        files: Vec::new(),
        by_path: HashMap::new(),
        settings,
    };
    // The shared folders are walked once and reused by every function that takes them.
    let base = build_globset(&settings.pack.exclude)?;
    let mut shared: Vec<(ZipPath, FileId)> = Vec::new();
    for dep in dependencies {
        r.walk_root(dep, "", &base, &mut shared)?;
    }
    let mut functions = Vec::new();
    for f in &settings.functions {
        functions.push(r.function(f, &shared)?);
    }
    Ok(Inputs {
        files: r.files,
        functions,
    })
}

fn build_globset(patterns: &[String]) -> Result<GlobSet, PackError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // Patterns were checked when the project file was read.
        b.add(Glob::new(p).map_err(|e| PackError::Other(format!("bad exclude {p:?}: {e}")))?);
    }
    b.build()
        .map_err(|e| PackError::Other(format!("bad exclude patterns: {e}")))
}

impl Resolver<'_> {
    fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn function(
        &mut self,
        f: &Function,
        shared: &[(ZipPath, FileId)],
    ) -> Result<FunctionInputs, PackError> {
        let mut patterns = self.settings.pack.exclude.clone();
        patterns.extend(f.exclude.iter().cloned());
        let excludes = build_globset(&patterns)?;
        let mut found: Vec<(ZipPath, FileId)> = Vec::new();
        for spec in &f.files {
            self.spec(f, spec, &excludes, &mut found)?;
        }
        if f.dependencies {
            // Function-level excludes apply to the shared folder as well.
            found.extend(
                shared
                    .iter()
                    .filter(|(p, _)| f.exclude.is_empty() || !excluded(&excludes, p))
                    .cloned(),
            );
        }
        let mut by_zip: BTreeMap<ZipPath, Origin> = BTreeMap::new();
        for (zip_path, file) in found {
            if let Some(first) = by_zip.get(&zip_path) {
                return Err(PackError::Collision {
                    function: f.name.clone(),
                    zip_path: zip_path.to_string(),
                    first: self.files[first.file].display.clone(),
                    second: self.files[file].display.clone(),
                });
            }
            by_zip.insert(zip_path, Origin { file });
        }
        // A path cannot be both a file and a folder in one zip.
        let mut dirs = BTreeSet::new();
        for zip_path in by_zip.keys() {
            let mut end = zip_path.len();
            while let Some(i) = zip_path[..end].rfind('/') {
                let dir = &zip_path[..i];
                if let Some(o) = by_zip.get(dir) {
                    return Err(PackError::Collision {
                        function: f.name.clone(),
                        zip_path: dir.to_string(),
                        first: self.files[o.file].display.clone(),
                        second: format!("the folder holding {zip_path}"),
                    });
                }
                if !dirs.insert(format!("{dir}/")) {
                    break;
                }
                end = i;
            }
        }
        Ok(FunctionInputs {
            name: f.name.clone(),
            entries: by_zip.into_iter().map(|(k, o)| (k, o.file)).collect(),
            dirs: dirs.into_iter().collect(),
        })
    }

    fn spec(
        &mut self,
        f: &Function,
        spec: &FileSpec,
        excludes: &GlobSet,
        out: &mut Vec<(ZipPath, FileId)>,
    ) -> Result<(), PackError> {
        let path = self.settings.pack.source.join(&spec.path);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PackError::MissingSource {
                    function: f.name.clone(),
                    path: self.display(&path),
                }
            } else {
                PackError::io(&path, e)
            }
        })?;
        let zip_name = match &spec.rename {
            Some(r) if r == "." => String::new(),
            Some(r) => r.clone(),
            None => zip_name_of(&spec.path).ok_or_else(|| PackError::BadSpec {
                function: f.name.clone(),
                path: spec.path.display().to_string(),
            })?,
        };
        let (target, meta) = self.follow(&path, meta)?;
        if meta.is_dir() {
            self.walk_root(&target, &zip_name, excludes, out)
        } else {
            if zip_name.is_empty() {
                return Err(PackError::BadSpec {
                    function: f.name.clone(),
                    path: spec.path.display().to_string(),
                });
            }
            let id = self.file(&path, &target, &meta)?;
            out.push((zip_name.into(), id));
            Ok(())
        }
    }

    /// Resolves a symlink to its target, which must lie inside the project.
    fn follow(
        &self,
        path: &Path,
        meta: std::fs::Metadata,
    ) -> Result<(PathBuf, std::fs::Metadata), PackError> {
        if !meta.file_type().is_symlink() {
            return Ok((path.to_path_buf(), meta));
        }
        let target = path.canonicalize().map_err(|e| PackError::BrokenLink {
            path: self.display(path),
            source: e,
        })?;
        if !target.starts_with(&self.root_canonical) {
            return Err(PackError::LinkOutside {
                path: self.display(path),
                target,
            });
        }
        let meta = std::fs::metadata(&target).map_err(|e| PackError::io(&target, e))?;
        Ok((target, meta))
    }

    fn walk_root(
        &mut self,
        dir: &Path,
        prefix: &str,
        excludes: &GlobSet,
        out: &mut Vec<(ZipPath, FileId)>,
    ) -> Result<(), PackError> {
        let meta = std::fs::metadata(dir).map_err(|e| PackError::io(dir, e))?;
        let mut seen = HashSet::new();
        seen.insert((meta.dev(), meta.ino()));
        self.walk(dir, meta.dev(), prefix, excludes, out, &mut seen)
    }

    /// Walks `dir` (on device `dev`). Folder types come from the directory
    /// listing and file metadata from `fstatat` on the open folder, so each file
    /// costs one stat and no path lookup from the root.
    fn walk(
        &mut self,
        dir: &Path,
        dev: u64,
        prefix: &str,
        excludes: &GlobSet,
        out: &mut Vec<(ZipPath, FileId)>,
        seen: &mut HashSet<(u64, u64)>,
    ) -> Result<(), PackError> {
        let read = std::fs::read_dir(dir).map_err(|e| PackError::io(dir, e))?;
        for entry in read {
            let entry = entry.map_err(|e| PackError::io(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(PackError::NonUtf8 {
                    path: self.display(&entry.path()),
                });
            };
            let zip_path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            if excluded(excludes, &zip_path) {
                continue;
            }
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| PackError::io(&path, e))?;
            if ft.is_dir() {
                // Symlinks back into a folder being walked are caught by (device, inode).
                if seen.insert((dev, entry.ino())) {
                    self.walk(&path, dev, &zip_path, excludes, out, seen)?;
                }
                continue;
            }
            let meta = if ft.is_symlink() {
                let (target, meta) = self.follow(
                    &path,
                    entry.metadata().map_err(|e| PackError::io(&path, e))?,
                )?;
                if meta.is_dir() {
                    if seen.insert((meta.dev(), meta.ino())) {
                        self.walk(&target, meta.dev(), &zip_path, excludes, out, seen)?;
                    }
                    continue;
                }
                let id = self.file(&path, &target, &meta)?;
                out.push((zip_path.into(), id));
                continue;
            } else {
                entry.metadata().map_err(|e| PackError::io(&path, e))?
            };
            let id = self.file(&path, &path, &meta)?;
            out.push((zip_path.into(), id));
        }
        Ok(())
    }

    fn file(
        &mut self,
        link: &Path,
        target: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<FileId, PackError> {
        if !meta.is_file() {
            return Err(PackError::NotAFile {
                path: self.display(link),
            });
        }
        if let Some(&id) = self.by_path.get(target) {
            return Ok(id);
        }
        let id = self.files.len();
        self.files.push(SourceFile {
            path: target.to_path_buf(),
            display: self.display(link),
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            inode: meta.ino(),
            device: meta.dev(),
            executable: meta.permissions().mode() & 0o111 != 0,
        });
        self.by_path.insert(target.to_path_buf(), id);
        Ok(id)
    }
}

fn excluded(excludes: &GlobSet, zip_path: &str) -> bool {
    excludes.is_match(zip_path)
}

/// The zip path of a `files` entry given without `as`: its path, `/`-separated,
/// with `.` parts dropped; `None` if it climbs out with `..`.
fn zip_name_of(path: &Path) -> Option<String> {
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
