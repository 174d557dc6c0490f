//! ExaBGP's flow route syntax: `{ match { source 10.0.0.0/24; destination-port =80;
//! protocol tcp; } then { rate-limit 9600; } }`.
//!
//! Three shapes say the same thing: the block form above, the block form without the
//! outer braces (`match { ... } then { ... }`), and a flat form without braces or
//! semicolons (`source 10.0.0.0/24 destination-port =80 protocol tcp rate-limit 9600`).
//! Give the words after [`super::tokenize`], which makes `{`, `}`, `;`, `[` and `]` words.
//!
//! Match conditions: `source` and `destination` (`10.0.0.0/24`, `2001:db8::/32`, an IPv6
//! offset as ExaBGP writes it, `ADDRESS/LENGTH/OFFSET`, or as RFC 8956 does,
//! `ADDRESS/OFFSET-LENGTH`; `source-ipv4`... name the family too), `protocol` or
//! `next-header` (`tcp`, `udp`, `icmp`, `gre`, `ipv6-icmp`..., or a number), `port`,
//! `destination-port`, `source-port`, `icmp-type` (`echo-request`...), `icmp-code`,
//! `packet-length`, `dscp` (`traffic-class` in IPv6 as ExaBGP says), `flow-label`, and
//! the bitmasks `tcp-flags` (`fin syn rst push ack urg ece cwr ns`) and `fragment`
//! (`dont-fragment is-fragment first-fragment last-fragment not-a-fragment`). A numeric value takes `=`, `>`, `>=`, `<`, `<=`, `!=`
//! (none is `=`), and `true`/`false`; a bitmask `=` (all bits), `!` (none of them), `!=`
//! (not all), none (any). `&` inside a word ANDs terms (`>1024&<2000`, `syn&!ack`), a list
//! `[ =80 =443 ]` ORs its items, and `+` joins bits (`syn+ack`). `family ipv6` makes a
//! rule IPv6 when nothing else says so; otherwise an IPv6 prefix, `next-header`,
//! `traffic-class` or `flow-label` does, and IPv4 is the default. Mixing is an error.
//!
//! Actions: `accept`, `discard`, `rate-limit N` (bytes per second; `rate-limit N packets`
//! or `rate-limit-packets N` for packets), `redirect ASN:N` / `redirect IPv4:N` /
//! `redirect ASNL:N` (to a VRF), `redirect ADDRESS` (to that next hop), `copy ADDRESS`,
//! `redirect-to-nexthop` (to the route's `next-hop`; and to copy the traffic there,
//! `redirect-to-nexthop copy` or `copy-to-nexthop`), `mark DSCP`,
//! `action sample|terminal|sample-terminal|none`; and every attribute word of
//! [`super::apply_words`] (`next-hop`, `community [ ... ]`, `extended-community [ ... ]`,
//! `origin`, `med`, `as-path`, `local-preference`...). The actions are added to the
//! extended communities the attribute words give.

use std::net::{IpAddr, Ipv4Addr};

use super::{apply_words, parse_asn};
use crate::packet::attributes::{NextHop, PathAttributes};
use crate::packet::flowspec::{
    BitmaskOp, Component, FlowPrefix, FlowSpec, NumericOp, TrafficAction, component_type, names,
};
use crate::packet::prefix::{AFI_IPV4, AFI_IPV6, Ipv4Prefix, Ipv6Prefix};
use crate::text::quote;

/// A flow route as an operator writes it: the rule and the attributes (traffic actions
/// among the extended communities) to announce it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRouteSpec {
    /// The rule.
    pub rule: FlowSpec,
    /// Its attributes.
    pub attrs: PathAttributes,
}

/// Parses the words after `flow route`, starting from `defaults` for every attribute not
/// given.
pub fn parse_flow_route<W: AsRef<str>>(
    words: &[W],
    defaults: &PathAttributes,
) -> Result<FlowRouteSpec, String> {
    let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    let sentence = Sentence::read(&words)?;
    let afi = sentence.family()?;
    let components = sentence.components(afi)?;
    let rule = FlowSpec::new(afi, &components).map_err(|e| e.0)?;
    let attrs = sentence.attributes(defaults, afi)?;
    Ok(FlowRouteSpec { rule, attrs })
}

/// The match condition words.
const CONDITIONS: &[&str] = &[
    "source",
    "source-ipv4",
    "source-ipv6",
    "destination",
    "destination-ipv4",
    "destination-ipv6",
    "protocol",
    "next-header",
    "port",
    "destination-port",
    "source-port",
    "icmp-type",
    "icmp-code",
    "tcp-flags",
    "packet-length",
    "dscp",
    "traffic-class",
    "fragment",
    "flow-label",
];

/// The action words.
const ACTIONS: &[&str] = &[
    "accept",
    "discard",
    "rate-limit",
    "rate-limit-packets",
    "redirect",
    "copy",
    "redirect-to-nexthop",
    "copy-to-nexthop",
    "mark",
    "action",
];

/// Attribute words of [`apply_words`] taking one value.
const ATTRIBUTES_WITH_VALUE: &[&str] = &["next-hop", "med", "local-preference", "origin"];
/// Attribute words of [`apply_words`] taking a value or a `[ ]` list.
const ATTRIBUTES_WITH_LIST: &[&str] = &[
    "as-path",
    "community",
    "large-community",
    "extended-community",
];
/// Attribute words of [`apply_words`] taking nothing.
const ATTRIBUTE_FLAGS: &[&str] = &["atomic-aggregate"];

/// Words that shape the sentence and are never a value.
fn is_structure(word: &str) -> bool {
    matches!(word, "{" | "}" | ";" | "[" | "]")
}

/// The words of one match condition, before the family is known (the names of ICMP
/// types depend on it).
struct Condition<'a> {
    keyword: &'a str,
    /// One word, or the items of a `[ ]` list (each ORed with the previous).
    items: Vec<&'a str>,
}

/// Where a word stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Inside the outer `{ }`.
    Outer,
    /// Inside `match { }`: conditions only.
    Match,
    /// Inside `then { }`: actions and attributes only.
    Then,
}

/// What the words say, read in one pass.
#[derive(Default)]
struct Sentence<'a> {
    conditions: Vec<Condition<'a>>,
    /// The AFI a `family` word gives.
    family: Option<u16>,
    /// Words for [`apply_words`], in order.
    attribute_words: Vec<&'a str>,
    /// Whether a `next-hop` word is among them.
    next_hop_given: bool,
    /// The actions, with the word that gave each.
    actions: Vec<(&'a str, TrafficAction)>,
    /// The next hop a `redirect ADDRESS` or `copy ADDRESS` gives.
    redirect_to: Option<IpAddr>,
}

/// A cursor over the words.
struct Words<'w, 'a> {
    words: &'w [&'a str],
    next: usize,
}

impl<'a> Words<'_, 'a> {
    fn next(&mut self) -> Option<&'a str> {
        let word = self.words.get(self.next).copied();
        self.next += 1;
        word
    }

    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.next).copied()
    }

    /// The value after `word`: one word that is not `{ } ; [ ]`.
    fn value(&mut self, word: &str) -> Result<&'a str, String> {
        match self.next() {
            Some(v) if !is_structure(v) => Ok(v),
            _ => Err(format!("{word} needs a value")),
        }
    }

    /// The items of a `[ ]` list whose `[` was read.
    fn list_items(&mut self, word: &str) -> Result<Vec<&'a str>, String> {
        let mut items = Vec::new();
        loop {
            match self.next() {
                Some("]") if items.is_empty() => return Err(format!("{word} [ ] is empty")),
                Some("]") => return Ok(items),
                Some(item) if !is_structure(item) => items.push(item),
                _ => return Err(format!("{word} list is missing its closing ]")),
            }
        }
    }
}

impl<'a> Sentence<'a> {
    fn read(words: &[&'a str]) -> Result<Self, String> {
        let mut sentence = Sentence::default();
        let mut w = Words { words, next: 0 };
        let mut open: Vec<Block> = Vec::new();
        while let Some(word) = w.next() {
            let inside = open.last().copied();
            match word {
                ";" => {}
                "{" if w.next == 1 => open.push(Block::Outer),
                "{" => return Err("unexpected {: blocks open after match or then".into()),
                "}" => {
                    open.pop()
                        .ok_or("unexpected }: there is no block to close")?;
                }
                "[" | "]" => return Err(format!("unexpected {word}")),
                "match" | "then" => {
                    if open.iter().any(|b| *b != Block::Outer) {
                        return Err(format!("{word} {{ }} can not be inside another block"));
                    }
                    if w.next() != Some("{") {
                        return Err(format!("{word} must be followed by {{"));
                    }
                    open.push(if word == "match" {
                        Block::Match
                    } else {
                        Block::Then
                    });
                }
                "family" => sentence.family = Some(parse_family(w.value(word)?)?),
                _ if CONDITIONS.contains(&word) => {
                    if inside == Some(Block::Then) {
                        return Err(format!(
                            "{word} is a match condition: it belongs in match {{ }}, not then {{ }}"
                        ));
                    }
                    sentence.read_condition(word, &mut w)?;
                }
                _ if inside == Some(Block::Match) => {
                    return Err(if is_then_word(word) {
                        format!("{word} belongs in then {{ }}, not match {{ }}")
                    } else {
                        format!("unknown match condition {}", quote(word))
                    });
                }
                _ => sentence.read_then_word(word, &mut w)?,
            }
        }
        if !open.is_empty() {
            return Err("missing } to close a block".into());
        }
        if sentence.conditions.is_empty() {
            return Err("a flow route needs at least one match condition".into());
        }
        Ok(sentence)
    }

    fn read_condition(&mut self, keyword: &'a str, w: &mut Words<'_, 'a>) -> Result<(), String> {
        let items = match w.peek() {
            Some("[") if is_prefix_keyword(keyword) => {
                return Err(format!("{keyword} takes one prefix, not a list"));
            }
            Some("[") => {
                w.next();
                w.list_items(keyword)?
            }
            _ => vec![w.value(keyword)?],
        };
        self.conditions.push(Condition { keyword, items });
        Ok(())
    }

    /// Reads an action or attribute word and its values.
    fn read_then_word(&mut self, word: &'a str, w: &mut Words<'_, 'a>) -> Result<(), String> {
        match word {
            "accept" => {}
            "discard" => self.add_action(word, TrafficAction::RateBytes { asn: 0, rate: 0.0 })?,
            "rate-limit" => {
                let rate = parse_rate(word, w.value(word)?)?;
                let action = match w.peek() {
                    Some("packets") => {
                        w.next();
                        TrafficAction::RatePackets { asn: 0, rate }
                    }
                    Some("bytes") => {
                        w.next();
                        TrafficAction::RateBytes { asn: 0, rate }
                    }
                    _ => TrafficAction::RateBytes { asn: 0, rate },
                };
                self.add_action(word, action)?;
            }
            "rate-limit-packets" => {
                let rate = parse_rate(word, w.value(word)?)?;
                self.add_action(word, TrafficAction::RatePackets { asn: 0, rate })?;
            }
            "redirect" => self.read_redirect(w)?,
            "copy" => {
                let address = read_address(word, w)?;
                self.set_redirect_next_hop(word, address)?;
                self.add_action(word, TrafficAction::RedirectToNextHop { copy: true })?;
            }
            "redirect-to-nexthop" => {
                // `redirect-to-nexthop copy`, as the action prints; `copy ADDRESS` after
                // it would be a second redirect anyway.
                let copy = w.peek() == Some("copy");
                if copy {
                    w.next();
                }
                self.add_action(word, TrafficAction::RedirectToNextHop { copy })?
            }
            "copy-to-nexthop" => {
                self.add_action(word, TrafficAction::RedirectToNextHop { copy: true })?
            }
            "mark" => {
                let dscp = parse_dscp(w.value(word)?)?;
                self.add_action(word, TrafficAction::Mark { dscp })?;
            }
            "action" => {
                let (sample, terminal) = parse_action_flags(w.value(word)?)?;
                self.add_action(word, TrafficAction::Action { sample, terminal })?;
            }
            _ if ATTRIBUTES_WITH_VALUE.contains(&word) => {
                let value = w.value(word)?;
                self.next_hop_given |= word == "next-hop";
                self.attribute_words.extend([word, value]);
            }
            _ if ATTRIBUTES_WITH_LIST.contains(&word) => {
                self.attribute_words.push(word);
                if w.peek() == Some("[") {
                    w.next();
                    let items = w.list_items(word)?;
                    self.attribute_words.push("[");
                    self.attribute_words.extend(items);
                    self.attribute_words.push("]");
                } else {
                    self.attribute_words.push(w.value(word)?);
                }
            }
            _ if ATTRIBUTE_FLAGS.contains(&word) => self.attribute_words.push(word),
            _ => return Err(format!("unknown flow route word {}", quote(word))),
        }
        Ok(())
    }

    /// `redirect ASN:N` (to a VRF) or `redirect ADDRESS` (to a next hop, `[ ADDRESS ]`
    /// too since [`super::tokenize`] splits `[2001:db8::1]`).
    fn read_redirect(&mut self, w: &mut Words<'_, 'a>) -> Result<(), String> {
        let word = "redirect";
        let target = match w.peek() {
            Some("[") => RedirectTarget::NextHop(read_address(word, w)?),
            _ => {
                let value = w.value(word)?;
                match value.parse::<IpAddr>() {
                    Ok(address) => RedirectTarget::NextHop(address),
                    Err(_) => RedirectTarget::Vrf(parse_redirect_target(value)?),
                }
            }
        };
        match target {
            RedirectTarget::NextHop(address) => {
                self.set_redirect_next_hop(word, address)?;
                self.add_action(word, TrafficAction::RedirectToNextHop { copy: false })
            }
            RedirectTarget::Vrf(action) => self.add_action(word, action),
        }
    }

    fn set_redirect_next_hop(&mut self, word: &str, address: IpAddr) -> Result<(), String> {
        match self.redirect_to {
            Some(earlier) if earlier != address => Err(format!(
                "{word} {address} and an earlier redirect to {earlier} disagree"
            )),
            _ => {
                self.redirect_to = Some(address);
                Ok(())
            }
        }
    }

    /// Adds an action, refusing a second one of the same kind (two rates, two redirects).
    fn add_action(&mut self, word: &'a str, action: TrafficAction) -> Result<(), String> {
        let kind = action_kind(&action);
        if let Some((earlier, _)) = self.actions.iter().find(|(_, a)| action_kind(a) == kind) {
            return Err(if *earlier == word {
                format!("{word} is given twice")
            } else {
                format!("{earlier} and {word} both set the {kind}")
            });
        }
        self.actions.push((word, action));
        Ok(())
    }

    /// The rule's family: `family`, the prefixes, `next-header` and `flow-label` must
    /// agree; IPv4 when none says.
    fn family(&self) -> Result<u16, String> {
        // What chose the family so far (`None`: the `family` word), described only for
        // an error: this runs for every rule of a config or a ctl batch.
        let mut chosen: Option<(u16, Option<&Condition<'_>>)> = self.family.map(|afi| (afi, None));
        let reason = |c: Option<&Condition<'_>>, afi: u16| match c {
            None => format!("family {}", family_word(afi)),
            Some(c) => match c.items.first() {
                Some(value) if is_prefix_keyword(c.keyword) => {
                    format!("{} {}", c.keyword, quote(value))
                }
                _ => c.keyword.to_string(),
            },
        };
        for c in &self.conditions {
            let Some(afi) = family_hint(c) else {
                continue;
            };
            match chosen {
                Some((other, why)) if other != afi => {
                    return Err(format!(
                        "{} makes the rule {} but {} makes it {}",
                        reason(Some(c), afi),
                        family_name(afi),
                        reason(why, other),
                        family_name(other)
                    ));
                }
                Some(_) => {}
                None => chosen = Some((afi, Some(c))),
            }
        }
        Ok(chosen.map_or(AFI_IPV4, |(afi, _)| afi))
    }

    fn components(&self, afi: u16) -> Result<Vec<Component>, String> {
        let mut seen: Vec<(u8, &str)> = Vec::new();
        let mut components = Vec::with_capacity(self.conditions.len());
        for c in &self.conditions {
            let component = condition_component(c, afi)?;
            let type_code = component.type_code();
            if let Some((_, earlier)) = seen.iter().find(|(t, _)| *t == type_code) {
                return Err(if *earlier == c.keyword {
                    format!("{} is given twice", c.keyword)
                } else {
                    format!("{earlier} and {} are the same condition", c.keyword)
                });
            }
            seen.push((type_code, c.keyword));
            components.push(component);
        }
        Ok(components)
    }

    /// `defaults` with the attribute words applied, the redirect next hop set, and the
    /// actions added to the extended communities.
    fn attributes(&self, defaults: &PathAttributes, afi: u16) -> Result<PathAttributes, String> {
        let mut attrs = defaults.clone();
        apply_words(&mut attrs, &self.attribute_words)?;
        if let Some(address) = self.redirect_to {
            match attrs.next_hop {
                Some(NextHop::Addr(given)) if self.next_hop_given && given != address => {
                    return Err(format!("redirect {address} and next-hop {given} disagree"));
                }
                _ => attrs.next_hop = Some(NextHop::Addr(address)),
            }
        }
        let to_next_hop = self
            .actions
            .iter()
            .find(|(_, a)| matches!(a, TrafficAction::RedirectToNextHop { .. }));
        if let Some((word, _)) = to_next_hop {
            match attrs.next_hop {
                None => {
                    return Err(format!(
                        "{word} needs a next-hop (next-hop ADDRESS, or redirect ADDRESS)"
                    ));
                }
                Some(NextHop::Addr(address)) if address.is_ipv6() != (afi == AFI_IPV6) => {
                    return Err(format!(
                        "next-hop {address} is {} but the rule is {}",
                        if address.is_ipv6() { "IPv6" } else { "IPv4" },
                        family_name(afi)
                    ));
                }
                Some(_) => {}
            }
        }
        for (_, action) in &self.actions {
            let community = action.to_community();
            if !attrs.extended_communities.contains(&community) {
                attrs.extended_communities.push(community);
            }
        }
        Ok(attrs)
    }
}

fn is_then_word(word: &str) -> bool {
    ACTIONS.contains(&word)
        || ATTRIBUTES_WITH_VALUE.contains(&word)
        || ATTRIBUTES_WITH_LIST.contains(&word)
        || ATTRIBUTE_FLAGS.contains(&word)
}

fn is_prefix_keyword(keyword: &str) -> bool {
    matches!(
        keyword,
        "source"
            | "source-ipv4"
            | "source-ipv6"
            | "destination"
            | "destination-ipv4"
            | "destination-ipv6"
    )
}

/// The family a condition implies, if any.
fn family_hint(c: &Condition<'_>) -> Option<u16> {
    match c.keyword {
        "next-header" | "flow-label" | "traffic-class" | "source-ipv6" | "destination-ipv6" => {
            Some(AFI_IPV6)
        }
        "source-ipv4" | "destination-ipv4" => Some(AFI_IPV4),
        "source" | "destination" => c
            .items
            .first()
            .map(|v| if v.contains(':') { AFI_IPV6 } else { AFI_IPV4 }),
        _ => None,
    }
}

fn family_name(afi: u16) -> &'static str {
    if afi == AFI_IPV6 { "IPv6" } else { "IPv4" }
}

fn family_word(afi: u16) -> &'static str {
    if afi == AFI_IPV6 { "ipv6" } else { "ipv4" }
}

/// `ipv4`, `ipv6`, `ipv4-flowspec` or `ipv6-flowspec`.
fn parse_family(v: &str) -> Result<u16, String> {
    match v {
        "ipv4" | "ipv4-flowspec" => Ok(AFI_IPV4),
        "ipv6" | "ipv6-flowspec" => Ok(AFI_IPV6),
        _ => Err(format!("family must be ipv4 or ipv6, not {}", quote(v))),
    }
}

/// What a kind of action sets: a rule has one of each.
fn action_kind(action: &TrafficAction) -> &'static str {
    match action {
        TrafficAction::RateBytes { .. } => "rate in bytes",
        TrafficAction::RatePackets { .. } => "rate in packets",
        TrafficAction::Action { .. } => "traffic action",
        TrafficAction::RedirectAs2 { .. }
        | TrafficAction::RedirectIpv4 { .. }
        | TrafficAction::RedirectAs4 { .. } => "redirect to a VRF",
        TrafficAction::Mark { .. } => "DSCP mark",
        TrafficAction::RedirectToNextHop { .. } => "redirect to the next hop",
    }
}

fn condition_component(c: &Condition<'_>, afi: u16) -> Result<Component, String> {
    use component_type::*;
    let keyword = c.keyword;
    let prefix = || match c.items.as_slice() {
        [one] => parse_flow_prefix(keyword, one, afi),
        _ => Err(format!("{keyword} takes one prefix")),
    };
    let numeric = |type_code| numeric_ops(c, type_code, afi);
    let bitmask = |type_code| bitmask_ops(c, type_code);
    Ok(match keyword {
        "source" | "source-ipv4" | "source-ipv6" => Component::Source(prefix()?),
        "destination" | "destination-ipv4" | "destination-ipv6" => {
            Component::Destination(prefix()?)
        }
        "protocol" | "next-header" => Component::Protocol(numeric(PROTOCOL)?),
        "port" => Component::Port(numeric(PORT)?),
        "destination-port" => Component::DestinationPort(numeric(DESTINATION_PORT)?),
        "source-port" => Component::SourcePort(numeric(SOURCE_PORT)?),
        "icmp-type" => Component::IcmpType(numeric(ICMP_TYPE)?),
        "icmp-code" => Component::IcmpCode(numeric(ICMP_CODE)?),
        "tcp-flags" => Component::TcpFlags(bitmask(TCP_FLAGS)?),
        "packet-length" => Component::PacketLength(numeric(PACKET_LENGTH)?),
        "dscp" | "traffic-class" => Component::Dscp(numeric(DSCP)?),
        "fragment" => Component::Fragment(bitmask(FRAGMENT)?),
        "flow-label" => Component::FlowLabel(numeric(FLOW_LABEL)?),
        _ => return Err(format!("unknown match condition {}", quote(keyword))),
    })
}

/// `10.0.0.0/24`; IPv6 `2001:db8::/32`, `ADDRESS/LENGTH/OFFSET` (ExaBGP) or
/// `ADDRESS/OFFSET-LENGTH` (RFC 8956 §3.1); a bare address is a host.
fn parse_flow_prefix(keyword: &str, text: &str, afi: u16) -> Result<FlowPrefix, String> {
    let is_v6 = text.contains(':');
    if is_v6 != (afi == AFI_IPV6) {
        return Err(format!(
            "{keyword} {} is {} but the rule is {}",
            quote(text),
            if is_v6 { "IPv6" } else { "IPv4" },
            family_name(afi)
        ));
    }
    if !is_v6 {
        let prefix = text.parse::<Ipv4Prefix>().map_err(|e| e.0)?;
        return Ok(FlowPrefix::V4(prefix));
    }
    let offset_error = || {
        format!(
            "{keyword} {}: the offset must be a number from 0 to 127",
            quote(text)
        )
    };
    let (prefix_text, offset) = match text.split('/').collect::<Vec<_>>().as_slice() {
        [address, length, offset] => (format!("{address}/{length}"), Some(*offset)),
        [address, range] => match range.split_once('-') {
            Some((offset, length)) => (format!("{address}/{length}"), Some(offset)),
            None => (text.to_string(), None),
        },
        _ => (text.to_string(), None),
    };
    let offset = match offset {
        None => 0,
        Some(o) if !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()) => {
            o.parse::<u8>().map_err(|_| offset_error())?
        }
        Some(_) => return Err(offset_error()),
    };
    let prefix = prefix_text.parse::<Ipv6Prefix>().map_err(|e| e.0)?;
    Ok(FlowPrefix::V6 { prefix, offset })
}

/// The operators of a numeric condition: each list item ORed, `&` ANDs inside one.
fn numeric_ops(c: &Condition<'_>, type_code: u8, afi: u16) -> Result<Vec<NumericOp>, String> {
    let mut ops = Vec::new();
    for item in &c.items {
        for (i, term) in terms(c.keyword, item)?.into_iter().enumerate() {
            let mut op = numeric_term(c.keyword, term, type_code, afi)?;
            op.and = i > 0;
            ops.push(op);
        }
    }
    Ok(ops)
}

/// The operators of a bitmask condition.
fn bitmask_ops(c: &Condition<'_>, type_code: u8) -> Result<Vec<BitmaskOp>, String> {
    let mut ops = Vec::new();
    for item in &c.items {
        for (i, term) in terms(c.keyword, item)?.into_iter().enumerate() {
            let mut op = bitmask_term(c.keyword, term, type_code)?;
            op.and = i > 0;
            ops.push(op);
        }
    }
    Ok(ops)
}

/// The `&`-joined terms of one item.
fn terms<'t>(keyword: &str, item: &'t str) -> Result<Vec<&'t str>, String> {
    let terms: Vec<&str> = item.split('&').collect();
    if terms.iter().any(|t| t.is_empty()) {
        return Err(format!(
            "{keyword} {}: & must stand between two terms",
            quote(item)
        ));
    }
    Ok(terms)
}

/// `=80`, `>1024`, `>=1024`, `<`, `<=`, `!=`, a bare value (`=`), `true`, `false`.
fn numeric_term(keyword: &str, term: &str, type_code: u8, afi: u16) -> Result<NumericOp, String> {
    const SIGNS: &[(&str, bool, bool, bool)] = &[
        (">=", false, true, true),
        ("<=", true, false, true),
        ("!=", true, true, false),
        (">", false, true, false),
        ("<", true, false, false),
        ("=", false, false, true),
        ("true", true, true, true),
        ("false", false, false, false),
    ];
    let (lt, gt, eq, value_text) = SIGNS
        .iter()
        .find_map(|(sign, lt, gt, eq)| term.strip_prefix(sign).map(|rest| (*lt, *gt, *eq, rest)))
        .unwrap_or((false, false, true, term));
    let constant = lt == gt && gt == eq;
    let value = if constant && value_text.is_empty() {
        0
    } else {
        names::numeric_value(type_code, afi, value_text).ok_or_else(|| {
            let known = names::numeric_names(type_code, afi);
            let names = if known.is_empty() {
                String::new()
            } else {
                format!(" or one of {}", known.join(" "))
            };
            format!(
                "{keyword} {}: the value must be a number{names}",
                quote(term)
            )
        })?
    };
    Ok(NumericOp {
        and: false,
        lt,
        gt,
        eq,
        value,
    })
}

/// A bare value (any of the bits), `=` (all of them), `!` (none), `!=` (not all).
fn bitmask_term(keyword: &str, term: &str, type_code: u8) -> Result<BitmaskOp, String> {
    let (not, matches, value_text) = if let Some(rest) = term.strip_prefix("!=") {
        (true, true, rest)
    } else if let Some(rest) = term.strip_prefix('!') {
        (true, false, rest)
    } else if let Some(rest) = term.strip_prefix('=') {
        (false, true, rest)
    } else {
        (false, false, term)
    };
    if type_code == component_type::FRAGMENT && value_text.eq_ignore_ascii_case("not-a-fragment") {
        // Neither a later nor a first fragment: `!is-fragment+first-fragment`.
        if matches {
            return Err(format!(
                "{keyword} {}: not-a-fragment takes no =",
                quote(term)
            ));
        }
        return Ok(BitmaskOp {
            and: false,
            not: !not,
            matches: false,
            value: names::NOT_A_FRAGMENT,
        });
    }
    let value = names::bitmask_value(type_code, value_text).ok_or_else(|| {
        format!(
            "{keyword} {}: the value must be {} or a number, joined by +",
            quote(term),
            names::bitmask_names(type_code).join(" ")
        )
    })?;
    Ok(BitmaskOp {
        and: false,
        not,
        matches,
        value,
    })
}

/// Where `redirect` sends traffic.
enum RedirectTarget {
    /// To this next hop.
    NextHop(IpAddr),
    /// To a VRF, by route target.
    Vrf(TrafficAction),
}

/// An address after `redirect` or `copy`, `[ ]` around it allowed.
fn read_address(word: &str, w: &mut Words<'_, '_>) -> Result<IpAddr, String> {
    let bracketed = w.peek() == Some("[");
    if bracketed {
        w.next();
    }
    let text = w.value(word)?;
    if bracketed && w.next() != Some("]") {
        return Err(format!("{word} [ ADDRESS ] is missing its closing ]"));
    }
    if bracketed && w.peek().is_some_and(|next| next.starts_with(':')) {
        return Err(format!(
            "{word} to an IPv6 route target ([ADDRESS]:N) is not supported"
        ));
    }
    text.parse::<IpAddr>()
        .map_err(|_| format!("{word} needs an address, not {}", quote(text)))
}

/// A route target to redirect to: `ASN:N` (2-octet AS if the AS fits 16 bits and N 32,
/// else 4-octet), `ASNL:N` (always 4-octet, as the `target:` communities write it) or
/// `IPv4:N`.
pub(crate) fn parse_redirect_target(v: &str) -> Result<TrafficAction, String> {
    let err = || {
        format!(
            "redirect must be ASN:N, ASNL:N, IPv4:N or an address, not {}",
            quote(v)
        )
    };
    let (admin, number) = v.rsplit_once(':').ok_or_else(err)?;
    let value = decimal(number).ok_or_else(err)?;
    let two_octets = || {
        u16::try_from(value).map_err(|_| {
            format!(
                "redirect {}: with an address or a 4-octet AS the value must be below 65536",
                quote(v)
            )
        })
    };
    if let Ok(address) = admin.parse::<Ipv4Addr>() {
        return Ok(TrafficAction::RedirectIpv4 {
            address,
            value: two_octets()?,
        });
    }
    if let Some(as4) = admin.strip_suffix('L') {
        let asn = parse_asn(as4).map_err(|_| err())?;
        return Ok(TrafficAction::RedirectAs4 {
            asn,
            value: two_octets()?,
        });
    }
    let asn = parse_asn(admin).map_err(|_| err())?;
    match (u16::try_from(asn), u32::try_from(value)) {
        (Ok(asn), Ok(value)) => Ok(TrafficAction::RedirectAs2 { asn, value }),
        _ => Ok(TrafficAction::RedirectAs4 {
            asn,
            value: two_octets()?,
        }),
    }
}

/// Decimal digits only (no sign), as a number.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A rate: a non-negative decimal number (`9600`, `1.5`), as the IEEE float of the
/// community.
pub(crate) fn parse_rate(word: &str, v: &str) -> Result<f32, String> {
    let err = || {
        format!(
            "{word} must be a number of bytes or packets per second, not {}",
            quote(v)
        )
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match v.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (v, None),
    };
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(err());
    }
    let rate: f32 = v.parse().map_err(|_| err())?;
    if !rate.is_finite() {
        return Err(format!("{word} {} is too large", quote(v)));
    }
    Ok(rate)
}

/// A DSCP value, 0 to 63.
pub(crate) fn parse_dscp(v: &str) -> Result<u8, String> {
    decimal(v)
        .and_then(|d| u8::try_from(d).ok())
        .filter(|d| *d <= 63)
        .ok_or_else(|| format!("mark must be a DSCP value from 0 to 63, not {}", quote(v)))
}

/// `sample`, `terminal`, `sample-terminal` or `none`: the (sample, terminal) bits.
pub(crate) fn parse_action_flags(v: &str) -> Result<(bool, bool), String> {
    match v {
        "sample" => Ok((true, false)),
        "terminal" => Ok((false, true)),
        "sample-terminal" => Ok((true, true)),
        "none" => Ok((false, false)),
        _ => Err(format!(
            "action must be sample, terminal, sample-terminal or none, not {}",
            quote(v)
        )),
    }
}

/// A traffic action written as an extended community, as
/// [`TrafficAction::community_text`] prints it; `None` if `v` is not of that shape.
pub(crate) fn parse_action_community(v: &str) -> Option<Result<TrafficAction, String>> {
    let (kind, rest) = match v.split_once(':') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (v, None),
    };
    Some(match (kind, rest) {
        ("discard", None) => Ok(TrafficAction::RateBytes { asn: 0, rate: 0.0 }),
        ("rate-limit", Some(rest)) => {
            community_rate(kind, rest).map(|(asn, rate)| TrafficAction::RateBytes { asn, rate })
        }
        ("rate-limit-packets", Some(rest)) => {
            community_rate(kind, rest).map(|(asn, rate)| TrafficAction::RatePackets { asn, rate })
        }
        ("action", Some(flags)) => parse_action_flags(flags)
            .map(|(sample, terminal)| TrafficAction::Action { sample, terminal }),
        ("redirect", Some(target)) => parse_redirect_target(target),
        ("mark", Some(dscp)) => parse_dscp(dscp).map(|dscp| TrafficAction::Mark { dscp }),
        ("redirect-to-nexthop", None) => Ok(TrafficAction::RedirectToNextHop { copy: false }),
        ("redirect-to-nexthop", Some("copy")) => {
            Ok(TrafficAction::RedirectToNextHop { copy: true })
        }
        _ => return None,
    })
}

/// `RATE` or `AS:RATE` of a rate community.
fn community_rate(kind: &str, v: &str) -> Result<(u16, f32), String> {
    match v.split_once(':') {
        Some((asn, rate)) => {
            let asn = decimal(asn)
                .and_then(|a| u16::try_from(a).ok())
                .ok_or_else(|| format!("{kind}:AS:RATE needs a 16-bit AS, not {}", quote(v)))?;
            Ok((asn, parse_rate(kind, rate)?))
        }
        None => Ok((0, parse_rate(kind, v)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::attributes::{ExtendedCommunity, Origin};
    use crate::packet::flowspec::tests::strategies;
    use crate::words::tokenize;
    use proptest::prelude::*;

    fn flow(line: &str) -> Result<FlowRouteSpec, String> {
        parse_flow_route(&tokenize(line), &PathAttributes::default())
    }

    fn rule(line: &str) -> FlowSpec {
        flow(line).unwrap_or_else(|e| panic!("{line}: {e}")).rule
    }

    fn actions(line: &str) -> Vec<TrafficAction> {
        flow(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .attrs
            .extended_communities
            .iter()
            .filter_map(TrafficAction::from_community)
            .collect()
    }

    fn eq(value: u64) -> NumericOp {
        NumericOp {
            and: false,
            lt: false,
            gt: false,
            eq: true,
            value,
        }
    }

    fn op(and: bool, lt: bool, gt: bool, eq: bool, value: u64) -> NumericOp {
        NumericOp {
            and,
            lt,
            gt,
            eq,
            value,
        }
    }

    fn bits(and: bool, not: bool, matches: bool, value: u64) -> BitmaskOp {
        BitmaskOp {
            and,
            not,
            matches,
            value,
        }
    }

    #[test]
    fn block_form_without_outer_braces_and_flat_form_agree() {
        let block = flow(
            "{ match { source 10.0.0.0/24; destination-port =80; protocol tcp; } then { rate-limit 9600; } }",
        )
        .unwrap();
        assert_eq!(
            block.rule.components(),
            [
                Component::Source(FlowPrefix::V4("10.0.0.0/24".parse().unwrap())),
                Component::Protocol(vec![eq(6)]),
                Component::DestinationPort(vec![eq(80)]),
            ]
        );
        assert_eq!(
            block.attrs.extended_communities,
            [ExtendedCommunity([0x80, 0x06, 0, 0, 0x46, 0x16, 0, 0])]
        );
        for line in [
            "match { source 10.0.0.0/24; destination-port =80; protocol tcp; } then { rate-limit 9600; }",
            "match {source 10.0.0.0/24;destination-port =80;protocol tcp;} then {rate-limit 9600;}",
            "source 10.0.0.0/24 destination-port =80 protocol tcp rate-limit 9600",
            "{ source 10.0.0.0/24; destination-port =80; protocol tcp; rate-limit 9600; }",
        ] {
            assert_eq!(flow(line).unwrap(), block, "{line}");
        }
    }

    #[test]
    fn exabgp_api_examples() {
        let r = flow(
            "{ match { source 0.0.0.0/32; destination 0.0.0.0/32; destination-port =3128; protocol tcp; } then { rate-limit 0; } }",
        )
        .unwrap();
        assert_eq!(
            r.rule.to_string(),
            "destination 0.0.0.0/32 source 0.0.0.0/32 protocol =tcp destination-port =3128"
        );
        assert_eq!(r.attrs.extended_communities[0].to_string(), "discard");
        // a withdrawal names only the match
        assert_eq!(
            flow("{ match { source 0.0.0.0/32; destination 0.0.0.0/32; destination-port =3128; protocol tcp; } }")
                .unwrap()
                .rule,
            r.rule
        );
        // ExaBGP's `match` documentation
        assert_eq!(
            rule(
                "match { destination 10.0.1.0/24; port 25; source-port >1024; \
                 destination-port [ =80 =3128 >8080&<8088 ]; packet-length [ >200&<300 >400&<500 ]; \
                 protocol [ udp tcp ]; fragment [ dont-fragment is-fragment first-fragment last-fragment ]; }"
            )
            .to_string(),
            "destination 10.0.1.0/24 protocol [ =udp =tcp ] port =25 destination-port \
             [ =80 =3128 >8080&<8088 ] source-port >1024 packet-length [ >200&<300 >400&<500 ] \
             fragment [ dont-fragment is-fragment first-fragment last-fragment ]"
        );
    }

    #[test]
    fn every_condition_word() {
        let v4 = |t: &str| FlowPrefix::V4(t.parse().unwrap());
        let cases: Vec<(&str, Component)> = vec![
            (
                "destination 10.0.0.0/8",
                Component::Destination(v4("10.0.0.0/8")),
            ),
            (
                "destination-ipv4 192.0.2.1",
                Component::Destination(v4("192.0.2.1/32")),
            ),
            (
                "source 172.16.0.0/12",
                Component::Source(v4("172.16.0.0/12")),
            ),
            ("source-ipv4 0.0.0.0/0", Component::Source(v4("0.0.0.0/0"))),
            ("protocol 47", Component::Protocol(vec![eq(47)])),
            ("protocol =GRE", Component::Protocol(vec![eq(47)])),
            (
                "protocol [ icmp 0x11 ]",
                Component::Protocol(vec![eq(1), eq(17)]),
            ),
            (
                "port !=22",
                Component::Port(vec![op(false, true, true, false, 22)]),
            ),
            (
                "destination-port >=1024",
                Component::DestinationPort(vec![op(false, false, true, true, 1024)]),
            ),
            (
                "source-port <=1023",
                Component::SourcePort(vec![op(false, true, false, true, 1023)]),
            ),
            ("icmp-type echo-request", Component::IcmpType(vec![eq(8)])),
            (
                "icmp-type [ =0 >=13&<=14 ]",
                Component::IcmpType(vec![
                    eq(0),
                    op(false, false, true, true, 13),
                    op(true, true, false, true, 14),
                ]),
            ),
            (
                "icmp-code port-unreachable",
                Component::IcmpCode(vec![eq(3)]),
            ),
            (
                "icmp-code <5",
                Component::IcmpCode(vec![op(false, true, false, false, 5)]),
            ),
            (
                "tcp-flags [ syn ack ]",
                Component::TcpFlags(vec![
                    bits(false, false, false, 0x02),
                    bits(false, false, false, 0x10),
                ]),
            ),
            (
                "tcp-flags =syn",
                Component::TcpFlags(vec![bits(false, false, true, 0x02)]),
            ),
            (
                "tcp-flags syn&!ack",
                Component::TcpFlags(vec![
                    bits(false, false, false, 0x02),
                    bits(true, true, false, 0x10),
                ]),
            ),
            (
                "tcp-flags !rst",
                Component::TcpFlags(vec![bits(false, true, false, 0x04)]),
            ),
            (
                "tcp-flags !=fin+push",
                Component::TcpFlags(vec![bits(false, true, true, 0x09)]),
            ),
            (
                "tcp-flags [ urgent ece&cwr ns ]",
                Component::TcpFlags(vec![
                    bits(false, false, false, 0x20),
                    bits(false, false, false, 0x40),
                    bits(true, false, false, 0x80),
                    bits(false, false, false, 0x100),
                ]),
            ),
            (
                "packet-length >1024&<2000",
                Component::PacketLength(vec![
                    op(false, false, true, false, 1024),
                    op(true, true, false, false, 2000),
                ]),
            ),
            ("dscp 46", Component::Dscp(vec![eq(46)])),
            (
                "dscp [ true false ]",
                Component::Dscp(vec![
                    op(false, true, true, true, 0),
                    op(false, false, false, false, 0),
                ]),
            ),
            (
                "fragment [ not-a-fragment dont-fragment is-fragment first-fragment last-fragment ]",
                Component::Fragment(vec![
                    bits(false, true, false, 0x06),
                    bits(false, false, false, 0x01),
                    bits(false, false, false, 0x02),
                    bits(false, false, false, 0x04),
                    bits(false, false, false, 0x08),
                ]),
            ),
            (
                "fragment !not-a-fragment",
                Component::Fragment(vec![bits(false, false, false, 0x06)]),
            ),
        ];
        for (text, component) in cases {
            let r = rule(text);
            assert_eq!(
                r.family(),
                crate::packet::prefix::Family::IPV4_FLOWSPEC,
                "{text}"
            );
            assert_eq!(r.components(), [component], "{text}");
        }
    }

    #[test]
    fn ipv6_condition_words() {
        let v6 = |t: &str, offset| FlowPrefix::V6 {
            prefix: t.parse().unwrap(),
            offset,
        };
        let cases: Vec<(&str, Component)> = vec![
            (
                "destination 2001:db8::/32",
                Component::Destination(v6("2001:db8::/32", 0)),
            ),
            (
                "destination-ipv6 ::/0",
                Component::Destination(v6("::/0", 0)),
            ),
            // ExaBGP's ADDRESS/LENGTH/OFFSET and RFC 8956's ADDRESS/OFFSET-LENGTH
            (
                "source ::1234:5678:9a00:0/104/64",
                Component::Source(v6("::1234:5678:9a00:0/104", 64)),
            ),
            (
                "source ::1234:5678:9a00:0/65-104",
                Component::Source(v6("::1234:5678:9a00:0/104", 65)),
            ),
            (
                "source-ipv6 2001:db8::1",
                Component::Source(v6("2001:db8::1/128", 0)),
            ),
            ("next-header ipv6-icmp", Component::Protocol(vec![eq(58)])),
            ("next-header icmpv6", Component::Protocol(vec![eq(58)])),
            // ExaBGP's name of type 11 in IPv6 rules
            ("traffic-class 46", Component::Dscp(vec![eq(46)])),
            (
                "flow-label >100&<2000",
                Component::FlowLabel(vec![
                    op(false, false, true, false, 100),
                    op(true, true, false, false, 2000),
                ]),
            ),
        ];
        for (text, component) in cases {
            let r = rule(text);
            assert_eq!(
                r.family(),
                crate::packet::prefix::Family::IPV6_FLOWSPEC,
                "{text}"
            );
            assert_eq!(r.components(), [component], "{text}");
        }
        // ICMPv6 names in IPv6 rules, whichever word comes first
        assert_eq!(
            rule("icmp-type echo-request destination 2001:db8::/32").components()[1],
            Component::IcmpType(vec![eq(128)])
        );
        assert_eq!(
            rule("family ipv6 icmp-type [ echo-reply packet-too-big ]").components(),
            [Component::IcmpType(vec![eq(129), eq(2)])]
        );
        assert_eq!(rule("family ipv6-flowspec port 80").afi(), AFI_IPV6);
        assert_eq!(rule("family ipv4 port 80").afi(), AFI_IPV4);
        assert_eq!(rule("protocol udp destination ::/0").afi(), AFI_IPV6);
    }

    #[test]
    fn action_words() {
        use TrafficAction::*;
        let cases: Vec<(&str, Vec<TrafficAction>)> = vec![
            ("accept", vec![]),
            ("discard", vec![RateBytes { asn: 0, rate: 0.0 }]),
            (
                "rate-limit 9600",
                vec![RateBytes {
                    asn: 0,
                    rate: 9600.0,
                }],
            ),
            (
                "rate-limit 9600 bytes",
                vec![RateBytes {
                    asn: 0,
                    rate: 9600.0,
                }],
            ),
            ("rate-limit 1.5", vec![RateBytes { asn: 0, rate: 1.5 }]),
            (
                "rate-limit 100 packets",
                vec![RatePackets {
                    asn: 0,
                    rate: 100.0,
                }],
            ),
            (
                "rate-limit-packets 100",
                vec![RatePackets {
                    asn: 0,
                    rate: 100.0,
                }],
            ),
            (
                "redirect 65001:999",
                vec![RedirectAs2 {
                    asn: 65001,
                    value: 999,
                }],
            ),
            (
                "redirect 65001:4294967295",
                vec![RedirectAs2 {
                    asn: 65001,
                    value: u32::MAX,
                }],
            ),
            (
                "redirect 4200000000:7",
                vec![RedirectAs4 {
                    asn: 4_200_000_000,
                    value: 7,
                }],
            ),
            ("redirect 100L:7", vec![RedirectAs4 { asn: 100, value: 7 }]),
            (
                "redirect 192.0.2.1:7",
                vec![RedirectIpv4 {
                    address: Ipv4Addr::new(192, 0, 2, 1),
                    value: 7,
                }],
            ),
            ("mark 10", vec![Mark { dscp: 10 }]),
            (
                "action sample",
                vec![Action {
                    sample: true,
                    terminal: false,
                }],
            ),
            (
                "action terminal",
                vec![Action {
                    sample: false,
                    terminal: true,
                }],
            ),
            (
                "action sample-terminal",
                vec![Action {
                    sample: true,
                    terminal: true,
                }],
            ),
            (
                "discard mark 0 action sample redirect 65000:1",
                vec![
                    RateBytes { asn: 0, rate: 0.0 },
                    Mark { dscp: 0 },
                    Action {
                        sample: true,
                        terminal: false,
                    },
                    RedirectAs2 {
                        asn: 65000,
                        value: 1,
                    },
                ],
            ),
        ];
        for (words, expected) in cases {
            assert_eq!(
                actions(&format!("destination 10.0.0.0/8 {words}")),
                expected,
                "{words}"
            );
            assert_eq!(
                actions(&format!(
                    "match {{ destination 10.0.0.0/8; }} then {{ {words}; }}"
                )),
                expected,
                "{words}"
            );
        }
    }

    #[test]
    fn redirect_to_a_next_hop() {
        let copy = |copy| TrafficAction::RedirectToNextHop { copy };
        let r = flow("destination 10.0.0.0/8 redirect 192.0.2.1").unwrap();
        assert_eq!(
            r.attrs.next_hop,
            Some(NextHop::Addr("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            actions("destination 10.0.0.0/8 redirect 192.0.2.1"),
            [copy(false)]
        );
        let r = flow("destination 2001:db8::/32 then { redirect [2001:db8::1]; }").unwrap();
        assert_eq!(
            r.attrs.next_hop,
            Some(NextHop::Addr("2001:db8::1".parse().unwrap()))
        );
        let r = flow("destination 2001:db8::/32 redirect 2001:db8::1").unwrap();
        assert_eq!(
            r.attrs.next_hop,
            Some(NextHop::Addr("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            actions("destination 10.0.0.0/8 copy 192.0.2.1"),
            [copy(true)]
        );
        let r = flow("{ match { destination 10.0.0.0/8; } then { redirect-to-nexthop; } } next-hop 192.0.2.9")
            .unwrap();
        assert_eq!(
            r.attrs.next_hop,
            Some(NextHop::Addr("192.0.2.9".parse().unwrap()))
        );
        assert_eq!(
            actions("destination 10.0.0.0/8 copy-to-nexthop next-hop self"),
            [copy(true)]
        );
        assert_eq!(
            actions("destination 10.0.0.0/8 then { redirect-to-nexthop copy; } next-hop self"),
            [copy(true)]
        );
        assert!(flow("destination 10.0.0.0/8 redirect-to-nexthop copy 192.0.2.1").is_err());
        assert_eq!(
            actions("destination 10.0.0.0/8 next-hop 192.0.2.1 redirect 192.0.2.1"),
            [copy(false)]
        );
        // from the defaults too
        let defaults = PathAttributes {
            next_hop: Some(NextHop::Local),
            ..PathAttributes::default()
        };
        assert!(
            parse_flow_route(
                &tokenize("destination 10.0.0.0/8 redirect-to-nexthop"),
                &defaults
            )
            .is_ok()
        );
    }

    #[test]
    fn attribute_words_and_extended_communities_are_kept() {
        let r = flow(
            "{ match { destination 10.0.0.0/8; } then { discard; community [ 65000:1 no-export ]; \
             extended-community [ target:65000:7 ]; } } origin egp med 5 local-preference 200 \
             as-path [ 65001 65002 ] atomic-aggregate large-community 1:2:3",
        )
        .unwrap();
        assert_eq!(r.attrs.origin, Origin::Egp);
        assert_eq!((r.attrs.med, r.attrs.local_pref), (Some(5), Some(200)));
        assert_eq!(r.attrs.as_path.to_string(), "65001 65002");
        assert!(r.attrs.atomic_aggregate);
        assert_eq!(r.attrs.communities, [(65000 << 16) | 1, 0xFFFF_FF01]);
        assert_eq!(r.attrs.large_communities[0].to_string(), "1:2:3");
        assert_eq!(
            r.attrs
                .extended_communities
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
            ["target:65000:7", "discard"]
        );
        // actions given as communities are kept, not doubled
        let r = flow("destination 10.0.0.0/8 extended-community discard discard").unwrap();
        assert_eq!(r.attrs.extended_communities.len(), 1);
        // defaults apply, their extended communities stay
        let defaults = PathAttributes {
            med: Some(9),
            extended_communities: vec![ExtendedCommunity([0, 2, 0, 1, 0, 0, 0, 1])],
            ..PathAttributes::default()
        };
        let r = parse_flow_route(&tokenize("destination 10.0.0.0/8 mark 1"), &defaults).unwrap();
        assert_eq!(r.attrs.med, Some(9));
        assert_eq!(
            r.attrs
                .extended_communities
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
            ["target:1:1", "mark:1"]
        );
    }

    #[test]
    fn clear_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "at least one match condition"),
            ("discard", "at least one match condition"),
            (
                "source 10.0.0.0/8 source 10.1.0.0/16",
                "source is given twice",
            ),
            (
                "protocol tcp next-header udp destination ::/0",
                "the same condition",
            ),
            (
                "destination 10.0.0.0/8 source 2001:db8::/32",
                "makes the rule IPv6 but destination \"10.0.0.0/8\" makes it IPv4",
            ),
            (
                "destination 10.0.0.0/8 flow-label 5",
                "flow-label makes the rule IPv6",
            ),
            ("family ipv6 destination 10.0.0.0/8", "but family ipv6"),
            (
                "destination-ipv6 10.0.0.0/8",
                "is IPv4 but the rule is IPv6",
            ),
            (
                "destination 10.0.0.0/8 colour blue",
                "unknown flow route word \"colour\"",
            ),
            (
                "match { destination 10.0.0.0/8; discard; }",
                "discard belongs in then { }",
            ),
            (
                "match { destination 10.0.0.0/8; colour; }",
                "unknown match condition \"colour\"",
            ),
            (
                "match { destination 10.0.0.0/8; } then { source 10.0.0.0/8; }",
                "belongs in match { }",
            ),
            ("match { destination 10.0.0.0/8;", "missing }"),
            ("destination 10.0.0.0/8 }", "unexpected }"),
            ("destination 10.0.0.0/8 { }", "unexpected {"),
            (
                "match destination 10.0.0.0/8",
                "match must be followed by {",
            ),
            (
                "match { match { destination 10.0.0.0/8; } }",
                "can not be inside",
            ),
            ("destination", "destination needs a value"),
            ("destination ;", "destination needs a value"),
            ("destination [ 10.0.0.0/8 ]", "takes one prefix"),
            ("destination 10.0.0.1/8", "host bits"),
            ("destination 10.0.0.0/33", "exceeds 32"),
            (
                "source ::1/128/300",
                "offset must be a number from 0 to 127",
            ),
            ("source ::1/128/200", "offset must be below the length"),
            ("source ::1/128/x", "offset must be a number"),
            ("source ::1:0/112/112", "offset must be below the length"),
            ("source 2001:db8::/32/16", "bits set before offset 16"),
            ("port [ =80 =443", "missing its closing ]"),
            ("port [ ]", "is empty"),
            ("port >80&", "& must stand between two terms"),
            ("port &>80", "& must stand between two terms"),
            ("port !80", "the value must be a number"),
            ("port 65536", "at most 65535"),
            ("dscp 64", "at most 63"),
            ("protocol nonsense", "or one of icmp igmp tcp"),
            ("tcp-flags sin", "fin syn rst push ack urg ece cwr ns"),
            ("fragment =not-a-fragment", "takes no ="),
            (
                "destination ::/0 fragment dont-fragment",
                "does not exist in IPv6",
            ),
            (
                "destination 10.0.0.0/8 discard rate-limit 5",
                "discard and rate-limit both set the rate in bytes",
            ),
            (
                "destination 10.0.0.0/8 mark 1 mark 2",
                "mark is given twice",
            ),
            ("destination 10.0.0.0/8 mark 64", "from 0 to 63"),
            (
                "destination 10.0.0.0/8 rate-limit -5",
                "must be a number of bytes",
            ),
            (
                "destination 10.0.0.0/8 rate-limit",
                "rate-limit needs a value",
            ),
            ("destination 10.0.0.0/8 action drop", "sample, terminal"),
            (
                "destination 10.0.0.0/8 redirect nowhere",
                "redirect must be ASN:N",
            ),
            (
                "destination 10.0.0.0/8 redirect 4200000000:70000",
                "below 65536",
            ),
            (
                "destination 10.0.0.0/8 redirect [2001:db8::1]:5",
                "not supported",
            ),
            (
                "destination 10.0.0.0/8 redirect-to-nexthop",
                "needs a next-hop",
            ),
            (
                "destination 10.0.0.0/8 redirect 2001:db8::1",
                "is IPv6 but the rule is IPv4",
            ),
            (
                "destination 10.0.0.0/8 redirect 192.0.2.1 copy 192.0.2.2",
                "disagree",
            ),
            (
                "destination 10.0.0.0/8 next-hop 192.0.2.2 redirect 192.0.2.1",
                "disagree",
            ),
            (
                "destination 10.0.0.0/8 family ipv5",
                "family must be ipv4 or ipv6",
            ),
            ("destination 10.0.0.0/8 med x", "med must be a number"),
            (
                "destination 10.0.0.0/8 community [ 1:2",
                "missing its closing ]",
            ),
            ("destination 10.0.0.0/8 ]", "unexpected ]"),
        ];
        for (line, expected) in cases {
            let e = flow(line).unwrap_err();
            assert!(e.contains(expected), "{line}: {e}");
        }
    }

    #[test]
    fn errors_quote_a_short_prefix_of_long_input() {
        let long = "7".repeat(100_000);
        for line in [
            format!("destination 10.0.0.0/8 {long}"),
            format!("destination {long}"),
            format!("port ={long}"),
            format!("port [ =80 {long}&{long} ]"),
            format!("tcp-flags {long}"),
            format!("destination 10.0.0.0/8 rate-limit {long}"),
            format!("destination 10.0.0.0/8 redirect {long}:1"),
            format!("source {long}:: destination 10.0.0.0/8"),
            format!("match {{ destination 10.0.0.0/8; {long} }}"),
        ] {
            let e = flow(&line).unwrap_err();
            assert!(e.len() < 300, "{} bytes: {}", e.len(), &e[..300]);
        }
    }

    /// What `FlowSpec` prints reads back to the same rule, for every component type.
    #[test]
    fn display_reads_back_for_every_component_type() {
        for line in [
            "destination 10.0.0.0/24 source 192.0.2.0/24 protocol =tcp destination-port =80 tcp-flags [ syn&!ack ]",
            "protocol [ =6 =17 ] port [ >=137&<=139 =8080 ] source-port <1024 icmp-type =echo-request",
            "icmp-code [ =port-unreachable !=3 ] packet-length [ >200&<300 >400&<500 ] dscp [ true false5 ]",
            "tcp-flags [ =syn+ack !rst !=fin urgent&ns ] fragment [ not-a-fragment =last-fragment ]",
            "source ::1234:5678:9a00:0/104/64 destination 2001:db8::/32 next-header =ipv6-icmp",
            "family ipv6 icmp-type [ echo-request =128 ] icmp-code 4 fragment !is-fragment",
            "destination ::/0 flow-label [ >100&<2000 =0xfffff ] dscp =46 tcp-flags 0",
        ] {
            let first = rule(line);
            let text = first.to_string();
            assert_eq!(rule(&text), first, "{line} printed as {text}");
        }
    }

    #[test]
    fn traffic_action_display_reads_back() {
        for words in [
            "rate-limit 9600",
            "discard",
            "rate-limit-packets 100",
            "redirect 65001:999",
            "redirect 192.0.2.1:7",
            "redirect 4200000000:7",
            "redirect 100L:7",
            "mark 10",
            "action sample",
            "action terminal",
            "action sample-terminal",
            "action none",
            "redirect-to-nexthop",
            "redirect-to-nexthop copy",
        ] {
            let line = format!("destination 10.0.0.0/8 next-hop self {words}");
            let parsed = actions(&line);
            assert_eq!(parsed.len(), 1, "{words}");
            assert_eq!(parsed[0].to_string(), words);
        }
    }

    proptest! {
        #[test]
        fn printed_rules_read_back((afi, components) in strategies::rule()) {
            let rule = FlowSpec::new(afi, &components).unwrap();
            let text = rule.to_string();
            let again = flow(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(again.rule, rule, "{}", text);
        }

        #[test]
        fn words_never_panic(words in prop::collection::vec(prop_oneof![
            prop::sample::select(CONDITIONS.to_vec()).prop_map(str::to_string),
            prop::sample::select(ACTIONS.to_vec()).prop_map(str::to_string),
            prop::sample::select(vec![
                "{", "}", ";", "[", "]", "match", "then", "family", "ipv6", "next-hop", "self",
                "community", "extended-community", "10.0.0.0/8", "::/0", "::1/128/64", "=80",
                ">1&<2", "syn&!ack", "not-a-fragment", "65000:1", "192.0.2.1", "2001:db8::1",
                "packets", "sample", "tcp", "echo-request", "&", "!", "=", "0x", "é", "",
            ]).prop_map(str::to_string),
            ".{0,12}",
        ], 0..16)) {
            if let Ok(route) = parse_flow_route(&words, &PathAttributes::default()) {
                let text = route.rule.to_string();
                prop_assert_eq!(rule(&text), route.rule);
            }
        }
    }
}
