//! The detector's attack list and what to do about each attack, without any
//! host interface (tested natively).
//!
//! The document (see README.md for the whole schema):
//!
//! ```json
//! {"attacks": [{"id": "a1", "destination": "192.0.2.10/32", "source": "198.51.100.0/24",
//!               "protocol": "udp", "destination-port": 53, "source-port": null,
//!               "action": "rate-limit", "rate": 9600}]}
//! ```
//!
//! A document without an `attacks` list is garbage (the caller keeps its
//! rules). One malformed attack is skipped with a reason; the others stand.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use wasmbgp_sdk::flow::{Action, FlowRule, NumericMatch, Protocol, RouteTarget};
use wasmbgp_sdk::{Error, Prefix};

/// The fields of an attack the plugin reads (and keeps in its saved table);
/// any other field is ignored.
const FIELDS: [&str; 9] = [
    "id",
    "destination",
    "source",
    "protocol",
    "destination-port",
    "source-port",
    "action",
    "rate",
    "redirect",
];

/// What the rule of an attack does with the matching traffic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mitigation {
    /// Drop it.
    Discard,
    /// Limit it to this many bytes per second.
    RateLimit(f32),
    /// Send it into the VRF importing this route target.
    Redirect(RouteTarget),
}

impl Mitigation {
    /// The FlowSpec actions announced for it.
    pub fn actions(&self) -> Vec<Action> {
        vec![match *self {
            Mitigation::Discard => Action::Discard,
            Mitigation::RateLimit(bytes_per_second) => Action::RateLimit { bytes_per_second },
            Mitigation::Redirect(target) => Action::Redirect(target),
        }]
    }
}

impl fmt::Display for Mitigation {
    /// As the `default-action` setting writes it: `discard`,
    /// `rate-limit:9600`, `redirect:65001:999`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mitigation::Discard => f.write_str("discard"),
            Mitigation::RateLimit(rate) => write!(f, "rate-limit:{rate}"),
            Mitigation::Redirect(target) => write!(f, "redirect:{target}"),
        }
    }
}

/// Checks a rate in bytes per second, `value` as written in `text`: a
/// finite number, 0 or more, that an f32 holds.
fn rate(value: f64, text: &str) -> Result<f32, String> {
    if value.is_finite() && value >= 0.0 && value <= f64::from(f32::MAX) {
        Ok(value as f32)
    } else {
        Err(format!(
            "rate {text}: expected bytes per second, a number from 0 (0 discards)"
        ))
    }
}

/// Parses a mitigation as the `default-action` setting writes it:
/// `discard`, `rate-limit:BYTES_PER_SECOND`, `redirect:ROUTE_TARGET`, or
/// `redirect` alone for `redirect_target`.
pub fn parse_mitigation(
    text: &str,
    redirect_target: Option<RouteTarget>,
) -> Result<Mitigation, String> {
    let text = text.trim();
    let (word, argument) = match text.split_once(':') {
        Some((word, argument)) => (word, Some(argument)),
        None => (text, None),
    };
    match (word, argument) {
        ("discard", None) => Ok(Mitigation::Discard),
        ("rate-limit", Some(n)) => {
            let value: f64 = n
                .trim()
                .parse()
                .map_err(|_| format!("rate-limit:{n}: the rate is not a number"))?;
            Ok(Mitigation::RateLimit(rate(value, n.trim())?))
        }
        ("redirect", Some(target)) => Ok(Mitigation::Redirect(
            target.parse().map_err(|e| format!("{e}"))?,
        )),
        ("redirect", None) => redirect_target.map(Mitigation::Redirect).ok_or_else(|| {
            "redirect needs a route target: redirect:65001:999, or the redirect-target setting"
                .to_string()
        }),
        _ => Err(format!(
            "{text:?}: expected discard, rate-limit:BYTES_PER_SECOND (rate-limit:9600), redirect:ROUTE_TARGET (redirect:65001:999) or redirect"
        )),
    }
}

/// What applies to attacks that leave things out: the `default-action` and
/// `redirect-target` settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    /// For an attack without `action`.
    pub mitigation: Mitigation,
    /// For `"action": "redirect"` without `redirect`.
    pub redirect_target: Option<RouteTarget>,
}

/// One attack, turned into a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Attack {
    /// Its `id`, or `#N` (its position in the list, from 1) without one.
    pub id: String,
    /// The packets it is about.
    pub rule: FlowRule,
    /// What to do with them.
    pub mitigation: Mitigation,
    /// The fields it was read from (those the plugin knows), to save with
    /// the table: a restarted instance reads them again.
    pub record: Value,
}

/// The attacks of one answer.
#[derive(Debug, Default)]
pub struct Feed {
    /// The attacks that make sense, in the detector's order.
    pub attacks: Vec<Attack>,
    /// Why each of the others was skipped.
    pub invalid: Vec<String>,
}

/// Reads the detector's answer.
pub fn parse_feed(body: &[u8], defaults: &Defaults) -> Result<Feed, String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let list = document
        .get("attacks")
        .and_then(Value::as_array)
        .ok_or("the answer has no \"attacks\" list")?;
    let mut feed = Feed::default();
    for (index, value) in list.iter().enumerate() {
        match parse_attack(index + 1, value, defaults) {
            Ok(attack) => feed.attacks.push(attack),
            Err(why) => feed.invalid.push(why),
        }
    }
    Ok(feed)
}

/// Reads one attack, the `position`th of its list (from 1), into a rule;
/// the error names it and says what is wrong.
pub fn parse_attack(position: usize, value: &Value, defaults: &Defaults) -> Result<Attack, String> {
    let Some(fields) = value.as_object() else {
        return Err(format!("attack #{position}: not a JSON object"));
    };
    let id = match fields.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("#{position}"),
    };
    read_attack(id.clone(), fields, defaults).map_err(|e| {
        if id.starts_with('#') {
            format!("attack {id}: {e}")
        } else {
            format!("attack #{position} (id {id:?}): {e}")
        }
    })
}

/// A field that is absent or `null` is not there.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn read_attack(
    id: String,
    fields: &Map<String, Value>,
    defaults: &Defaults,
) -> Result<Attack, Error> {
    let prefix = |name: &str| -> Result<Option<Prefix>, Error> {
        match field(fields, name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(
                text.parse()
                    .map_err(|e| Error::new(format!("{name}: {e}")))?,
            )),
            Some(other) => Err(format!(
                "{name}: expected a prefix such as \"192.0.2.10/32\", not {other}"
            )
            .into()),
        }
    };
    let destination = prefix("destination")?;
    let source = prefix("source")?;
    // The family comes from the prefixes: an attack without any would be a
    // rule on every address.
    let mut rule = match (destination, source) {
        (Some(d), Some(s)) if d.is_ipv4() != s.is_ipv4() => {
            return Err(format!("destination {d} and source {s} are of different families").into());
        }
        (Some(d), _) => FlowRule::for_destination(d),
        (None, Some(s)) if s.is_ipv4() => FlowRule::ipv4(),
        (None, Some(_)) => FlowRule::ipv6(),
        (None, None) => return Err("it needs a destination or a source prefix".into()),
    };
    if let Some(s) = source {
        rule = rule.source(s);
    }
    if let Some(protocol) = read_protocol(fields)? {
        rule = rule.protocol(protocol);
    }
    if let Some(ports) = read_ports(fields, "destination-port")? {
        rule = rule.destination_ports(ports);
    }
    if let Some(ports) = read_ports(fields, "source-port")? {
        rule = rule.source_ports(ports);
    }
    rule.check()?;
    let mitigation = read_mitigation(fields, defaults)?;
    let record = Value::Object(
        FIELDS
            .iter()
            .filter_map(|name| fields.get(*name).map(|v| (name.to_string(), v.clone())))
            .collect(),
    );
    Ok(Attack {
        id,
        rule,
        mitigation,
        record,
    })
}

/// `"protocol"`: a name ("udp") or a number from 0 to 255.
fn read_protocol(fields: &Map<String, Value>) -> Result<Option<Protocol>, Error> {
    match field(fields, "protocol") {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(
            text.parse()
                .map_err(|e| Error::new(format!("protocol: {e}")))?,
        )),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map(|n| Some(Protocol(n)))
            .ok_or_else(|| format!("protocol: {n} is not a number from 0 to 255").into()),
        Some(other) => {
            Err(format!("protocol: expected a name (\"udp\") or a number, not {other}").into())
        }
    }
}

/// A port field: a number, or "LOW-HIGH" for a range (both included).
fn read_ports(fields: &Map<String, Value>, name: &str) -> Result<Option<NumericMatch>, Error> {
    let expected = || {
        Error::new(format!(
            "{name}: expected a port from 0 to 65535 or a range \"LOW-HIGH\", not {}",
            fields.get(name).map_or_else(String::new, Value::to_string)
        ))
    };
    let port = |text: &str| -> Option<u16> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match field(fields, name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let port = n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(expected)?;
            Ok(Some(NumericMatch::equal(port.into())))
        }
        Some(Value::String(text)) => {
            let (low, high) = match text.split_once('-') {
                Some((low, high)) => (port(low), port(high)),
                None => (port(text), port(text)),
            };
            match (low, high) {
                (Some(low), Some(high)) if low <= high => {
                    Ok(Some(NumericMatch::range(low.into(), high.into())))
                }
                _ => Err(expected()),
            }
        }
        Some(_) => Err(expected()),
    }
}

/// `"action"` with `"rate"` or `"redirect"`, else the default.
fn read_mitigation(fields: &Map<String, Value>, defaults: &Defaults) -> Result<Mitigation, Error> {
    let action = match field(fields, "action") {
        None => return Ok(defaults.mitigation),
        Some(Value::String(action)) => action.as_str(),
        Some(other) => return Err(format!("action: expected a string, not {other}").into()),
    };
    match action {
        "discard" => Ok(Mitigation::Discard),
        "rate-limit" => match field(fields, "rate") {
            Some(Value::Number(n)) => {
                Ok(Mitigation::RateLimit(rate(n.as_f64().unwrap_or(f64::NAN), &n.to_string())?))
            }
            Some(other) => Err(format!("rate: expected a number of bytes per second, not {other}").into()),
            None => Err("action rate-limit needs a \"rate\" (bytes per second)".into()),
        },
        "redirect" => match field(fields, "redirect") {
            Some(Value::String(target)) => Ok(Mitigation::Redirect(
                target
                    .parse()
                    .map_err(|e| Error::new(format!("redirect: {e}")))?,
            )),
            Some(other) => Err(format!("redirect: expected a route target such as \"65001:999\", not {other}").into()),
            None => defaults.redirect_target.map(Mitigation::Redirect).ok_or_else(|| {
                "action redirect needs a \"redirect\" route target (or the redirect-target setting)"
                    .into()
            }),
        },
        other => Err(format!(
            "action {other:?}: expected \"rate-limit\", \"discard\" or \"redirect\""
        )
        .into()),
    }
}

impl FromStr for Mitigation {
    type Err = String;

    /// [`parse_mitigation`] without a redirect target.
    fn from_str(text: &str) -> Result<Self, String> {
        parse_mitigation(text, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            mitigation: Mitigation::Discard,
            redirect_target: None,
        }
    }

    fn feed(json: &str) -> Feed {
        parse_feed(json.as_bytes(), &defaults()).unwrap()
    }

    #[test]
    fn the_documented_example() {
        let f = feed(
            r#"{"attacks":[{"id":"a1","destination":"192.0.2.10/32","protocol":"udp",
                "source":"198.51.100.0/24","destination-port":53,"source-port":null,
                "rate":9600,"action":"rate-limit","redirect":"65001:999","pps":123456}],
                "generated":"2024-01-01T00:00:00Z"}"#,
        );
        assert!(f.invalid.is_empty(), "{:?}", f.invalid);
        let a = &f.attacks[0];
        assert_eq!(a.id, "a1");
        assert_eq!(
            a.rule.to_string(),
            "destination 192.0.2.10/32 source 198.51.100.0/24 protocol =udp destination-port =53"
        );
        assert_eq!(a.mitigation, Mitigation::RateLimit(9600.0));
        assert_eq!(
            a.mitigation.actions(),
            [Action::RateLimit {
                bytes_per_second: 9600.0
            }]
        );
        // Unknown fields are not kept; null ones are, as given.
        let record = a.record.as_object().unwrap();
        assert!(!record.contains_key("pps"));
        assert_eq!(record["source-port"], Value::Null);
        // The record reads back into the same attack.
        assert_eq!(parse_attack(1, &a.record, &defaults()).unwrap(), *a);
    }

    #[test]
    fn actions_and_defaults() {
        let target: RouteTarget = "65001:999".parse().unwrap();
        let with_target = Defaults {
            mitigation: Mitigation::RateLimit(1000.0),
            redirect_target: Some(target),
        };
        let one = |json: &str, defaults: &Defaults| {
            let f = parse_feed(format!("{{\"attacks\":[{json}]}}").as_bytes(), defaults).unwrap();
            match (f.attacks.first(), f.invalid.first()) {
                (Some(a), _) => Ok(a.mitigation),
                (None, Some(why)) => Err(why.clone()),
                _ => unreachable!(),
            }
        };
        let d = r#""destination":"192.0.2.1/32""#;
        assert_eq!(
            one(&format!("{{{d}}}"), &with_target),
            Ok(Mitigation::RateLimit(1000.0))
        );
        assert_eq!(
            one(&format!(r#"{{{d},"action":null}}"#), &defaults()),
            Ok(Mitigation::Discard)
        );
        assert_eq!(
            one(
                &format!(r#"{{{d},"action":"discard","rate":5}}"#),
                &with_target
            ),
            Ok(Mitigation::Discard)
        );
        assert_eq!(
            one(&format!(r#"{{{d},"action":"redirect"}}"#), &with_target),
            Ok(Mitigation::Redirect(target))
        );
        assert_eq!(
            one(
                &format!(r#"{{{d},"action":"redirect","redirect":"192.0.2.1:7"}}"#),
                &defaults()
            ),
            Ok(Mitigation::Redirect("192.0.2.1:7".parse().unwrap()))
        );
        assert_eq!(
            one(
                &format!(r#"{{{d},"action":"rate-limit","rate":0}}"#),
                &defaults()
            ),
            Ok(Mitigation::RateLimit(0.0))
        );
        for (json, needle) in [
            (r#""action":"redirect""#, "redirect-target setting"),
            (r#""action":"rate-limit""#, "needs a \"rate\""),
            (r#""action":"rate-limit","rate":-1"#, "rate -1"),
            (r#""action":"rate-limit","rate":"fast""#, "rate: expected"),
            (r#""action":"rate-limit","rate":1e300"#, "rate 1e+300"),
            (r#""action":"block""#, "\"block\""),
            (r#""action":7"#, "action: expected a string"),
            (r#""action":"redirect","redirect":"65001""#, "route target"),
        ] {
            let why = one(&format!("{{{d},{json}}}"), &defaults()).unwrap_err();
            assert!(why.contains(needle), "{json}: {why}");
            assert!(why.starts_with("attack #1:"), "{why}");
        }
    }

    #[test]
    fn rules_from_the_fields() {
        let rule = |json: &str| -> Result<String, String> {
            parse_attack(3, &serde_json::from_str(json).unwrap(), &defaults())
                .map(|a| a.rule.to_string())
        };
        assert_eq!(
            rule(
                r#"{"destination":"2001:db8::1/128","protocol":6,"destination-port":"1024-65535"}"#
            ),
            Ok(
                "destination 2001:db8::1/128 next-header =tcp destination-port [ >=1024&<=65535 ]"
                    .into()
            )
        );
        // A source alone is enough (the family is the source's).
        assert_eq!(
            rule(r#"{"source":"10.0.0.0/24","protocol":"tcp","destination-port":80}"#),
            Ok("source 10.0.0.0/24 protocol =tcp destination-port =80".into())
        );
        assert_eq!(
            rule(r#"{"source":"2001:db8:1::/48"}"#),
            Ok("source 2001:db8:1::/48".into())
        );
        assert_eq!(
            rule(r#"{"destination":"192.0.2.0/24","source-port":"53"}"#),
            Ok("destination 192.0.2.0/24 source-port =53".into())
        );
        for (json, needle) in [
            (r#"{"protocol":"udp"}"#, "destination or a source"),
            (r#"{"destination":"192.0.2.1/24"}"#, "host bits"),
            (
                r#"{"destination":"192.0.2.1/32","source":"2001:db8::/32"}"#,
                "different families",
            ),
            (r#"{"destination":32}"#, "destination: expected a prefix"),
            (
                r#"{"destination":"192.0.2.1/32","protocol":"udpp"}"#,
                "protocol",
            ),
            (
                r#"{"destination":"192.0.2.1/32","protocol":300}"#,
                "protocol: 300",
            ),
            (
                r#"{"destination":"192.0.2.1/32","destination-port":70000}"#,
                "destination-port",
            ),
            (
                r#"{"destination":"192.0.2.1/32","source-port":"9-1"}"#,
                "source-port",
            ),
            (
                r#"{"destination":"192.0.2.1/32","source-port":"1-x"}"#,
                "source-port",
            ),
            (
                r#"{"destination":"192.0.2.1/32","source-port":-1}"#,
                "source-port",
            ),
            (
                r#"{"destination":"192.0.2.1/32","source-port":[53]}"#,
                "source-port",
            ),
        ] {
            let why = rule(json).unwrap_err();
            assert!(why.contains(needle), "{json}: {why}");
            assert!(why.starts_with("attack #3"), "{why}");
        }
        let why = parse_attack(2, &serde_json::json!({"id": "x9"}), &defaults()).unwrap_err();
        assert!(why.starts_with("attack #2 (id \"x9\"):"), "{why}");
        let why = parse_attack(4, &serde_json::json!(["x"]), &defaults()).unwrap_err();
        assert_eq!(why, "attack #4: not a JSON object");
        let numeric_id = parse_attack(
            1,
            &serde_json::json!({"id": 17, "source": "10.0.0.0/8"}),
            &defaults(),
        );
        assert_eq!(numeric_id.unwrap().id, "17");
    }

    #[test]
    fn garbage_and_partial_lists() {
        for bad in [
            "",
            "<html>",
            "{}",
            r#"{"attacks":null}"#,
            r#"{"attacks":{}}"#,
            "[]",
        ] {
            assert!(parse_feed(bad.as_bytes(), &defaults()).is_err(), "{bad}");
        }
        let f = feed(r#"{"attacks":[]}"#);
        assert!(f.attacks.is_empty() && f.invalid.is_empty());
        let f = feed(
            r#"{"attacks":[{"id":"bad","destination":"nope"},{"id":"good","destination":"192.0.2.1/32"},7]}"#,
        );
        assert_eq!(f.attacks.len(), 1);
        assert_eq!(f.attacks[0].id, "good");
        assert_eq!(f.invalid.len(), 2);
        assert!(
            f.invalid[0].starts_with("attack #1 (id \"bad\"): destination:"),
            "{:?}",
            f.invalid
        );
        assert_eq!(f.invalid[1], "attack #3: not a JSON object");
    }

    #[test]
    fn default_action_setting() {
        let target: RouteTarget = "65001:999".parse().unwrap();
        assert_eq!(parse_mitigation("discard", None), Ok(Mitigation::Discard));
        assert_eq!(
            parse_mitigation(" rate-limit:9600 ", None),
            Ok(Mitigation::RateLimit(9600.0))
        );
        assert_eq!(
            parse_mitigation("redirect:4200000000:7", None),
            Ok(Mitigation::Redirect("4200000000:7".parse().unwrap()))
        );
        assert_eq!(
            parse_mitigation("redirect", Some(target)),
            Ok(Mitigation::Redirect(target))
        );
        for bad in [
            "",
            "drop",
            "discard:1",
            "rate-limit",
            "rate-limit:x",
            "rate-limit:-5",
            "redirect",
            "redirect:x",
        ] {
            assert!(parse_mitigation(bad, None).is_err(), "{bad}");
        }
        for m in [
            Mitigation::Discard,
            Mitigation::RateLimit(9600.0),
            Mitigation::Redirect(target),
        ] {
            assert_eq!(m.to_string().parse::<Mitigation>(), Ok(m));
        }
    }
}
