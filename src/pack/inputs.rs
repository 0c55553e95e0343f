//! Which files go into which zip, under which name.
//!
//! Walks the `files` of every function and the shared dependency folder,
//! applies exclude patterns, follows symlinks only while they stay inside the
//! project, and refuses anything that cannot be packed reproducibly (non-UTF-8
//! names, special files, two sources landing on one zip path). It reads
//! metadata only; file contents are read by [`super::hash`].

use std::collections::HashMap;
use std::os::unix::fs::{DirEntryExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use super::deps::UnitDeps;
use super::listing::{DirStat, Entry, Folder, Listings};
use super::manifest::Slimmed;
use super::paths::{dirs_of, excluded, is_inside, merge_sorted, zip_name_of};
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
    /// A layer's zip (its files under `python/`), not a function's.
    pub layer: bool,
    /// The zip's path relative to the output folder.
    pub zip: String,
    /// `(zip path, file)`, sorted by zip path.
    pub entries: Vec<(ZipPath, FileId)>,
    /// Folder entries (each ends with `/`), sorted.
    pub dirs: Vec<String>,
    /// What `[pack] slim` left out of its dependencies (None: nothing).
    pub slimmed: Option<Slimmed>,
}

/// Everything every function needs, with shared files listed once.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub files: Vec<SourceFile>,
    pub functions: Vec<FunctionInputs>,
    /// Every folder walked, for the next walk; `None` when the recorded
    /// listings already say all of it.
    pub(super) folders: Option<Vec<Folder>>,
}

/// A folder being walked and the folders above it: a symlink to one of them would loop.
struct Ancestor<'a> {
    id: (u64, u64),
    up: Option<&'a Ancestor<'a>>,
}

impl Ancestor<'_> {
    fn contains(&self, id: (u64, u64)) -> bool {
        let mut at = Some(self);
        while let Some(a) = at {
            if a.id == id {
                return true;
            }
            at = a.up;
        }
        false
    }
}

/// A file found by the walk, before it is given an id.
struct Found {
    zip_path: String,
    link: PathBuf,
    /// Where `link` leads, when it is a symlink.
    target: Option<PathBuf>,
    meta: std::fs::Metadata,
}

/// The shared dependency folders' entries and folders, sorted by zip path.
struct Shared {
    entries: Vec<(ZipPath, FileId)>,
    dirs: Vec<String>,
    /// The project's exclude patterns.
    excludes: GlobSet,
    slimmed: Option<Slimmed>,
}

struct Resolver<'a> {
    root: PathBuf,
    root_canonical: PathBuf,
    files: Vec<SourceFile>,
    /// Files already found, by (device, inode): a file reached twice (through a symlink) is read once.
    by_id: HashMap<(u64, u64), FileId>,
    settings: &'a Settings,
    /// The last walk's folder listings, and this walk's.
    listings: &'a Listings,
    folders: Mutex<Vec<Folder>>,
    /// Whether some folder had to be read (so the listings are worth saving).
    read_any: AtomicBool,
}

/// The zip path of a function's or a layer's zip, relative to the output folder.
pub(crate) fn zip_name(name: &str, layer: bool) -> String {
    if layer {
        format!("layers/{name}.zip")
    } else {
        format!("{name}.zip")
    }
}

/// Resolves the inputs of every function, then of every layer. `deps` holds
/// each one's dependency folders (functions in settings order, then layers).
pub(super) fn resolve(
    settings: &Settings,
    deps: &[UnitDeps],
    listings: &Listings,
) -> Result<Inputs, PackError> {
    let root_canonical = settings
        .root
        .canonicalize()
        .map_err(|e| PackError::io(&settings.root, e))?;
    let mut r = Resolver {
        root: settings.root.clone(),
        root_canonical,
        files: Vec::new(),
        by_id: HashMap::new(),
        settings,
        listings,
        folders: Mutex::new(Vec::new()),
        read_any: AtomicBool::new(false),
    };
    let base = build_globset(&settings.pack.exclude)?;
    let layers: Vec<Function> = settings
        .layers
        .iter()
        .map(|l| Function {
            name: l.name.clone(),
            deployed_name: l.deployed_name.clone(),
            zip_key: format!("{}layers/{}.zip", settings.zips_prefix(), l.name),
            source: settings.pack.source.clone(),
            files: Vec::new(),
            dependencies: true,
            exclude: Vec::new(),
            runtime: l.runtime,
            architecture: l.architecture,
            requirements: None,
            layers: Vec::new(),
            bytecode: l.bytecode,
        })
        .collect();
    let units = settings
        .functions
        .iter()
        .map(|f| (f, false))
        .chain(layers.iter().map(|l| (l, true)));
    // Each set of shared folders is walked once and reused by every zip that takes it.
    let mut groups: Vec<((Vec<PathBuf>, bool), Shared)> = Vec::new();
    let mut functions = Vec::new();
    for ((f, layer), d) in units.zip(deps) {
        let key = (d.folders.clone(), layer);
        let at = match groups.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let shared = r.shared(&d.folders, if layer { "python" } else { "" }, &base)?;
                groups.push((key, shared));
                groups.len() - 1
            }
        };
        let mut inputs = r.function(f, &groups[at].1, layer)?;
        inputs.layer = layer;
        inputs.zip = zip_name(&f.name, layer);
        functions.push(inputs);
    }
    let mut folders = r.folders.into_inner().unwrap_or_else(|e| e.into_inner());
    // A folder two sets of shared folders hold was walked twice.
    folders.sort_unstable_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
    folders.dedup_by(|a, b| a.path == b.path);
    let changed = r.read_any.into_inner() || folders.len() != listings.len();
    Ok(Inputs {
        files: r.files,
        functions,
        folders: changed.then_some(folders),
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
    /// Walks shared folders (into `prefix` in the zip), sorted (stably: the
    /// first found of two equal paths stays first) with their folders listed
    /// once, not once per zip.
    fn shared(
        &mut self,
        folders: &[PathBuf],
        prefix: &str,
        excludes: &GlobSet,
    ) -> Result<Shared, PackError> {
        let mut entries: Vec<(ZipPath, FileId)> = Vec::new();
        for dep in folders {
            self.walk_root(dep, prefix, excludes, &mut entries)?;
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let slimmed = super::slim::apply(
            &self.settings.pack.slim,
            &mut entries,
            |id| self.files[id].size,
            prefix,
        );
        let dirs = dirs_of(entries.iter().map(|(p, _)| &**p));
        Ok(Shared {
            entries,
            dirs,
            excludes: excludes.clone(),
            slimmed,
        })
    }

    fn display(&self, path: &Path) -> String {
        if let Some(rel) = super::paths::plain_relative(&self.root, path) {
            return rel.to_string();
        }
        let path = crate::util::normalize(path);
        let rel = path.strip_prefix(&self.root).unwrap_or(&path);
        rel.display().to_string()
    }

    fn function(
        &mut self,
        f: &Function,
        shared: &Shared,
        layer: bool,
    ) -> Result<FunctionInputs, PackError> {
        // Most functions add no patterns of their own: the project's set serves them.
        let own_set;
        let excludes = if f.exclude.is_empty() {
            &shared.excludes
        } else {
            let mut patterns = self.settings.pack.exclude.clone();
            patterns.extend(f.exclude.iter().cloned());
            own_set = build_globset(&patterns)?;
            &own_set
        };
        let mut own: Vec<(ZipPath, FileId)> = Vec::new();
        for spec in &f.files {
            self.spec(f, &f.source, spec, excludes, &mut own)?;
        }
        // `[pack] shared`, placed where it says (a layer holds dependencies only).
        if !layer {
            for spec in &self.settings.pack.shared {
                self.spec(f, &self.settings.root, spec, excludes, &mut own)?;
            }
        }
        own.sort_by(|a, b| a.0.cmp(&b.0));
        // Function-level excludes apply to the shared folder as well.
        let filtered: Vec<(ZipPath, FileId)>;
        let (base, base_dirs): (&[(ZipPath, FileId)], Option<&[String]>) = if f.exclude.is_empty() {
            (&shared.entries, Some(&shared.dirs))
        } else {
            filtered = shared
                .entries
                .iter()
                .filter(|(p, _)| !excluded(excludes, p))
                .cloned()
                .collect();
            (&filtered, None)
        };
        let entries = merge_sorted(&own, base, |a, b| a.0.cmp(&b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(PackError::Collision {
                function: f.name.clone(),
                zip_path: w[0].0.to_string(),
                first: self.files[w[0].1].display.clone(),
                second: self.files[w[1].1].display.clone(),
            });
        }
        let dirs = match base_dirs {
            Some(base_dirs) => {
                let own_dirs = dirs_of(own.iter().map(|(p, _)| &**p));
                let mut d = merge_sorted(&own_dirs, base_dirs, |a, b| a.cmp(b));
                d.dedup();
                d
            }
            None => dirs_of(entries.iter().map(|(p, _)| &**p)),
        };
        // A path cannot be both a file and a folder in one zip.
        for dir in &dirs {
            let name = &dir[..dir.len() - 1];
            if let Ok(i) = entries.binary_search_by(|(p, _)| (**p).cmp(name)) {
                let under = entries.partition_point(|(p, _)| **p < **dir);
                return Err(PackError::Collision {
                    function: f.name.clone(),
                    zip_path: name.to_string(),
                    first: self.files[entries[i].1].display.clone(),
                    second: format!(
                        "the folder holding {}",
                        entries.get(under).map_or(name, |e| &*e.0)
                    ),
                });
            }
        }
        Ok(FunctionInputs {
            name: f.name.clone(),
            layer: false,
            zip: zip_name(&f.name, false),
            entries,
            dirs,
            slimmed: shared.slimmed.clone(),
        })
    }

    fn spec(
        &mut self,
        f: &Function,
        base: &Path,
        spec: &FileSpec,
        excludes: &GlobSet,
        out: &mut Vec<(ZipPath, FileId)>,
    ) -> Result<(), PackError> {
        let path = crate::util::normalize(&base.join(&spec.path));
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
        self.check_inside(&path)?;
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
            let id = self.file(path, Some(target), &meta)?;
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
        if !self.is_inside(&target) {
            return Err(PackError::LinkOutside {
                path: self.display(path),
                target,
            });
        }
        let meta = std::fs::metadata(&target).map_err(|e| PackError::io(&target, e))?;
        Ok((target, meta))
    }

    /// Whether a resolved path lies inside the project, and not in a system
    /// folder (a project at `/` would otherwise take `/proc` as its own).
    fn is_inside(&self, resolved: &Path) -> bool {
        is_inside(&self.root_canonical, resolved)
    }

    /// Refuses a path that, resolved (every component: links, `..`, an
    /// absolute start), leads outside the project: a link to a folder outside
    /// on the way to it, or `../..` past the root, would zip what is not the
    /// project's (the builder's `/proc/self/environ`, say).
    fn check_inside(&self, path: &Path) -> Result<(), PackError> {
        let resolved = path.canonicalize().map_err(|e| PackError::BrokenLink {
            path: self.display(path),
            source: e,
        })?;
        if self.is_inside(&resolved) {
            return Ok(());
        }
        Err(PackError::Escapes {
            path: self.display(path),
            target: resolved,
        })
    }

    fn walk_root(
        &mut self,
        dir: &Path,
        prefix: &str,
        excludes: &GlobSet,
        out: &mut Vec<(ZipPath, FileId)>,
    ) -> Result<(), PackError> {
        let meta = std::fs::metadata(dir).map_err(|e| PackError::io(dir, e))?;
        let root = Ancestor {
            id: (meta.dev(), meta.ino()),
            up: None,
        };
        let found = self.walk(dir, prefix, excludes, &root)?;
        out.reserve(found.len());
        for f in found {
            let id = self.file(f.link, f.target, &f.meta)?;
            out.push((f.zip_path.into(), id));
        }
        Ok(())
    }

    /// Walks `dir` with its subfolders in parallel, each folder's entries in
    /// name order, so what is found (and the first error) is the same on every
    /// run. A folder whose stat is the one recorded by the last walk is not
    /// read again: its recorded entries are used. A folder reached again
    /// through a symlink while inside itself is not entered twice.
    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        excludes: &GlobSet,
        up: &Ancestor<'_>,
    ) -> Result<Vec<Found>, PackError> {
        let stat = DirStat::of(&std::fs::metadata(dir).map_err(|e| PackError::io(dir, e))?);
        let entries = match self.listings.get(dir, &stat) {
            Some(recorded) => recorded,
            None => {
                self.read_any.store(true, Ordering::Relaxed);
                self.read_folder(dir)?.into()
            }
        };
        let parts: Vec<Result<Vec<Found>, PackError>> = entries
            .par_iter()
            .map(|entry| self.entry(dir, entry, prefix, excludes, up))
            .collect();
        if let Ok(mut folders) = self.folders.lock() {
            folders.push(Folder {
                path: dir.to_path_buf(),
                stat,
                entries,
            });
        }
        let mut found = Vec::new();
        for part in parts {
            found.extend(part?);
        }
        Ok(found)
    }

    /// The entries of `dir`, read from the folder, in name order.
    fn read_folder(&self, dir: &Path) -> Result<Vec<Entry>, PackError> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| PackError::io(dir, e))? {
            let entry = entry.map_err(|e| PackError::io(dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                return Err(PackError::NonUtf8 {
                    path: self.display(&entry.path()),
                });
            };
            let ft = entry
                .file_type()
                .map_err(|e| PackError::io(&entry.path(), e))?;
            entries.push(Entry {
                name,
                is_dir: ft.is_dir(),
                ino: entry.ino(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// One entry of a folder: a file, or everything below a folder.
    fn entry(
        &self,
        dir: &Path,
        entry: &Entry,
        prefix: &str,
        excludes: &GlobSet,
        up: &Ancestor<'_>,
    ) -> Result<Vec<Found>, PackError> {
        let name = &entry.name;
        let zip_path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        if excluded(excludes, &zip_path) {
            return Ok(Vec::new());
        }
        let path = dir.join(name);
        if entry.is_dir {
            // The listing tells a folder without a stat; its device is its parent's.
            let here = Ancestor {
                id: (up.id.0, entry.ino),
                up: Some(up),
            };
            return self.walk(&path, &zip_path, excludes, &here);
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| PackError::io(&path, e))?;
        let (target, meta) = if meta.file_type().is_symlink() {
            let (target, meta) = self.follow(&path, meta)?;
            (Some(target), meta)
        } else {
            (None, meta)
        };
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if up.contains(id) {
                return Ok(Vec::new());
            }
            let here = Ancestor { id, up: Some(up) };
            let dir = target.as_deref().unwrap_or(&path);
            return self.walk(dir, &zip_path, excludes, &here);
        }
        Ok(vec![Found {
            zip_path,
            link: path,
            target,
            meta,
        }])
    }

    /// Records the file `link` (read at `target` when it leads elsewhere),
    /// once however many zips or links reach it.
    fn file(
        &mut self,
        link: PathBuf,
        target: Option<PathBuf>,
        meta: &std::fs::Metadata,
    ) -> Result<FileId, PackError> {
        if !meta.is_file() {
            return Err(PackError::NotAFile {
                path: self.display(&link),
            });
        }
        if let Some(&id) = self.by_id.get(&(meta.dev(), meta.ino())) {
            return Ok(id);
        }
        let id = self.files.len();
        let (mtime_ns, ctime_ns) = crate::util::mtime_ctime_ns(meta);
        let display = self.display(&link);
        self.files.push(SourceFile {
            path: target.unwrap_or(link),
            display,
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            inode: meta.ino(),
            device: meta.dev(),
            executable: meta.permissions().mode() & 0o111 != 0,
        });
        self.by_id.insert((meta.dev(), meta.ino()), id);
        Ok(id)
    }
}
