//! What pack is asked: the command line's options.

use std::path::PathBuf;

use super::remote::RemoteCache;

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    pub out: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub no_cache: bool,
    pub dry_run: bool,
    /// Delete cached blobs and pip installs this pack did not use.
    pub prune_cache: bool,
    /// The cache builders share (`pack.cache_url`), when it could be reached.
    pub remote: Option<std::sync::Arc<RemoteCache>>,
    /// `--check` (Some(true)) / `--no-check` (Some(false)); None: `[pack] check`.
    pub check: Option<bool>,
}
