//! The rules the plugin holds, and how each poll changes them: announce
//! what the detector lists (up to `max-rules`), withdraw what it no longer
//! lists, and when it cannot be read, keep the rules until their TTL. No
//! host interface here beyond [`FlowRoutes`] and the log (tested natively).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use wasmbgp_sdk::flow::FlowRule;
use wasmbgp_sdk::log;
use wasmbgp_sdk::routes::RouteError;

use crate::attacks::{Attack, Defaults, Mitigation, parse_attack};

/// Where rules go: the host's `routes` interface in the component, a
/// recorder in the tests.
pub trait FlowRoutes {
    /// Announces `rule` with `mitigation` (again: replaces its actions).
    fn announce(&mut self, rule: &FlowRule, mitigation: &Mitigation) -> Result<(), RouteError>;
    /// Withdraws `rule`.
    fn withdraw(&mut self, rule: &FlowRule) -> Result<(), RouteError>;
}

/// The limits from the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most rules held at once (`max-rules`).
    pub max_rules: usize,
    /// How long a rule outlives the last answer that listed its attack
    /// (`ttl`), in milliseconds.
    pub ttl_ms: u64,
}

/// A rule the plugin announced.
#[derive(Clone, Debug)]
struct Entry {
    /// The attack it was announced for (the first listed, when several
    /// attacks have the same rule).
    id: String,
    /// What it does.
    mitigation: Mitigation,
    /// The attack's fields, saved with the table.
    record: Value,
    /// When an answer last listed its attack (wall clock, ms).
    last_listed_ms: u64,
    /// False for a rule restored from the saved table: this instance has
    /// not announced it yet (the host may have withdrawn it when the
    /// previous instance failed), so it is announced again.
    confirmed: bool,
}

/// A rule the host refused.
#[derive(Clone, Debug)]
struct Refusal {
    mitigation: Mitigation,
    reason: String,
    /// Only `limit-exceeded` may pass later (when other rules go): the
    /// others (`invalid`, `denied`) are not tried again while the attack
    /// stays the same.
    retry: bool,
}

/// What one poll did, for the check's verdict, the log and the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Rules announced or re-announced.
    pub announced: usize,
    /// Rules withdrawn.
    pub withdrawn: usize,
    /// The ids of the attacks left out by `max-rules`.
    pub over_cap: Vec<String>,
    /// Rules the host refuses (now or still): "id: reason".
    pub refused: Vec<String>,
    /// Withdrawals the host refused (retried at the next poll).
    pub failed_withdrawals: usize,
}

/// The plugin's rules.
#[derive(Debug)]
pub struct Table {
    limits: Limits,
    rules: BTreeMap<FlowRule, Entry>,
    refused: BTreeMap<FlowRule, Refusal>,
}

/// A route error in one line.
fn describe(error: &RouteError) -> String {
    wasmbgp_sdk::Error::from(error.clone()).to_string()
}

impl Table {
    /// An empty table.
    pub fn new(limits: Limits) -> Self {
        Table {
            limits,
            rules: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// The rules held.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when no rule is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules held, with what they do.
    #[cfg(test)]
    pub fn rules(&self) -> impl Iterator<Item = (&FlowRule, &Mitigation)> {
        self.rules.iter().map(|(rule, e)| (rule, &e.mitigation))
    }

    /// Applies a good answer listing `attacks`, at `now_ms`.
    pub fn update(
        &mut self,
        attacks: Vec<Attack>,
        now_ms: u64,
        routes: &mut impl FlowRoutes,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        // One rule per distinct match: the first attack listed wins.
        let mut seen = BTreeSet::new();
        let wanted: Vec<Attack> = attacks
            .into_iter()
            .filter(|a| seen.insert(a.rule.clone()))
            .collect();
        // The cap: rules already held keep their place (a new attack never
        // pushes out a mitigation in force), then new ones in list order.
        let (held, new): (Vec<Attack>, Vec<Attack>) = wanted
            .into_iter()
            .partition(|a| self.rules.contains_key(&a.rule));
        let mut selected = Vec::new();
        let mut over_cap = BTreeSet::new();
        for attack in held.into_iter().chain(new) {
            if selected.len() < self.limits.max_rules {
                selected.push(attack);
            } else {
                outcome.over_cap.push(attack.id);
                over_cap.insert(attack.rule);
            }
        }
        let keep: BTreeSet<&FlowRule> = selected.iter().map(|a| &a.rule).collect();
        let gone: Vec<FlowRule> = self
            .rules
            .keys()
            .filter(|rule| !keep.contains(rule))
            .cloned()
            .collect();
        // Withdraw first: it frees room under the host's max-routes.
        for rule in gone {
            let why = if over_cap.contains(&rule) {
                "over max-rules"
            } else {
                "its attack is no longer listed"
            };
            self.withdraw(&rule, why, routes, &mut outcome);
        }
        self.refused.retain(|rule, _| keep.contains(rule));
        for attack in selected {
            match self.rules.get_mut(&attack.rule) {
                Some(entry) if entry.confirmed && entry.mitigation == attack.mitigation => {
                    entry.last_listed_ms = now_ms;
                    entry.id = attack.id;
                    entry.record = attack.record;
                }
                _ => self.announce(attack, now_ms, routes, &mut outcome),
            }
        }
        outcome
    }

    /// After a failed poll: withdraws the rules whose TTL ran out, and the
    /// oldest ones past `max-rules` (a table restored under a lower cap);
    /// announces the restored ones still in force. The others stay as
    /// they are.
    pub fn expire(&mut self, now_ms: u64, routes: &mut impl FlowRoutes) -> Outcome {
        let mut outcome = Outcome::default();
        let expired: Vec<FlowRule> = self
            .rules
            .iter()
            .filter(|(_, e)| now_ms.saturating_sub(e.last_listed_ms) >= self.limits.ttl_ms)
            .map(|(rule, _)| rule.clone())
            .collect();
        for rule in expired {
            self.withdraw(
                &rule,
                "its TTL ran out (the detector did not list it since)",
                routes,
                &mut outcome,
            );
        }
        if self.rules.len() > self.limits.max_rules {
            let mut by_age: Vec<(u64, FlowRule)> = self
                .rules
                .iter()
                .map(|(rule, e)| (e.last_listed_ms, rule.clone()))
                .collect();
            by_age.sort();
            let excess = self.rules.len() - self.limits.max_rules;
            for (_, rule) in by_age.into_iter().take(excess) {
                self.withdraw(&rule, "over max-rules", routes, &mut outcome);
            }
        }
        let restored: Vec<(FlowRule, Entry)> = self
            .rules
            .iter()
            .filter(|(_, e)| !e.confirmed)
            .map(|(rule, e)| (rule.clone(), e.clone()))
            .collect();
        for (rule, entry) in restored {
            let attack = Attack {
                id: entry.id,
                rule,
                mitigation: entry.mitigation,
                record: entry.record,
            };
            self.announce(attack, entry.last_listed_ms, routes, &mut outcome);
        }
        outcome
    }

    /// How long until the next rule expires if the detector stays silent.
    pub fn next_expiry_ms(&self, now_ms: u64) -> Option<u64> {
        self.rules
            .values()
            .map(|e| (e.last_listed_ms + self.limits.ttl_ms).saturating_sub(now_ms))
            .min()
    }

    fn withdraw(
        &mut self,
        rule: &FlowRule,
        why: &str,
        routes: &mut impl FlowRoutes,
        outcome: &mut Outcome,
    ) {
        let id = self.rules.get(rule).map_or("", |e| e.id.as_str());
        match routes.withdraw(rule) {
            Ok(()) => {
                log::info(&format!("withdrew `{rule}` (attack {id}): {why}"));
                self.rules.remove(rule);
                outcome.withdrawn += 1;
            }
            Err(error) => {
                // Kept, so that the next poll tries again.
                log::warn(&format!(
                    "could not withdraw `{rule}` (attack {id}): {}",
                    describe(&error)
                ));
                outcome.failed_withdrawals += 1;
            }
        }
    }

    fn announce(
        &mut self,
        attack: Attack,
        listed_ms: u64,
        routes: &mut impl FlowRoutes,
        outcome: &mut Outcome,
    ) {
        let rule = attack.rule;
        if let Some(refusal) = self.refused.get(&rule)
            && !refusal.retry
            && refusal.mitigation == attack.mitigation
        {
            outcome
                .refused
                .push(format!("{}: {}", attack.id, refusal.reason));
            if let Some(entry) = self.rules.get_mut(&rule) {
                entry.last_listed_ms = listed_ms;
            }
            return;
        }
        match routes.announce(&rule, &attack.mitigation) {
            Ok(()) => {
                log::info(&format!(
                    "announced `{rule}` then {} (attack {})",
                    attack.mitigation, attack.id
                ));
                self.refused.remove(&rule);
                outcome.announced += 1;
                self.rules.insert(
                    rule,
                    Entry {
                        id: attack.id,
                        mitigation: attack.mitigation,
                        record: attack.record,
                        last_listed_ms: listed_ms,
                        confirmed: true,
                    },
                );
            }
            Err(error) => {
                let reason = describe(&error);
                let known = self
                    .refused
                    .get(&rule)
                    .is_some_and(|r| r.reason == reason && r.mitigation == attack.mitigation);
                if !known {
                    log::warn(&format!(
                        "the host refused `{rule}` then {} (attack {}): {reason}",
                        attack.mitigation, attack.id
                    ));
                }
                outcome.refused.push(format!("{}: {reason}", attack.id));
                // A rule held with other actions stays in force as it was.
                if let Some(entry) = self.rules.get_mut(&rule) {
                    entry.last_listed_ms = listed_ms;
                }
                self.refused.insert(
                    rule,
                    Refusal {
                        mitigation: attack.mitigation,
                        reason,
                        retry: matches!(error, RouteError::LimitExceeded(_)),
                    },
                );
            }
        }
    }

    /// The table as saved in the state store: each rule's attack fields
    /// and when it was last listed.
    pub fn save(&self) -> Vec<u8> {
        let rules: Vec<Value> = self
            .rules
            .values()
            .map(|e| json!({"attack": e.record, "last-listed-ms": e.last_listed_ms}))
            .collect();
        json!({"version": 1, "rules": rules})
            .to_string()
            .into_bytes()
    }

    /// A table read back from [`Table::save`]'s bytes: its rules count as
    /// not yet announced by this instance. Attacks that no longer read
    /// (the settings changed) are left out with a warning: if the host
    /// still has them, they stay until the plugin is removed.
    pub fn restore(bytes: &[u8], limits: Limits, defaults: &Defaults) -> Result<Table, String> {
        let saved: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("the saved table is not JSON: {e}"))?;
        let rules = saved
            .get("rules")
            .and_then(Value::as_array)
            .ok_or("the saved table has no rules list")?;
        let mut table = Table::new(limits);
        for (i, saved) in rules.iter().enumerate() {
            let last_listed_ms = saved.get("last-listed-ms").and_then(Value::as_u64);
            let attack = saved
                .get("attack")
                .map(|a| parse_attack(i + 1, a, defaults));
            match (attack, last_listed_ms) {
                (Some(Ok(attack)), Some(last_listed_ms)) => {
                    table.rules.insert(
                        attack.rule,
                        Entry {
                            id: attack.id,
                            mitigation: attack.mitigation,
                            record: attack.record,
                            last_listed_ms,
                            confirmed: false,
                        },
                    );
                }
                (Some(Err(why)), _) => log::warn(&format!("saved rule left out: {why}")),
                _ => log::warn(&format!("saved rule {} is malformed: {saved}", i + 1)),
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attacks::parse_feed;

    /// The host's flow table, with refusals on demand.
    #[derive(Default)]
    struct Recorder {
        table: BTreeMap<String, Mitigation>,
        calls: Vec<String>,
        refuse: Option<RouteError>,
        /// Rules (as text) the host refuses as invalid.
        invalid: Vec<String>,
        /// The host's max-routes.
        max_routes: Option<usize>,
    }

    impl FlowRoutes for Recorder {
        fn announce(&mut self, rule: &FlowRule, m: &Mitigation) -> Result<(), RouteError> {
            let key = rule.to_string();
            self.calls.push(format!("announce {key} then {m}"));
            if let Some(e) = &self.refuse {
                return Err(e.clone());
            }
            if self.invalid.contains(&key) {
                return Err(RouteError::Invalid("no".into()));
            }
            if self
                .max_routes
                .is_some_and(|max| !self.table.contains_key(&key) && self.table.len() >= max)
            {
                return Err(RouteError::LimitExceeded("max-routes".into()));
            }
            self.table.insert(key, *m);
            Ok(())
        }
        fn withdraw(&mut self, rule: &FlowRule) -> Result<(), RouteError> {
            self.calls.push(format!("withdraw {rule}"));
            if let Some(e) = &self.refuse {
                return Err(e.clone());
            }
            self.table.remove(&rule.to_string());
            Ok(())
        }
    }

    impl Recorder {
        fn take_calls(&mut self) -> Vec<String> {
            std::mem::take(&mut self.calls)
        }
    }

    const DEFAULTS: Defaults = Defaults {
        mitigation: Mitigation::Discard,
        redirect_target: None,
    };

    /// Attacks on 192.0.2.N/32, by (id, N) with the default action.
    fn attacks(list: &[(&str, u8)]) -> Vec<Attack> {
        let json: Vec<String> = list
            .iter()
            .map(|(id, n)| format!(r#"{{"id":"{id}","destination":"192.0.2.{n}/32"}}"#))
            .collect();
        let body = format!("{{\"attacks\":[{}]}}", json.join(","));
        parse_feed(body.as_bytes(), &DEFAULTS).unwrap().attacks
    }

    fn limits(max_rules: usize) -> Limits {
        Limits {
            max_rules,
            ttl_ms: 300_000,
        }
    }

    fn held(table: &Table) -> Vec<String> {
        table.rules().map(|(rule, _)| rule.to_string()).collect()
    }

    #[test]
    fn announces_new_attacks_and_withdraws_gone_ones() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(10));
        let o = table.update(attacks(&[("a1", 1), ("a2", 2)]), 1_000, &mut host);
        assert_eq!((o.announced, o.withdrawn), (2, 0));
        assert_eq!(host.table.len(), 2);
        assert_eq!(
            host.take_calls(),
            [
                "announce destination 192.0.2.1/32 then discard",
                "announce destination 192.0.2.2/32 then discard"
            ]
        );
        // Listed again unchanged: nothing to say to the host.
        let o = table.update(attacks(&[("a1", 1), ("a2", 2)]), 2_000, &mut host);
        assert_eq!(o, Outcome::default());
        assert!(host.take_calls().is_empty());
        // a1 gone, a3 new: the withdrawal comes first.
        let o = table.update(attacks(&[("a2", 2), ("a3", 3)]), 3_000, &mut host);
        assert_eq!((o.announced, o.withdrawn), (1, 1));
        assert_eq!(
            host.take_calls(),
            [
                "withdraw destination 192.0.2.1/32",
                "announce destination 192.0.2.3/32 then discard"
            ]
        );
        assert_eq!(
            held(&table),
            ["destination 192.0.2.2/32", "destination 192.0.2.3/32"]
        );
        // An empty list withdraws everything.
        let o = table.update(Vec::new(), 4_000, &mut host);
        assert_eq!(o.withdrawn, 2);
        assert!(table.is_empty() && host.table.is_empty());
    }

    #[test]
    fn a_changed_action_is_announced_again() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(10));
        table.update(attacks(&[("a1", 1)]), 0, &mut host);
        let mut changed = attacks(&[("a1", 1)]);
        changed[0].mitigation = Mitigation::RateLimit(9600.0);
        host.take_calls();
        let o = table.update(changed, 1, &mut host);
        assert_eq!((o.announced, o.withdrawn), (1, 0));
        assert_eq!(
            host.take_calls(),
            ["announce destination 192.0.2.1/32 then rate-limit:9600"]
        );
    }

    #[test]
    fn the_cap_keeps_rules_in_force_and_skips_the_rest() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(2));
        let o = table.update(
            attacks(&[("a1", 1), ("a2", 2), ("a3", 3), ("a4", 4)]),
            0,
            &mut host,
        );
        assert_eq!(o.announced, 2);
        assert_eq!(o.over_cap, ["a3", "a4"]);
        assert_eq!(
            held(&table),
            ["destination 192.0.2.1/32", "destination 192.0.2.2/32"]
        );
        // A new attack listed first does not push out a rule in force.
        let o = table.update(attacks(&[("a5", 5), ("a1", 1), ("a2", 2)]), 1, &mut host);
        assert_eq!(o.over_cap, ["a5"]);
        assert_eq!(o.announced, 0);
        // When one goes, the next listed takes its place.
        let o = table.update(attacks(&[("a5", 5), ("a2", 2)]), 2, &mut host);
        assert_eq!((o.announced, o.withdrawn), (1, 1));
        assert!(o.over_cap.is_empty());
        assert_eq!(
            held(&table),
            ["destination 192.0.2.2/32", "destination 192.0.2.5/32"]
        );
        assert!(host.table.len() <= 2);
    }

    #[test]
    fn duplicate_rules_are_one_rule() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(1));
        let o = table.update(attacks(&[("a1", 1), ("again", 1)]), 0, &mut host);
        assert_eq!(o.announced, 1);
        assert!(o.over_cap.is_empty());
        // The second attack alone keeps the rule.
        let o = table.update(attacks(&[("again", 1)]), 1, &mut host);
        assert_eq!(o, Outcome::default());
    }

    #[test]
    fn rules_outlive_a_silent_detector_until_their_ttl() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(10));
        table.update(attacks(&[("a1", 1)]), 0, &mut host);
        table.update(attacks(&[("a1", 1), ("a2", 2)]), 100_000, &mut host);
        host.take_calls();
        assert_eq!(table.next_expiry_ms(100_000), Some(300_000));
        // Silent: nothing changes before the TTL.
        assert_eq!(table.expire(299_999, &mut host), Outcome::default());
        assert_eq!(table.len(), 2);
        // a1 was last listed at 100 000 too.
        let o = table.expire(400_000, &mut host);
        assert_eq!(o.withdrawn, 2);
        assert!(table.is_empty() && host.table.is_empty());
    }

    #[test]
    fn refusals_are_reported_and_retried_only_when_they_may_pass() {
        let mut host = Recorder {
            invalid: vec!["destination 192.0.2.9/32".into()],
            max_routes: Some(1),
            ..Recorder::default()
        };
        let mut table = Table::new(limits(10));
        let o = table.update(attacks(&[("a1", 1), ("a2", 2), ("bad", 9)]), 0, &mut host);
        assert_eq!(o.announced, 1);
        assert_eq!(
            o.refused,
            [
                "a2: route limit exceeded: max-routes",
                "bad: invalid route: no"
            ]
        );
        host.take_calls();
        // Next poll: the limit is tried again, the invalid rule is not.
        let o = table.update(attacks(&[("a1", 1), ("a2", 2), ("bad", 9)]), 1, &mut host);
        assert_eq!(o.refused.len(), 2);
        assert_eq!(
            host.take_calls(),
            ["announce destination 192.0.2.2/32 then discard"]
        );
        // a1 goes: a2 passes.
        let o = table.update(attacks(&[("a2", 2), ("bad", 9)]), 2, &mut host);
        assert_eq!((o.announced, o.withdrawn), (1, 1));
        assert_eq!(o.refused, ["bad: invalid route: no"]);
        // The invalid rule gone from the list, it is forgotten.
        let o = table.update(attacks(&[("a2", 2)]), 3, &mut host);
        assert!(o.refused.is_empty());
    }

    #[test]
    fn a_refused_withdrawal_is_tried_again() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(10));
        table.update(attacks(&[("a1", 1)]), 0, &mut host);
        host.refuse = Some(RouteError::Denied("no neighbor".into()));
        let o = table.update(Vec::new(), 1, &mut host);
        assert_eq!((o.withdrawn, o.failed_withdrawals), (0, 1));
        assert_eq!(table.len(), 1);
        host.refuse = None;
        let o = table.update(Vec::new(), 2, &mut host);
        assert_eq!(o.withdrawn, 1);
        assert!(table.is_empty());
    }

    #[test]
    fn a_restored_table_is_announced_again_then_expires() {
        let mut host = Recorder::default();
        let mut table = Table::new(limits(10));
        let mut listed = attacks(&[("a1", 1), ("a2", 2)]);
        listed[1].mitigation = Mitigation::RateLimit(9600.0);
        // The record is what is saved: a2's says nothing of its action,
        // so after a restart it reads with the default (discard).
        table.update(listed, 50_000, &mut host);
        let saved = table.save();

        // A new instance (the host may have dropped the rules meanwhile).
        let mut host = Recorder::default();
        let mut restored = Table::restore(&saved, limits(10), &DEFAULTS).unwrap();
        assert_eq!(restored.len(), 2);
        // The detector is down: the rules are announced again, kept until the TTL.
        let o = restored.expire(60_000, &mut host);
        assert_eq!(o.announced, 2);
        assert_eq!(host.table.len(), 2);
        assert_eq!(restored.expire(61_000, &mut host), Outcome::default());
        let o = restored.expire(350_000, &mut host);
        assert_eq!(o.withdrawn, 2);

        // Or the detector answers: the restored rules still listed are
        // announced again (once), the others withdrawn.
        let mut host = Recorder::default();
        let mut restored = Table::restore(&saved, limits(10), &DEFAULTS).unwrap();
        let o = restored.update(attacks(&[("a2", 2)]), 60_000, &mut host);
        assert_eq!((o.announced, o.withdrawn), (1, 1));
        assert_eq!(
            restored.update(attacks(&[("a2", 2)]), 61_000, &mut host),
            Outcome::default()
        );

        // A lower cap after the restart: the oldest go first.
        let mut host = Recorder::default();
        let mut table = Table::new(limits(10));
        table.update(attacks(&[("a1", 1)]), 0, &mut host);
        table.update(attacks(&[("a1", 1), ("a2", 2)]), 10, &mut host);
        let mut table = Table::restore(&table.save(), limits(1), &DEFAULTS).unwrap();
        let o = table.expire(20, &mut host);
        assert_eq!(o.withdrawn, 1);
        assert_eq!(held(&table), ["destination 192.0.2.2/32"]);

        assert!(Table::restore(b"garbage", limits(1), &DEFAULTS).is_err());
        let partial = br#"{"version":1,"rules":[{"attack":{"destination":"x"},"last-listed-ms":1},{"attack":{"source":"10.0.0.0/8"}},{"attack":{"source":"10.0.0.0/8"},"last-listed-ms":5}]}"#;
        assert_eq!(
            Table::restore(partial, limits(5), &DEFAULTS).unwrap().len(),
            1
        );
    }
}
