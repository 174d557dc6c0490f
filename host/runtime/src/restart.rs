//! Restart policy after a plugin fault: a pure, clock-injected state machine.
//!
//! Each failure doubles the delay before the next start, from
//! [`RestartPolicy::initial`] up to [`RestartPolicy::max`]. A success (a call
//! that completed without a fault) resets the doubling. When
//! [`RestartPolicy::burst`] failures fall within [`RestartPolicy::window`]
//! the plugin is *failed*: it is then retried only at the longest delay
//! until it succeeds again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The knobs of the restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The longest delay (also the retry delay of a failed plugin).
    pub max: Duration,
    /// Failures within `window` that mark the plugin failed.
    pub burst: usize,
    /// The window for `burst`.
    pub window: Duration,
}

impl Default for RestartPolicy {
    /// 100 ms doubling to 30 s; 5 failures within 60 s mark the plugin failed.
    fn default() -> Self {
        RestartPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            burst: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartDecision {
    /// Wait this long before starting again.
    pub delay: Duration,
    /// True when the plugin is now considered failed (too many failures).
    pub failed: bool,
}

/// Tracks failures of one plugin.
#[derive(Debug, Clone)]
pub struct Restarts {
    policy: RestartPolicy,
    /// Failures since the last success.
    consecutive: u32,
    /// Times of recent failures (within the window).
    recent: VecDeque<Instant>,
    /// Restarts in all, for status.
    total: u64,
    failed: bool,
}

impl Restarts {
    /// No failures yet.
    pub fn new(policy: RestartPolicy) -> Self {
        Restarts {
            policy,
            consecutive: 0,
            recent: VecDeque::new(),
            total: 0,
            failed: false,
        }
    }

    /// Records a failure at `now` and says how long to wait.
    pub fn failure(&mut self, now: Instant) -> RestartDecision {
        self.consecutive = self.consecutive.saturating_add(1);
        self.total += 1;
        self.recent.push_back(now);
        while let Some(&first) = self.recent.front() {
            if now.saturating_duration_since(first) > self.policy.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.policy.burst.max(1) {
            self.failed = true;
        }
        let delay = if self.failed {
            self.policy.max
        } else {
            let shift = self.consecutive.saturating_sub(1).min(31);
            self.policy
                .initial
                .saturating_mul(1u32 << shift)
                .min(self.policy.max)
        };
        RestartDecision {
            delay,
            failed: self.failed,
        }
    }

    /// Records a successful call: the doubling starts over and a failed
    /// plugin is running again.
    pub fn success(&mut self) {
        self.consecutive = 0;
        self.failed = false;
    }

    /// Forgets the failure history (after a reload with a new component).
    pub fn clear(&mut self) {
        self.consecutive = 0;
        self.recent.clear();
        self.failed = false;
    }

    /// Restarts so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True while marked failed.
    pub fn is_failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let policy = RestartPolicy {
            burst: 1000,
            ..RestartPolicy::default()
        };
        let mut r = Restarts::new(policy);
        let t = Instant::now();
        let delays: Vec<u64> = (0..12)
            .map(|i| {
                r.failure(t + Duration::from_secs(i * 100))
                    .delay
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(&delays[..5], &[100, 200, 400, 800, 1600]);
        assert_eq!(delays[11], 30_000);
        r.success();
        assert_eq!(
            r.failure(t + Duration::from_secs(5000)).delay,
            Duration::from_millis(100)
        );
        assert_eq!(r.total(), 13);
    }

    #[test]
    fn burst_within_window_marks_failed() {
        let mut r = Restarts::new(RestartPolicy::default());
        let t = Instant::now();
        for i in 0..4 {
            assert!(!r.failure(t + Duration::from_secs(i)).failed);
        }
        let d = r.failure(t + Duration::from_secs(4));
        assert!(d.failed);
        assert_eq!(d.delay, Duration::from_secs(30));
        assert!(r.is_failed());
        r.success();
        assert!(!r.is_failed());
    }

    #[test]
    fn spread_out_failures_do_not_mark_failed() {
        let mut r = Restarts::new(RestartPolicy::default());
        let t = Instant::now();
        for i in 0..10 {
            assert!(
                !r.failure(t + Duration::from_secs(i * 20)).failed,
                "failure {i}"
            );
        }
    }
}
