//! The site's side of `artifact rollback --frontend`: the recorded release's
//! files, read back from the kept bytes into a folder (each checked against its
//! SHA-256), which deploy-frontend then deploys as any build: only what
//! differs from the bucket is uploaded, assets before entry points, the
//! previous release kept for open tabs, and the minimal invalidation.
//! `aws-config.js` is generated again from the stack's outputs.

use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use super::options::{RollbackError, RollbackOptions};
use crate::aws::s3;
use crate::aws::Clients;
use crate::config::Settings;
use crate::history::{site_key, store, SiteRecord, SITE};
use crate::util::hex;

/// Writes the files of the release a rollback goes to into `dir`; the record.
pub async fn materialize(
    clients: &Clients,
    settings: &Settings,
    opts: &RollbackOptions,
    dir: &Path,
) -> Result<SiteRecord, RollbackError> {
    let bucket = &settings.infra.deployment_bucket;
    let index = store::load_index_of(clients, bucket, &SITE).await?;
    let id = crate::history::target(&index, opts.to.as_deref(), opts.steps)
        .map_err(|message| RollbackError::NoTarget { message })?;
    let record: SiteRecord = store::load_record(clients, bucket, &SITE, &id)
        .await?
        .ok_or_else(|| RollbackError::Gone {
            id: id.clone(),
            missing: vec![crate::history::record_key_in(&SITE, &id)],
        })?;
    let mut missing = Vec::new();
    // The configuration files are made again from the stack, not restored.
    let generated = crate::frontend::site_config::files(settings);
    for (rel, sha) in &record.files {
        if generated.contains(rel) {
            continue;
        }
        let Some(path) = safe_join(dir, rel) else {
            missing.push(format!("{rel} (not a path inside the site)"));
            continue;
        };
        let bytes = s3::read_object(clients, bucket, &site_key(sha))
            .await
            .map_err(crate::sync::SyncError::from)?;
        match bytes {
            Some(b) if hex(&Sha256::digest(&b)) == *sha => {
                let io = |e| RollbackError::Sync(crate::sync::SyncError::io(&path, e));
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(&path, b).map_err(io)?;
            }
            _ => missing.push(site_key(sha)),
        }
    }
    if !missing.is_empty() {
        return Err(RollbackError::Gone { id, missing });
    }
    Ok(record)
}

/// `dir/rel` when `rel` stays inside `dir`.
fn safe_join(dir: &Path, rel: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(rel);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_stay_inside_the_folder() {
        let d = Path::new("/tmp/x");
        assert_eq!(safe_join(d, "assets/a.js"), Some(d.join("assets/a.js")));
        assert_eq!(safe_join(d, "../etc/passwd"), None);
        assert_eq!(safe_join(d, "/etc/passwd"), None);
        assert_eq!(safe_join(d, "a/./b"), Some(d.join("a/b")));
    }
}
