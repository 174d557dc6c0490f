//! The health-check hysteresis: a pure state machine (no I/O, no clock, no
//! wasmtime) that turns a stream of check results into health transitions,
//! the way ExaBGP's healthcheck program does.
//!
//! - `rise` passing checks in a row make the service [`Health::Up`], `fall`
//!   failing checks in a row make it [`Health::Down`]; the first verdict
//!   after start (or after [`Hysteresis::reset`] / [`Hysteresis::enable`])
//!   is reported too.
//! - Only transitions are reported: a steady state, up or down, reports
//!   nothing, however many checks confirm it.
//! - While a verdict is pending (a streak is building toward a transition)
//!   checks run at the fast interval, otherwise at the normal interval.
//! - [`Hysteresis::disable`] reports [`Health::Disabled`] and ignores checks
//!   until [`Hysteresis::enable`].

use std::time::Duration;

use serde::Serialize;

/// The health of a service as reported to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// `rise` checks in a row passed.
    Up,
    /// `fall` checks in a row failed.
    Down,
    /// Switched off by the operator.
    Disabled,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Disabled => "disabled",
        })
    }
}

/// The knobs of the hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HysteresisConfig {
    /// Delay between checks in a steady state.
    pub interval: Duration,
    /// Delay between checks while a transition is pending.
    pub fast_interval: Duration,
    /// Passing checks in a row needed to report up (at least 1).
    pub rise: u32,
    /// Failing checks in a row needed to report down (at least 1).
    pub fall: u32,
}

/// The state machine. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Hysteresis {
    config: HysteresisConfig,
    /// The last health reported, `None` before the first verdict.
    reported: Option<Health>,
    /// Passing checks in a row.
    passes: u32,
    /// Failing checks in a row.
    failures: u32,
}

impl Hysteresis {
    /// A fresh machine with no verdict yet.
    pub fn new(config: HysteresisConfig) -> Self {
        Hysteresis {
            config,
            reported: None,
            passes: 0,
            failures: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> HysteresisConfig {
        self.config
    }

    /// Replaces the configuration (on reload), keeping the health and the
    /// current streaks; no transition is reported by this call itself.
    pub fn set_config(&mut self, config: HysteresisConfig) {
        self.config = config;
    }

    /// The last health reported, if any.
    pub fn health(&self) -> Option<Health> {
        self.reported
    }

    /// Records one check result; returns the new health if it changed.
    /// Ignored (returns `None`) while disabled.
    pub fn record(&mut self, passed: bool) -> Option<Health> {
        if self.reported == Some(Health::Disabled) {
            return None;
        }
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
            if self.reported != Some(Health::Up) && self.passes >= self.config.rise.max(1) {
                return self.report(Health::Up);
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.passes = 0;
            if self.reported != Some(Health::Down) && self.failures >= self.config.fall.max(1) {
                return self.report(Health::Down);
            }
        }
        None
    }

    /// Switches checks off; reports [`Health::Disabled`] unless already so.
    pub fn disable(&mut self) -> Option<Health> {
        self.passes = 0;
        self.failures = 0;
        if self.reported == Some(Health::Disabled) {
            None
        } else {
            self.report(Health::Disabled)
        }
    }

    /// Switches checks back on. Nothing is reported now; the next verdict
    /// (after `rise` passes or `fall` failures) is. No effect unless disabled.
    pub fn enable(&mut self) {
        if self.is_disabled() {
            self.clear();
        }
    }

    /// True while disabled.
    pub fn is_disabled(&self) -> bool {
        self.reported == Some(Health::Disabled)
    }

    /// Forgets the verdict and streaks (after the plugin failed and its routes
    /// may have been withdrawn): the next verdict is reported even if it
    /// equals the last one. A disabled machine stays disabled.
    pub fn reset(&mut self) {
        if !self.is_disabled() {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.reported = None;
        self.passes = 0;
        self.failures = 0;
    }

    /// True while a transition is pending: no verdict yet, or a streak
    /// against the current verdict has started.
    pub fn changing(&self) -> bool {
        match self.reported {
            None => true,
            Some(Health::Up) => self.failures > 0,
            Some(Health::Down) => self.passes > 0,
            Some(Health::Disabled) => false,
        }
    }

    /// How long to wait before the next check: the fast interval while
    /// [`changing`](Self::changing), else the interval. `None` while
    /// disabled (no checks run).
    pub fn next_delay(&self) -> Option<Duration> {
        if self.is_disabled() {
            None
        } else if self.changing() {
            Some(self.config.fast_interval)
        } else {
            Some(self.config.interval)
        }
    }

    fn report(&mut self, health: Health) -> Option<Health> {
        self.reported = Some(health);
        Some(health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis::new(HysteresisConfig {
            interval: Duration::from_secs(5),
            fast_interval: Duration::from_secs(1),
            rise,
            fall,
        })
    }

    fn feed(m: &mut Hysteresis, results: &[bool]) -> Vec<Option<Health>> {
        results.iter().map(|&r| m.record(r)).collect()
    }

    #[test]
    fn first_verdict_needs_rise_or_fall() {
        let mut m = machine(3, 2);
        assert_eq!(feed(&mut m, &[true, true]), vec![None, None]);
        assert!(m.changing());
        assert_eq!(m.record(true), Some(Health::Up));
        assert!(!m.changing());

        let mut m = machine(3, 2);
        assert_eq!(
            feed(&mut m, &[false, false]),
            vec![None, Some(Health::Down)]
        );
    }

    #[test]
    fn steady_states_report_nothing() {
        let mut m = machine(1, 1);
        assert_eq!(m.record(true), Some(Health::Up));
        assert_eq!(feed(&mut m, &[true; 10]), vec![None; 10]);
        assert_eq!(m.record(false), Some(Health::Down));
        assert_eq!(feed(&mut m, &[false; 10]), vec![None; 10]);
    }

    #[test]
    fn flapping_within_the_counts_does_not_transition() {
        let mut m = machine(2, 3);
        feed(&mut m, &[true, true]);
        assert_eq!(m.health(), Some(Health::Up));
        // two failures, then a pass: the fall streak restarts.
        assert_eq!(
            feed(&mut m, &[false, false, true, false, false]),
            vec![None; 5]
        );
        assert_eq!(m.record(false), Some(Health::Down));
        // one pass is not enough to rise.
        assert_eq!(feed(&mut m, &[true, false, true]), vec![None; 3]);
        assert_eq!(m.record(true), Some(Health::Up));
    }

    #[test]
    fn fast_interval_while_changing() {
        let mut m = machine(2, 2);
        assert_eq!(m.next_delay(), Some(Duration::from_secs(1)));
        feed(&mut m, &[true, true]);
        assert_eq!(m.next_delay(), Some(Duration::from_secs(5)));
        m.record(false);
        assert_eq!(m.next_delay(), Some(Duration::from_secs(1)));
        m.record(true);
        assert_eq!(m.next_delay(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn disable_and_enable() {
        let mut m = machine(1, 1);
        m.record(true);
        assert_eq!(m.disable(), Some(Health::Disabled));
        assert_eq!(m.disable(), None);
        assert_eq!(m.next_delay(), None);
        assert_eq!(m.record(false), None);
        m.reset();
        assert!(m.is_disabled(), "reset keeps a disabled machine disabled");
        m.enable();
        assert_eq!(m.health(), None);
        assert_eq!(m.record(true), Some(Health::Up));
    }

    #[test]
    fn reset_restates_the_verdict() {
        let mut m = machine(2, 2);
        feed(&mut m, &[true, true]);
        m.reset();
        assert_eq!(m.health(), None);
        assert_eq!(feed(&mut m, &[true, true]), vec![None, Some(Health::Up)]);
    }

    #[test]
    fn set_config_keeps_health() {
        let mut m = machine(1, 1);
        m.record(true);
        m.set_config(HysteresisConfig {
            interval: Duration::from_secs(9),
            fast_interval: Duration::from_secs(2),
            rise: 4,
            fall: 4,
        });
        assert_eq!(m.health(), Some(Health::Up));
        assert_eq!(m.next_delay(), Some(Duration::from_secs(9)));
        assert_eq!(feed(&mut m, &[false; 3]), vec![None; 3]);
        assert_eq!(m.record(false), Some(Health::Down));
    }

    #[test]
    fn zero_counts_behave_as_one() {
        let mut m = machine(0, 0);
        assert_eq!(m.record(true), Some(Health::Up));
        assert_eq!(m.record(false), Some(Health::Down));
    }
}
