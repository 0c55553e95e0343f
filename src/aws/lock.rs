//! One run at a time: a lock object in S3, taken with a conditional write.
//!
//! `PutObject` with `If-None-Match: *` creates the lock only where none is;
//! the holder (host and process, run id, expiry) is its body. The holder
//! renews it while it works (`If-Match` its own ETag), so a run that was
//! killed leaves a lock that expires within [`LEASE`]: the next run takes it
//! over then (at once when the holder was a process of this host that is
//! gone). A second run waits, saying who holds it, until the lock is free or
//! its wait is over, then fails naming the holder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::s3::{self, Expect, S3Error};
use super::{classify, Clients};
use crate::output::Reporter;

/// How long a lock holds without renewal.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// How often a waiting run looks again, and says it is waiting.
const POLL: Duration = Duration::from_secs(2);
const SAY_EVERY: Duration = Duration::from_secs(30);

/// Who holds a lock, as its object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `<host>:<pid>`.
    pub holder: String,
    pub run_id: String,
    pub taken_unix: u64,
    pub expires_unix: u64,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} is being deployed by another run ({} since {}, run {}); waited {waited}s for it", .holder.holder, .holder.taken_unix, .holder.run_id)]
    Held {
        what: String,
        holder: Holder,
        waited: u64,
    },
    #[error(transparent)]
    S3(#[from] S3Error),
}

impl LockError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { .. } => Some(
                "let the other run finish (pass --wait-for-lock 20m to wait longer); a run that was killed frees it within a minute".into(),
            ),
            LockError::S3(e) => e.hint(),
        }
    }
}

impl crate::output::Hint for LockError {
    fn hint(&self) -> Option<String> {
        LockError::hint(self)
    }
}

/// What the decision on a found lock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Held by a live run: wait.
    Wait,
    /// Expired, or left by a process of this host that is gone: take it over.
    TakeOver,
}

/// Whether a lock held by `h` may be taken over at `now_unix` by a run on
/// `host` (whose processes `alive` tells).
pub fn decide(h: &Holder, now_unix: u64, host: &str, alive: impl Fn(u32) -> bool) -> Found {
    if h.expires_unix <= now_unix {
        return Found::TakeOver;
    }
    let gone_here = h
        .holder
        .rsplit_once(':')
        .filter(|(hst, _)| *hst == host)
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
        .is_some_and(|pid| !alive(pid));
    if gone_here {
        Found::TakeOver
    } else {
        Found::Wait
    }
}

/// Seconds since the epoch (`util::unix_now`, which `aws` may not import: same floor).
fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A lock this run holds, renewed in the background until released.
pub struct Lock {
    bucket: String,
    key: String,
    etag: Arc<Mutex<String>>,
    renewer: tokio::task::JoinHandle<()>,
}

/// The lock's holder and ETag, if there is a lock.
async fn read(
    clients: &Clients,
    bucket: &str,
    key: &str,
) -> Result<Option<(Holder, String)>, S3Error> {
    let Some((bytes, etag)) = s3::read_object_tagged(clients, bucket, key).await? else {
        return Ok(None);
    };
    // A lock whose body cannot be read (not ours) counts as expired.
    let holder = serde_json::from_slice::<Holder>(&bytes).unwrap_or(Holder {
        holder: "unknown".into(),
        run_id: "unknown".into(),
        taken_unix: 0,
        expires_unix: 0,
    });
    Ok(Some((holder, etag)))
}

/// Takes the lock at `bucket/key` for `what`, waiting up to `wait` while
/// another live run holds it.
pub async fn acquire(
    clients: &Clients,
    bucket: &str,
    key: &str,
    what: &str,
    run_id: &str,
    wait: Duration,
    reporter: &dyn Reporter,
) -> Result<Lock, LockError> {
    let started = Instant::now();
    let mut said = Instant::now();
    let host = host();
    let me = format!("{host}:{}", std::process::id());
    loop {
        let now = now_unix();
        let holder = Holder {
            holder: me.clone(),
            run_id: run_id.to_string(),
            taken_unix: now,
            expires_unix: now.saturating_add(LEASE.as_secs()),
        };
        let taken = s3::write_record_if(clients, bucket, key, &holder, &Expect::Absent).await?;
        if let Some(etag) = taken {
            return Ok(Lock::held(clients, bucket, key, etag, holder));
        }
        let Some((found, etag)) = read(clients, bucket, key).await? else {
            continue; // released in between
        };
        if decide(&found, now, &host, pid_alive) == Found::TakeOver {
            let over = Expect::Etag(etag);
            if let Some(etag) = s3::write_record_if(clients, bucket, key, &holder, &over).await? {
                reporter.progress(format!(
                    "  took over the lock of {what} left by {} (run {})",
                    found.holder, found.run_id
                ));
                return Ok(Lock::held(clients, bucket, key, etag, holder));
            }
            continue;
        }
        if started.elapsed() >= wait {
            return Err(LockError::Held {
                what: what.to_string(),
                holder: found,
                waited: started.elapsed().as_secs(),
            });
        }
        if said.elapsed() >= SAY_EVERY || started.elapsed() < POLL {
            said = Instant::now();
            reporter.progress(format!(
                "  waiting for {what}: {} (run {}) is deploying it",
                found.holder, found.run_id
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

impl Lock {
    fn held(clients: &Clients, bucket: &str, key: &str, etag: String, holder: Holder) -> Lock {
        let etag = Arc::new(Mutex::new(etag));
        let renewer = {
            let (clients, bucket, key, etag) = (
                clients.clone(),
                bucket.to_string(),
                key.to_string(),
                etag.clone(),
            );
            tokio::spawn(async move {
                let mut holder = holder;
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    holder.expires_unix = now_unix().saturating_add(LEASE.as_secs());
                    let mut current = etag.lock().await;
                    let mine = Expect::Etag(current.clone());
                    match s3::write_record_if(&clients, &bucket, &key, &holder, &mine).await {
                        Ok(Some(e)) => *current = e,
                        Ok(None) => {
                            tracing::warn!("the lock s3://{bucket}/{key} was taken over");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!("could not renew the lock s3://{bucket}/{key}: {e}");
                        }
                    }
                }
            })
        };
        Lock {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag,
            renewer,
        }
    }

    /// Frees the lock, unless another run took it over meanwhile.
    pub async fn release(self, clients: &Clients) {
        self.renewer.abort();
        let mine = self.etag.lock().await.clone();
        match read(clients, &self.bucket, &self.key).await {
            Ok(Some((_, etag))) if etag == mine => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(
                    "could not free the lock s3://{}/{}: {e}",
                    self.bucket,
                    self.key
                );
                return;
            }
        }
        if let Err(e) = clients
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            tracing::warn!(
                "could not free the lock s3://{}/{} ({}): it expires within a minute",
                self.bucket,
                self.key,
                classify("DeleteObject", &self.key, &e)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(who: &str, expires: u64) -> Holder {
        Holder {
            holder: who.into(),
            run_id: "r".into(),
            taken_unix: 1,
            expires_unix: expires,
        }
    }

    #[test]
    fn a_live_lock_is_waited_for_and_an_expired_or_orphaned_one_taken_over() {
        let alive = |_| true;
        let dead = |_| false;
        assert_eq!(decide(&holder("b1:42", 100), 50, "b2", dead), Found::Wait);
        assert_eq!(
            decide(&holder("b1:42", 100), 100, "b2", alive),
            Found::TakeOver
        );
        // A process of this host that is gone left it: no need to wait for the lease.
        assert_eq!(
            decide(&holder("b1:42", 100), 50, "b1", dead),
            Found::TakeOver
        );
        assert_eq!(decide(&holder("b1:42", 100), 50, "b1", alive), Found::Wait);
        assert_eq!(decide(&holder("garbage", 100), 50, "b1", dead), Found::Wait);
    }
}
