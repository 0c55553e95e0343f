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

/// How often a wait says where it is, when nothing else was said.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);

/// What a wait has seen, for the lines it prints while waiting and for the
/// message when it gives up: the state last seen, the last event, and the
/// passing faults of the polled calls (counted, and reported as such).
#[derive(Debug, Clone)]
pub struct WaitNotes {
    subject: String,
    started: Instant,
    last_said: Instant,
    state: Option<String>,
    last_event: Option<String>,
    /// Each fault: how often since it was last reported, and when it first came.
    faults: Vec<(String, u32, Instant)>,
}

impl WaitNotes {
    /// A wait for `subject` (`stack app-dev`), started `now`.
    pub fn new(subject: impl Into<String>, now: Instant) -> WaitNotes {
        WaitNotes {
            subject: subject.into(),
            started: now,
            last_said: now,
            state: None,
            last_event: None,
            faults: Vec::new(),
        }
    }

    /// The state the awaited thing is in now.
    pub fn state(&mut self, state: &str) {
        self.state = Some(state.to_string());
    }

    /// A line was printed for an event (it counts as having said something).
    pub fn event(&mut self, line: &str, now: Instant) {
        self.last_event = Some(line.trim().to_string());
        self.last_said = now;
    }

    /// A polled call failed in passing and is tried again.
    pub fn fault(&mut self, label: &str, now: Instant) {
        match self.faults.iter_mut().find(|(l, _, _)| l == label) {
            Some((_, n, _)) => *n = n.saturating_add(1),
            None => self.faults.push((label.to_string(), 1, now)),
        }
    }

    /// The lines to print now: nothing, unless [`REPORT_EVERY`] passed since
    /// something was last said; then the faults since, and where the wait is.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        if now.saturating_duration_since(self.last_said) < REPORT_EVERY {
            return Vec::new();
        }
        self.last_said = now;
        let mut lines: Vec<String> = self
            .faults
            .drain(..)
            .map(|(label, n, first)| {
                format!(
                    "  {label} ×{n} in {}, still retrying",
                    human_duration(now.saturating_duration_since(first))
                )
            })
            .collect();
        let state = self.state.as_deref().unwrap_or("not seen yet");
        let event = self
            .last_event
            .as_deref()
            .map(|e| format!("; last event: {e}"))
            .unwrap_or_default();
        lines.push(format!(
            "  still waiting: {} is {state} ({}{event})",
            self.subject,
            human_duration(now.saturating_duration_since(self.started))
        ));
        lines
    }

    /// What was running, for the message when the wait gives up: the
    /// operation the last state names (`the create of stack app-dev`).
    pub fn operation(&self) -> String {
        let state = self.state.as_deref().unwrap_or_default();
        let what = if state.starts_with("CREATE") || state == "REVIEW_IN_PROGRESS" {
            "the create of "
        } else if state.starts_with("DELETE") {
            "the delete of "
        } else if state.starts_with("UPDATE_ROLLBACK") || state.starts_with("ROLLBACK") {
            "the rollback of "
        } else if state.starts_with("UPDATE") {
            "the update of "
        } else if state.starts_with("IMPORT") {
            "the import into "
        } else {
            "the current operation of "
        };
        format!("{what}{}", self.subject)
    }

    /// The last state seen and how long the wait ran, for the same message.
    pub fn last_seen(&self, now: Instant) -> String {
        format!(
            "last seen {} after {}",
            self.state
                .as_deref()
                .unwrap_or("in no state (it never answered)"),
            human_duration(now.saturating_duration_since(self.started))
        )
    }
}

/// `45s`, `2m05s`, `1h02m`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn next_delay(delay: Duration, grow_percent: u32, max: Duration) -> Duration {
    (delay * grow_percent / 100).min(max).max(delay.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_says_where_it_is_every_30_seconds_and_counts_faults() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut n = WaitNotes::new("stack app-dev", t0);
        n.state("CREATE_IN_PROGRESS");
        assert!(n.due(at(29)).is_empty());
        assert_eq!(
            n.due(at(30)),
            ["  still waiting: stack app-dev is CREATE_IN_PROGRESS (30s)"]
        );
        // An event printed counts as having said something.
        n.event("  CREATE_COMPLETE  Role  AWS::IAM::Role ", at(40));
        assert!(n.due(at(65)).is_empty());
        for s in 41..53 {
            n.fault("DescribeStacks: HTTP 500", at(s));
        }
        n.fault("DescribeStacks: throttled", at(60));
        assert_eq!(
            n.due(at(161)),
            [
                "  DescribeStacks: HTTP 500 ×12 in 2m00s, still retrying",
                "  DescribeStacks: throttled ×1 in 1m41s, still retrying",
                "  still waiting: stack app-dev is CREATE_IN_PROGRESS (2m41s; last event: CREATE_COMPLETE  Role  AWS::IAM::Role)",
            ]
        );
        assert_eq!(n.operation(), "the create of stack app-dev");
        assert_eq!(
            n.last_seen(at(161)),
            "last seen CREATE_IN_PROGRESS after 2m41s"
        );
        n.state("UPDATE_ROLLBACK_IN_PROGRESS");
        assert_eq!(n.operation(), "the rollback of stack app-dev");
        assert_eq!(
            WaitNotes::new("stack s", t0).operation(),
            "the current operation of stack s"
        );
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
    }

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
