//! After a deploy that changed the site: its release in the history (see
//! [`crate::history`]): every file by hash, the bytes copied from the site
//! bucket into the deployment bucket's `history/site/`, where a rollback
//! finds them.

use std::collections::BTreeMap;

use crate::aws::Clients;
use crate::config::Settings;
use crate::history::{self, SiteRecord};
use crate::sync::remote::SyncObserved;
use crate::sync::SyncError;
use crate::util::hex;

/// The release the sync just made: every local file (the generated
/// `aws-config.js` among them) by its path and hash, and where each is copied
/// from.
pub(super) fn release(
    site: &SyncObserved,
    opts: &super::FrontendOptions,
    started_unix: u64,
    now_unix: u64,
) -> (SiteRecord, Vec<(String, String, String)>) {
    let files: BTreeMap<String, String> = site
        .local
        .iter()
        .map(|f| (f.rel.clone(), hex(&f.sha256)))
        .collect();
    let copies = site
        .local
        .iter()
        .map(|f| {
            let key = format!("{}{}", site.dest.prefix, f.rel);
            (
                history::site_key(&hex(&f.sha256)),
                site.dest.bucket.clone(),
                key,
            )
        })
        .collect();
    let record = SiteRecord {
        id: opts.deployment_id.clone(),
        commit: opts.commit.clone(),
        rollback_of: opts.rollback_of.clone(),
        started_unix,
        ended_unix: now_unix,
        bucket: site.dest.bucket.clone(),
        summary: format!("site of {} files", files.len()),
        files,
        replaced: None,
    };
    (record, copies)
}

/// Saves the release; its id.
pub(super) async fn save(
    clients: &Clients,
    settings: &Settings,
    record: SiteRecord,
    copies: &[(String, String, String)],
) -> Result<String, SyncError> {
    let bucket = &settings.infra.deployment_bucket;
    let saved =
        history::store::save_site(clients, bucket, record, copies, settings.history_keep).await?;
    Ok(saved.id)
}
