//! The alerts waiting to be delivered: bounded (the oldest is dropped, and
//! counted, when full), delivered in order, one at a time, each retried with
//! exponential backoff a bounded number of times.

use std::collections::VecDeque;

/// An alert waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub body: String,
    pub summary: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// No attempt before this (monotonic milliseconds).
    pub not_before_ms: u64,
}

/// What became of an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; the next attempt is due at this time.
    Retry {
        at_ms: u64,
    },
    /// Failed for the last time: the alert is dropped.
    GaveUp,
}

/// The retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The delay before the first retry; doubled for each next one.
    pub initial_ms: u64,
    /// The longest delay.
    pub max_ms: u64,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 = the first retry).
    pub fn delay_ms(&self, retry: u32) -> u64 {
        let factor = 1u64
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u64::MAX);
        self.initial_ms.saturating_mul(factor).min(self.max_ms)
    }
}

/// The queue.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Pending>,
    capacity: usize,
    policy: RetryPolicy,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Alerts given up on after the last retry.
    pub failed: u64,
    /// Alerts delivered.
    pub delivered: u64,
}

impl Queue {
    pub fn new(capacity: usize, policy: RetryPolicy) -> Queue {
        Queue {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            policy,
            dropped: 0,
            failed: 0,
            delivered: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds an alert, due now. When the queue is full the oldest one that is
    /// not in flight is dropped; returns it.
    pub fn push(&mut self, body: String, summary: String, in_flight: bool) -> Option<Pending> {
        let mut dropped = None;
        if self.items.len() >= self.capacity {
            // The head may be in flight: drop the one after it then.
            let victim = if in_flight && self.items.len() > 1 {
                1
            } else {
                0
            };
            if !(in_flight && self.items.len() == 1) {
                dropped = self.items.remove(victim);
                self.dropped += 1;
            }
        }
        self.items.push_back(Pending {
            body,
            summary,
            attempts: 0,
            not_before_ms: 0,
        });
        dropped
    }

    /// The head of the queue, if an attempt is due.
    pub fn due(&self, now_ms: u64) -> Option<&Pending> {
        self.items.front().filter(|p| now_ms >= p.not_before_ms)
    }

    /// Records the result of an attempt on the head of the queue.
    pub fn finish(&mut self, ok: bool, now_ms: u64) -> Outcome {
        let Some(head) = self.items.front_mut() else {
            return Outcome::GaveUp;
        };
        head.attempts += 1;
        if ok {
            self.items.pop_front();
            self.delivered += 1;
            return Outcome::Delivered;
        }
        if head.attempts > self.policy.retries {
            self.items.pop_front();
            self.failed += 1;
            return Outcome::GaveUp;
        }
        let at_ms = now_ms.saturating_add(self.policy.delay_ms(head.attempts));
        head.not_before_ms = at_ms;
        Outcome::Retry { at_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        initial_ms: 500,
        max_ms: 3_000,
    };

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(POLICY.delay_ms(1), 500);
        assert_eq!(POLICY.delay_ms(2), 1_000);
        assert_eq!(POLICY.delay_ms(3), 2_000);
        assert_eq!(POLICY.delay_ms(4), 3_000);
        assert_eq!(POLICY.delay_ms(200), 3_000);
    }

    #[test]
    fn retries_then_gives_up() {
        let mut q = Queue::new(10, POLICY);
        q.push("a".into(), "a".into(), false);
        assert!(q.due(0).is_some());
        assert_eq!(q.finish(false, 0), Outcome::Retry { at_ms: 500 });
        assert!(q.due(499).is_none());
        assert!(q.due(500).is_some());
        assert_eq!(q.finish(false, 500), Outcome::Retry { at_ms: 1_500 });
        assert_eq!(q.finish(false, 1_500), Outcome::Retry { at_ms: 3_500 });
        // The first attempt and 3 retries: 4 failures in all.
        assert_eq!(q.finish(false, 3_500), Outcome::GaveUp);
        assert_eq!(q.len(), 0);
        assert_eq!(q.failed, 1);
    }

    #[test]
    fn delivers_in_order() {
        let mut q = Queue::new(10, POLICY);
        q.push("a".into(), "a".into(), false);
        q.push("b".into(), "b".into(), false);
        assert_eq!(q.finish(false, 0), Outcome::Retry { at_ms: 500 });
        // "b" waits behind "a".
        assert!(q.due(100).is_none());
        assert_eq!(q.due(500).unwrap().body, "a");
        assert_eq!(q.finish(true, 500), Outcome::Delivered);
        assert_eq!(q.due(500).unwrap().body, "b");
        assert_eq!(q.delivered, 1);
    }

    #[test]
    fn bounded_drops_the_oldest_not_in_flight() {
        let mut q = Queue::new(2, POLICY);
        q.push("a".into(), "a".into(), false);
        q.push("b".into(), "b".into(), false);
        let dropped = q.push("c".into(), "c".into(), false).unwrap();
        assert_eq!(dropped.body, "a");
        // "b" is in flight: "c" goes instead.
        let dropped = q.push("d".into(), "d".into(), true).unwrap();
        assert_eq!(dropped.body, "c");
        assert_eq!(q.dropped, 2);
        assert_eq!(q.len(), 2);
        assert_eq!(q.due(0).unwrap().body, "b");
    }
}
