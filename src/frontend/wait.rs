//! The waits after an invalidation is created: the distribution `Deployed`
//! (express mode), then the invalidation `Completed`.

use std::time::Instant;

use super::{aws_err, FrontendError};
use crate::aws::Clients;
use crate::output::Reporter;
use crate::poll::{Backoff, Poller};

/// Until the distribution is `Deployed`. In express mode CloudFormation
/// reports the stack done before CloudFront has deployed a distribution it
/// created or changed, and an invalidation's `Completed` says nothing of a
/// configuration still going out to the edges.
pub(super) async fn distribution(
    clients: &Clients,
    id: &str,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<String, FrontendError> {
    let timed_out = |_| FrontendError::DistributionTimeout { id: id.to_string() };
    let mut poll = Poller::new(Backoff::INVALIDATION, deadline);
    loop {
        let out = match clients
            .cloudfront
            .get_distribution()
            .id(id)
            .send()
            .await
            .map_err(|e| aws_err("GetDistribution", id, e))
        {
            Ok(out) => out,
            Err(FrontendError::Aws(f)) if f.is_transient() => {
                poll.wait_after_fault().await.map_err(timed_out)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = out
            .distribution()
            .map(|d| d.status().to_string())
            .unwrap_or_default();
        if status == "Deployed" {
            return Ok(status);
        }
        reporter.progress(format!("  distribution {id}: {status}"));
        poll.wait().await.map_err(timed_out)?;
    }
}

/// Until the invalidation is `Completed`.
pub(super) async fn invalidation(
    clients: &Clients,
    distribution: &str,
    id: &str,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<String, FrontendError> {
    let mut poll = Poller::new(Backoff::INVALIDATION, deadline);
    loop {
        let out = match clients
            .cloudfront
            .get_invalidation()
            .distribution_id(distribution)
            .id(id)
            .send()
            .await
            .map_err(|e| aws_err("GetInvalidation", id, e))
        {
            Ok(out) => out,
            Err(FrontendError::Aws(f)) if f.is_transient() => {
                poll.wait_after_fault()
                    .await
                    .map_err(|_| FrontendError::InvalidationTimeout { id: id.to_string() })?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = out
            .invalidation()
            .map(|i| i.status().to_string())
            .unwrap_or_default();
        if status == "Completed" {
            return Ok(status);
        }
        reporter.progress(format!("  invalidation {id}: {status}"));
        poll.wait()
            .await
            .map_err(|_| FrontendError::InvalidationTimeout { id: id.to_string() })?;
    }
}
