//! Which events become alerts, and the delivery loop over a transport (the
//! `wasi:http` one in the component, a fake in tests).

use crate::alert::Alert;
use crate::queue::{Outcome, Queue, RetryPolicy};

/// A POST in progress, over whatever carries it.
pub trait Transport {
    /// Starts `POST url` with the JSON `body`.
    fn start(&mut self, body: &str) -> Result<(), String>;
    /// Waits at most `wait_ms` for the request started last: `None` while it
    /// is still in flight, else its status or error.
    fn poll(&mut self, wait_ms: u64) -> Option<Result<u16, String>>;
    /// Abandons the request in flight.
    fn cancel(&mut self);
}

/// What the plugin reports (the log, in the component).
pub trait Report {
    fn info(&mut self, message: &str);
    fn warn(&mut self, message: &str);
}

/// Settings of the delivery.
#[derive(Clone, Debug)]
pub struct Options {
    pub url: String,
    pub policy: RetryPolicy,
    /// A request not answered within this is a failure.
    pub timeout_ms: u64,
    /// Alerts waiting at most.
    pub max_pending: usize,
    /// The longest a call waits for answers.
    pub max_wait_ms: u64,
    pub session_up: bool,
    pub sent_notifications: bool,
}

/// A session state change, as the alert needs it.
pub struct StateChange<'a> {
    pub neighbor: String,
    pub peer_as: u32,
    pub old: &'a str,
    pub new: &'a str,
    pub reason: &'a str,
}

pub struct Webhook {
    pub options: Options,
    queue: Queue,
    /// Events before `end-of-snapshot` describe the present, not changes.
    in_snapshot: bool,
    /// When the request in flight started (monotonic ms), if one is.
    in_flight_since: Option<u64>,
}

impl Webhook {
    pub fn new(options: Options) -> Webhook {
        Webhook {
            queue: Queue::new(options.max_pending, options.policy),
            options,
            in_snapshot: true,
            in_flight_since: None,
        }
    }

    #[cfg(test)]
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn end_of_snapshot(&mut self) {
        self.in_snapshot = false;
    }

    /// A resync was asked for (or a lag seen): until the next
    /// `end-of-snapshot`, events are not changes.
    pub fn snapshot_starts(&mut self) {
        self.in_snapshot = true;
    }

    fn push(&mut self, alert: Alert, report: &mut dyn Report) {
        let dropped = self.queue.push(
            alert.to_json(),
            alert.summary(),
            self.in_flight_since.is_some(),
        );
        if let Some(dropped) = dropped {
            report.warn(&format!(
                "too many alerts waiting ({}): dropped the oldest, {} ({} dropped so far)",
                self.options.max_pending, dropped.summary, self.queue.dropped
            ));
        }
    }

    /// A session changed state.
    pub fn on_state(&mut self, change: &StateChange<'_>, time_ms: u64, report: &mut dyn Report) {
        if self.in_snapshot || change.old == change.new {
            return;
        }
        let established = "established";
        if change.old == established && change.new != established {
            let alert = Alert::SessionDown {
                neighbor: change.neighbor.clone(),
                peer_as: change.peer_as,
                old: change.old.to_string(),
                new: change.new.to_string(),
                reason: change.reason.to_string(),
                time_ms,
            };
            self.push(alert, report);
        } else if self.options.session_up && change.new == established {
            let alert = Alert::SessionUp {
                neighbor: change.neighbor.clone(),
                peer_as: change.peer_as,
                old: change.old.to_string(),
                new: change.new.to_string(),
                reason: change.reason.to_string(),
                time_ms,
            };
            self.push(alert, report);
        }
    }

    /// A NOTIFICATION went by.
    #[allow(clippy::too_many_arguments)]
    pub fn on_notification(
        &mut self,
        neighbor: String,
        peer_as: u32,
        received: bool,
        code: u8,
        subcode: u8,
        description: &str,
        time_ms: u64,
        report: &mut dyn Report,
    ) {
        if self.in_snapshot || !(received || self.options.sent_notifications) {
            return;
        }
        let alert = Alert::Notification {
            neighbor,
            peer_as,
            direction: if received { "received" } else { "sent" }.to_string(),
            code,
            subcode,
            description: description.to_string(),
            time_ms,
        };
        self.push(alert, report);
    }

    /// Delivers what is due: collects the answer of the request in flight,
    /// starts the next due alert, and so on, waiting at most
    /// `max_wait_ms` in all. `now` reads the monotonic clock (ms).
    pub fn pump(
        &mut self,
        transport: &mut dyn Transport,
        now: &mut dyn FnMut() -> u64,
        report: &mut dyn Report,
    ) {
        let start = now();
        // Bounded: a few deliveries per call at most.
        for _ in 0..16 {
            let t = now();
            if let Some(since) = self.in_flight_since {
                let spent = t.saturating_sub(start);
                let wait = self.options.max_wait_ms.saturating_sub(spent);
                let left = (since + self.options.timeout_ms).saturating_sub(t);
                let result = match transport.poll(wait.min(left)) {
                    Some(result) => result,
                    None if now() >= since + self.options.timeout_ms => {
                        transport.cancel();
                        Err(format!("no answer within {} ms", self.options.timeout_ms))
                    }
                    None => return, // still in flight: the next call looks again
                };
                self.in_flight_since = None;
                let t = now();
                let (ok, why) = match result {
                    Ok(status) if (200..300).contains(&status) => (true, String::new()),
                    Ok(status) => (false, format!("answered {status}")),
                    Err(error) => (false, error),
                };
                let summary = self
                    .queue
                    .due(u64::MAX)
                    .map(|p| p.summary.clone())
                    .unwrap_or_default();
                match self.queue.finish(ok, t) {
                    Outcome::Delivered => report.info(&format!("alert delivered: {summary}")),
                    Outcome::Retry { at_ms } => report.warn(&format!(
                        "alert not delivered to {}: {why}; retrying in {} ms: {summary}",
                        self.options.url,
                        at_ms.saturating_sub(t)
                    )),
                    Outcome::GaveUp => report.warn(&format!(
                        "alert dropped after {} attempts to {} ({why}): {summary}",
                        self.options.policy.retries + 1,
                        self.options.url
                    )),
                }
                continue;
            }
            let Some(pending) = self.queue.due(t) else {
                return;
            };
            let body = pending.body.clone();
            match transport.start(&body) {
                Ok(()) => self.in_flight_since = Some(t),
                Err(error) => {
                    let summary = pending.summary.clone();
                    match self.queue.finish(false, t) {
                        Outcome::GaveUp => report.warn(&format!(
                            "alert dropped after {} attempts to {} ({error}): {summary}",
                            self.options.policy.retries + 1,
                            self.options.url
                        )),
                        _ => report.warn(&format!(
                            "alert not sent to {}: {error}; will retry: {summary}",
                            self.options.url
                        )),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct Fake {
        sent: Vec<String>,
        answers: VecDeque<Option<Result<u16, String>>>,
        in_flight: bool,
        cancelled: usize,
    }

    impl Transport for Fake {
        fn start(&mut self, body: &str) -> Result<(), String> {
            self.sent.push(body.to_string());
            self.in_flight = true;
            Ok(())
        }
        fn poll(&mut self, _wait_ms: u64) -> Option<Result<u16, String>> {
            let answer = self.answers.pop_front().unwrap_or(None);
            if answer.is_some() {
                self.in_flight = false;
            }
            answer
        }
        fn cancel(&mut self) {
            self.in_flight = false;
            self.cancelled += 1;
        }
    }

    #[derive(Default)]
    struct Log(Vec<String>);
    impl Report for Log {
        fn info(&mut self, m: &str) {
            self.0.push(format!("info {m}"));
        }
        fn warn(&mut self, m: &str) {
            self.0.push(format!("warn {m}"));
        }
    }

    fn hook() -> Webhook {
        Webhook::new(Options {
            url: "http://127.0.0.1:9000/hook".into(),
            policy: RetryPolicy {
                retries: 2,
                initial_ms: 100,
                max_ms: 1_000,
            },
            timeout_ms: 2_000,
            max_pending: 4,
            max_wait_ms: 20,
            session_up: false,
            sent_notifications: false,
        })
    }

    fn down() -> StateChange<'static> {
        StateChange {
            neighbor: "192.0.2.1".into(),
            peer_as: 65001,
            old: "established",
            new: "idle",
            reason: "hold timer expired",
        }
    }

    #[test]
    fn nothing_during_the_snapshot_and_only_changes_after() {
        let mut w = hook();
        let mut log = Log::default();
        w.on_state(&down(), 1, &mut log);
        w.on_notification("192.0.2.1".into(), 65001, true, 6, 2, "x", 1, &mut log);
        assert_eq!(w.queue().len(), 0);
        w.end_of_snapshot();
        w.on_state(
            &StateChange {
                old: "idle",
                new: "idle",
                ..down()
            },
            1,
            &mut log,
        );
        w.on_state(
            &StateChange {
                old: "idle",
                new: "established",
                ..down()
            },
            1,
            &mut log,
        );
        w.on_notification("192.0.2.1".into(), 65001, false, 6, 2, "x", 1, &mut log);
        assert_eq!(w.queue().len(), 0);
        w.on_notification("192.0.2.1".into(), 65001, true, 6, 2, "x", 1, &mut log);
        w.on_state(&down(), 1, &mut log);
        assert_eq!(w.queue().len(), 2);
    }

    #[test]
    fn delivers_retries_and_gives_up() {
        let mut w = hook();
        let mut log = Log::default();
        w.end_of_snapshot();
        w.on_state(&down(), 7, &mut log);
        let mut fake = Fake::default();
        let mut clock = 0u64;
        // Answered 500, then 503, then an error: given up after 3 attempts.
        fake.answers.extend([Some(Ok(500))]);
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(fake.sent.len(), 1);
        assert!(fake.sent[0].starts_with(r#"{"event":"session-down","neighbor":"192.0.2.1""#));
        // Not due yet.
        clock = 50;
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(fake.sent.len(), 1);
        clock = 100;
        fake.answers.extend([Some(Ok(503))]);
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(fake.sent.len(), 2);
        clock = 300;
        fake.answers
            .extend([Some(Err("connection refused".into()))]);
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(fake.sent.len(), 3);
        assert_eq!(w.queue().len(), 0);
        assert_eq!(w.queue().failed, 1);
        assert!(
            log.0.last().unwrap().contains("dropped after 3 attempts"),
            "{:?}",
            log.0
        );

        // A 204 is a success.
        w.on_state(&down(), 8, &mut log);
        fake.answers.extend([Some(Ok(204))]);
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(w.queue().delivered, 1);
    }

    #[test]
    fn a_slow_answer_is_collected_later_or_times_out() {
        let mut w = hook();
        let mut log = Log::default();
        w.end_of_snapshot();
        w.on_state(&down(), 7, &mut log);
        let mut fake = Fake::default();
        let mut clock = 0u64;
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(fake.sent.len(), 1);
        assert_eq!(w.queue().len(), 1);
        clock = 1_000;
        fake.answers.extend([Some(Ok(200))]);
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(w.queue().delivered, 1);

        w.on_state(&down(), 9, &mut log);
        w.pump(&mut fake, &mut || clock, &mut log);
        clock = 3_000;
        w.pump(&mut fake, &mut || clock, &mut log);
        assert_eq!(fake.cancelled, 1);
        assert!(
            log.0.iter().any(|l| l.contains("no answer within 2000 ms")),
            "{:?}",
            log.0
        );
        assert_eq!(w.queue().len(), 1, "retried later");
    }
}
