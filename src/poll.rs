//! One way to wait: a growing delay between attempts and a deadline. Every
//! loop that waits for AWS (a stack settling, a change set, a Lambda update,
//! an invalidation) uses it, so no wait can run forever and none hammers AWS.

use std::time::Duration;

use tokio::time::Instant;

/// How the delay between attempts grows: `first`, then times `grow_percent`
/// / 100 each attempt, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub grow_percent: u32,
}

impl Backoff {
    /// A stack settling or being updated: events arrive every few seconds.
    pub const STACK: Backoff = Backoff::new(1_000, 15_000, 150);
    /// A change set being created: usually done in seconds.
    pub const CHANGE_SET: Backoff = Backoff::new(500, 5_000, 200);
    /// A Lambda function becoming ready after an update.
    pub const LAMBDA: Backoff = Backoff::new(500, 5_000, 200);
    /// A CloudFront invalidation: minutes.
    pub const INVALIDATION: Backoff = Backoff::new(2_000, 20_000, 150);

    pub const fn new(first_ms: u64, max_ms: u64, grow_percent: u32) -> Backoff {
        Backoff {
            first: Duration::from_millis(first_ms),
            max: Duration::from_millis(max_ms),
            grow_percent,
        }
    }
}

/// How far off a deadline is when `start + timeout` would overflow.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// `start + timeout`, or a year from `start` where that would overflow.
pub fn deadline(start: std::time::Instant, timeout: Duration) -> std::time::Instant {
    start.checked_add(timeout).unwrap_or(start + FAR)
}

/// The deadline passed before the awaited state was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

/// One wait in progress.
#[derive(Debug, Clone)]
pub struct Poller {
    backoff: Backoff,
    delay: Duration,
    deadline: Instant,
}

impl Poller {
    /// A wait that gives up at `deadline`.
    pub fn new(backoff: Backoff, deadline: std::time::Instant) -> Poller {
        Poller {
            backoff,
            delay: backoff.first,
            deadline: Instant::from_std(deadline),
        }
    }

    /// A wait that gives up `timeout` from now.
    pub fn within(backoff: Backoff, timeout: Duration) -> Poller {
        let now = Instant::now();
        Poller {
            backoff,
            delay: backoff.first,
            deadline: now.checked_add(timeout).unwrap_or(now + FAR),
        }
    }

    /// Sleeps before the next attempt, or says the next attempt would come
    /// after the deadline.
    pub async fn wait(&mut self) -> Result<(), Expired> {
        if Instant::now() + self.delay > self.deadline {
            return Err(Expired);
        }
        tokio::time::sleep(self.delay).await;
        self.delay = next_delay(self.delay, self.backoff.grow_percent, self.backoff.max);
        Ok(())
    }

    /// AWS asked us to slow down: the next waits are twice as long (up to
    /// twice the usual cap).
    pub fn slow_down(&mut self) {
        self.delay = (self.delay * 2).min(self.backoff.max * 2);
    }

    /// After a passing failure of the polled call (throttling, a 5xx, no or
    /// a cut answer): waits longer than usual, then says whether to try again.
    pub async fn wait_after_fault(&mut self) -> Result<(), Expired> {
        self.slow_down();
        self.wait().await
    }

    /// The delay before the next attempt.
    pub fn next(&self) -> Duration {
        self.delay
    }
}

fn next_delay(delay: Duration, grow_percent: u32, max: Duration) -> Duration {
    (delay * grow_percent / 100).min(max).max(delay.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delays_grow_to_the_cap_and_the_deadline_ends_the_wait() {
        let start = Instant::now();
        let mut p = Poller::within(Backoff::new(1_000, 4_000, 200), Duration::from_secs(20));
        let mut delays = Vec::new();
        while p.wait().await.is_ok() {
            delays.push(p.next());
        }
        // Slept 1 + 2 + 4 + 4 + 4 + 4 = 19 s: another 4 s would pass the 20 s deadline.
        let slept = Instant::now() - start;
        assert_eq!(slept, Duration::from_secs(19));
        assert_eq!(delays.first(), Some(&Duration::from_secs(2)));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(4)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_timeout_never_sleeps() {
        let mut p = Poller::within(Backoff::STACK, Duration::ZERO);
        assert_eq!(p.wait().await, Err(Expired));
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_timeout_does_not_overflow() {
        let mut p = Poller::within(Backoff::STACK, Duration::MAX);
        assert_eq!(p.wait().await, Ok(()));
    }

    #[test]
    fn a_deadline_past_the_clock_s_range_is_a_year_away() {
        let now = std::time::Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(60)),
            now + Duration::from_secs(60)
        );
        assert_eq!(deadline(now, Duration::MAX), now + FAR);
    }

    #[test]
    fn slowing_down_doubles_within_twice_the_cap() {
        let mut p = Poller::within(Backoff::new(1_000, 3_000, 150), Duration::from_secs(60));
        p.slow_down();
        assert_eq!(p.next(), Duration::from_secs(2));
        p.slow_down();
        p.slow_down();
        assert_eq!(p.next(), Duration::from_secs(6));
    }
}
