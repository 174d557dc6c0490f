//! UPDATE (RFC 4271 §4.3) with MP_REACH/MP_UNREACH (RFC 4760), End-of-RIB (RFC 4724),
//! and the packer that fills 4096-octet messages with prefixes sharing attributes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attributes::{self, PathAttributes, attr_code, flag};
use super::flowspec::FlowSpec;
use super::notification::{code, update_sub};
use super::prefix::{
    AFI_IPV4, AFI_IPV6, Family, Ipv4Prefix, Ipv6Prefix, Prefix, PrefixError, SAFI_FLOWSPEC,
    SAFI_UNICAST,
};
use super::{
    Context, DecodeError, HEADER_LEN, MAX_MESSAGE_LEN, Reader, begin_message, finish_message,
    msg_type,
};

/// NLRI of a multiprotocol family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpNlri {
    /// IPv4 unicast prefixes.
    Ipv4(Vec<Ipv4Prefix>),
    /// IPv6 unicast prefixes.
    Ipv6(Vec<Ipv6Prefix>),
    /// FlowSpec rules of the attribute's family (RFC 8955/8956).
    Flow(Vec<FlowSpec>),
    /// A family this codec does not parse, kept raw.
    Other(Vec<u8>),
}

impl MpNlri {
    /// Decodes the NLRI field of `family`. A FlowSpec rule whose length is sound but
    /// whose content is not is left out, and the reason returned beside the rest: the
    /// caller treats the UPDATE as withdraw (RFC 8955 §10, RFC 7606 §5.3).
    fn decode(family: Family, buf: &[u8]) -> Result<(Self, Option<String>), String> {
        Ok(match (family.afi, family.safi) {
            (AFI_IPV4, SAFI_UNICAST) => (
                MpNlri::Ipv4(Ipv4Prefix::decode_all(buf).map_err(|e| e.0)?),
                None,
            ),
            (AFI_IPV6, SAFI_UNICAST) => (
                MpNlri::Ipv6(Ipv6Prefix::decode_all(buf).map_err(|e| e.0)?),
                None,
            ),
            (AFI_IPV4 | AFI_IPV6, SAFI_FLOWSPEC) => {
                let (rules, bad) = FlowSpec::decode_all(family.afi, buf).map_err(|e| e.0)?;
                (
                    MpNlri::Flow(rules),
                    bad.map(|e| format!("malformed {family} rule: {e}")),
                )
            }
            _ => (MpNlri::Other(buf.to_vec()), None),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MpNlri::Ipv4(v) => v.iter().for_each(|p| p.encode(out)),
            MpNlri::Ipv6(v) => v.iter().for_each(|p| p.encode(out)),
            MpNlri::Flow(v) => v.iter().for_each(|r| r.encode(out)),
            MpNlri::Other(raw) => out.extend_from_slice(raw),
        }
    }

    /// True if it holds no prefix.
    pub fn is_empty(&self) -> bool {
        match self {
            MpNlri::Ipv4(v) => v.is_empty(),
            MpNlri::Ipv6(v) => v.is_empty(),
            MpNlri::Flow(v) => v.is_empty(),
            MpNlri::Other(raw) => raw.is_empty(),
        }
    }

    /// The routes' keys, in order (none for a family kept raw).
    pub fn prefixes(&self) -> Box<dyn Iterator<Item = Prefix> + '_> {
        match self {
            MpNlri::Ipv4(v) => Box::new(v.iter().map(|p| Prefix::V4(*p))),
            MpNlri::Ipv6(v) => Box::new(v.iter().map(|p| Prefix::V6(*p))),
            MpNlri::Flow(v) => Box::new(v.iter().map(|r| Prefix::Flow(r.clone()))),
            MpNlri::Other(_) => Box::new(std::iter::empty()),
        }
    }

    /// Appends `other`'s routes if both hold the same kind; false (nothing moved) if not.
    fn extend(&mut self, other: MpNlri) -> Result<(), MpNlri> {
        match (self, other) {
            (MpNlri::Ipv4(a), MpNlri::Ipv4(b)) => a.extend(b),
            (MpNlri::Ipv6(a), MpNlri::Ipv6(b)) => a.extend(b),
            (MpNlri::Flow(a), MpNlri::Flow(b)) => a.extend(b),
            (_, other) => return Err(other),
        }
        Ok(())
    }
}

/// MP_REACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    /// The family of the NLRI.
    pub family: Family,
    /// Next hop(s): one address, or an IPv6 global and link-local pair.
    pub next_hop: Vec<IpAddr>,
    /// Reachable prefixes.
    pub nlri: MpNlri,
}

fn mp_error(why: String) -> DecodeError {
    DecodeError::new(
        code::UPDATE_MESSAGE,
        update_sub::OPTIONAL_ATTRIBUTE,
        [],
        why,
    )
}

impl MpReach {
    /// Decodes the attribute; beside it, why its routes must be treated as withdrawn
    /// (a malformed FlowSpec rule), if they must.
    pub(crate) fn decode(value: &[u8]) -> Result<(Self, Option<String>), DecodeError> {
        let mut r = Reader::new(value);
        let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
            return Err(mp_error("MP_REACH_NLRI too short".into()));
        };
        let family = Family { afi, safi };
        let nh = r
            .take(nh_len as usize)
            .ok_or_else(|| mp_error("MP_REACH_NLRI next hop overruns".into()))?;
        r.u8()
            .ok_or_else(|| mp_error("MP_REACH_NLRI without reserved octet".into()))?;
        let next_hop = match (afi, nh.len()) {
            (_, 4) => vec![IpAddr::from(<[u8; 4]>::try_from(nh).unwrap_or_default())],
            (_, 16) => vec![IpAddr::from(<[u8; 16]>::try_from(nh).unwrap_or_default())],
            (_, 32) => nh
                .chunks_exact(16)
                .map(|c| IpAddr::from(<[u8; 16]>::try_from(c).unwrap_or_default()))
                .collect(),
            (AFI_IPV4 | AFI_IPV6, _) if safi == SAFI_UNICAST => {
                return Err(mp_error(format!(
                    "MP_REACH_NLRI next hop of {} octets",
                    nh.len()
                )));
            }
            _ => Vec::new(), // e.g. FlowSpec: next hop length 0
        };
        let (nlri, malformed) = MpNlri::decode(family, r.rest())
            .map_err(|e| mp_error(format!("MP_REACH_NLRI: {e}")))?;
        let reach = MpReach {
            family,
            next_hop,
            nlri,
        };
        Ok((reach, malformed))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut v = Vec::new();
        v.extend_from_slice(&self.family.afi.to_be_bytes());
        v.push(self.family.safi);
        let nh: Vec<u8> = self
            .next_hop
            .iter()
            .flat_map(|a| match a {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            })
            .collect();
        v.push(nh.len() as u8);
        v.extend_from_slice(&nh);
        v.push(0);
        self.nlri.encode(&mut v);
        attributes::put_attr_header(out, flag::OPTIONAL, attr_code::MP_REACH, v.len());
        out.extend_from_slice(&v);
    }
}

/// MP_UNREACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    /// The family of the withdrawn prefixes.
    pub family: Family,
    /// Withdrawn prefixes.
    pub withdrawn: MpNlri,
}

impl MpUnreach {
    pub(crate) fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(value);
        let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
            return Err(mp_error("MP_UNREACH_NLRI too short".into()));
        };
        let family = Family { afi, safi };
        // A malformed rule withdrawn cannot be in any table: the others still go.
        let (withdrawn, _malformed) = MpNlri::decode(family, r.rest())
            .map_err(|e| mp_error(format!("MP_UNREACH_NLRI: {e}")))?;
        Ok(MpUnreach { family, withdrawn })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut v = Vec::new();
        v.extend_from_slice(&self.family.afi.to_be_bytes());
        v.push(self.family.safi);
        self.withdrawn.encode(&mut v);
        attributes::put_attr_header(out, flag::OPTIONAL, attr_code::MP_UNREACH, v.len());
        out.extend_from_slice(&v);
    }
}

/// An UPDATE message.
///
/// After decoding, RFC 7606 treat-as-withdraw has already been applied: the affected
/// prefixes sit in `withdrawn`/`mp_unreach` and `treat_as_withdraw` says why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// Withdrawn IPv4 unicast prefixes.
    pub withdrawn: Vec<Ipv4Prefix>,
    /// Path attributes of the announced prefixes.
    pub attributes: PathAttributes,
    /// Announced IPv4 unicast prefixes.
    pub nlri: Vec<Ipv4Prefix>,
    /// Announced prefixes of other families.
    pub mp_reach: Option<MpReach>,
    /// Withdrawn prefixes of other families.
    pub mp_unreach: Option<MpUnreach>,
    /// Why the announced prefixes were turned into withdrawals (RFC 7606), if they were.
    pub treat_as_withdraw: Option<String>,
    /// Attributes dropped under RFC 7606 "attribute discard", for logs.
    pub discarded: Vec<String>,
}

impl Update {
    /// The End-of-RIB marker for a family (RFC 4724 §2).
    pub fn end_of_rib(family: Family) -> Self {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            mp_unreach: Some(MpUnreach {
                family,
                withdrawn: MpNlri::Other(Vec::new()),
            }),
            ..Update::default()
        }
    }

    /// The family this UPDATE marks the end of, if it is an End-of-RIB marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        let no_attrs = self.attributes == PathAttributes::default();
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || !no_attrs
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::IPV4_UNICAST),
            Some(u) if u.withdrawn.is_empty() => Some(u.family),
            Some(_) => None,
        }
    }

    pub(crate) fn encode_body(&self, ctx: &Context, out: &mut Vec<u8>) {
        let wlen_at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.withdrawn.iter().for_each(|p| p.encode(out));
        let wlen = (out.len() - wlen_at - 2) as u16;
        out[wlen_at..wlen_at + 2].copy_from_slice(&wlen.to_be_bytes());
        let alen_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let has_attrs = !self.nlri.is_empty() || self.mp_reach.is_some();
        if has_attrs {
            let v4_nh = match self.attributes.next_hop {
                Some(attributes::NextHop::Addr(IpAddr::V4(a))) if !self.nlri.is_empty() => Some(a),
                _ => None,
            };
            self.attributes.encode(ctx, v4_nh, out);
        }
        if let Some(r) = &self.mp_reach {
            r.encode(out);
        }
        if let Some(u) = &self.mp_unreach {
            u.encode(out);
        }
        let alen = (out.len() - alen_at - 2) as u16;
        out[alen_at..alen_at + 2].copy_from_slice(&alen.to_be_bytes());
        self.nlri.iter().for_each(|p| p.encode(out));
    }

    pub(crate) fn decode_body(body: &[u8], ctx: &Context) -> Result<Self, DecodeError> {
        let malformed = |why: &str| {
            DecodeError::new(
                code::UPDATE_MESSAGE,
                update_sub::MALFORMED_ATTRIBUTE_LIST,
                [],
                why.to_string(),
            )
        };
        let bad_network = |e: PrefixError| {
            DecodeError::new(
                code::UPDATE_MESSAGE,
                update_sub::INVALID_NETWORK_FIELD,
                [],
                e.0,
            )
        };
        let mut r = Reader::new(body);
        let wlen = r.u16().ok_or_else(|| malformed("UPDATE too short"))?;
        let withdrawn = r
            .take(wlen as usize)
            .ok_or_else(|| malformed("withdrawn routes length overruns the message"))?;
        let alen = r
            .u16()
            .ok_or_else(|| malformed("UPDATE without attribute length"))?;
        let attrs = r
            .take(alen as usize)
            .ok_or_else(|| malformed("total attribute length overruns the message"))?;
        let mut update = Update {
            withdrawn: Ipv4Prefix::decode_all(withdrawn).map_err(bad_network)?,
            nlri: Ipv4Prefix::decode_all(r.rest()).map_err(bad_network)?,
            ..Update::default()
        };
        let d = attributes::decode_attributes(attrs, ctx)?;
        update.attributes = d.attrs;
        update.mp_reach = d.mp_reach;
        update.mp_unreach = d.mp_unreach;
        update.discarded = d.discarded;
        update.treat_as_withdraw = d.treat_as_withdraw;
        let announces =
            !update.nlri.is_empty() || update.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
        if announces && update.treat_as_withdraw.is_none() {
            let missing = [
                (!d.has_origin, "ORIGIN"),
                (!d.has_as_path, "AS_PATH"),
                (!d.has_next_hop && !update.nlri.is_empty(), "NEXT_HOP"),
            ];
            if let Some((_, name)) = missing.iter().find(|(m, _)| *m) {
                update.treat_as_withdraw = Some(format!("missing well-known attribute {name}"));
            }
        }
        if update.mp_reach.is_some() {
            // The MP next hop is the route's next hop for that family.
            if let Some(nh) = update.mp_reach.as_ref().and_then(|m| m.next_hop.first()) {
                if update.nlri.is_empty() {
                    update.attributes.next_hop = Some(attributes::NextHop::Addr(*nh));
                }
            }
        }
        if update.treat_as_withdraw.is_some() {
            update.apply_treat_as_withdraw();
        }
        Ok(update)
    }

    fn apply_treat_as_withdraw(&mut self) {
        let nlri = std::mem::take(&mut self.nlri);
        self.withdrawn.extend(nlri);
        if let Some(reach) = self.mp_reach.take() {
            match &mut self.mp_unreach {
                slot @ None => {
                    *slot = Some(MpUnreach {
                        family: reach.family,
                        withdrawn: reach.nlri,
                    })
                }
                // Two different MP families in one UPDATE: keep the existing unreach and
                // drop the reach; nothing of it enters the RIB.
                Some(unreach) if unreach.family == reach.family => {
                    let _ = unreach.withdrawn.extend(reach.nlri);
                }
                Some(_) => {}
            }
        }
        self.attributes = PathAttributes::default();
    }
}

/// Packs prefixes that share attributes into as few UPDATE messages as fit in 4096 octets.
#[derive(Debug, Clone, Copy)]
pub struct UpdatePacker {
    ctx: Context,
    max_len: usize,
}

/// Octets of an MP_REACH/MP_UNREACH attribute header with extended length.
const MP_ATTR_HEADER: usize = 4;

impl UpdatePacker {
    /// A packer for a session with the given negotiated context.
    pub fn new(ctx: Context) -> Self {
        UpdatePacker {
            ctx,
            max_len: MAX_MESSAGE_LEN,
        }
    }

    /// The negotiated context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Encodes attributes once for a group of prefixes (pass the IPv4 next hop for IPv4 unicast).
    pub fn encode_attributes(
        &self,
        attrs: &PathAttributes,
        ipv4_next_hop: Option<Ipv4Addr>,
    ) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        attrs.encode(&self.ctx, ipv4_next_hop, &mut v);
        v
    }

    /// Appends UPDATEs announcing IPv4 unicast `prefixes` with pre-encoded attributes.
    /// Returns the number of messages written (0 if the attributes alone do not fit).
    pub fn announce_ipv4(&self, attrs: &[u8], prefixes: &[Ipv4Prefix], out: &mut Vec<u8>) -> usize {
        if HEADER_LEN + 2 + 2 + attrs.len() + 5 > self.max_len {
            return 0;
        }
        self.pack(
            prefixes,
            out,
            0,
            |out| {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
                out.extend_from_slice(attrs);
            },
            |out, start, ()| finish_message(out, start, msg_type::UPDATE),
        )
    }

    /// Appends UPDATEs announcing IPv6 unicast `prefixes` in MP_REACH with `next_hop`
    /// (global, optionally followed by link-local).
    pub fn announce_ipv6(
        &self,
        attrs: &[u8],
        next_hop: &[Ipv6Addr],
        prefixes: &[Ipv6Prefix],
        out: &mut Vec<u8>,
    ) -> usize {
        let next_hop: Vec<u8> = next_hop.iter().flat_map(|a| a.octets()).collect();
        // Not even the longest prefix fits beside these attributes: nothing to send.
        if self.mp_reach_fixed(attrs, &next_hop) + 17 > self.max_len {
            return 0;
        }
        self.announce_mp(attrs, Family::IPV6_UNICAST, &next_hop, prefixes, out)
    }

    /// Appends UPDATEs withdrawing IPv4 unicast `prefixes`.
    pub fn withdraw_ipv4(&self, prefixes: &[Ipv4Prefix], out: &mut Vec<u8>) -> usize {
        // Two octets stay free after the prefixes for the (empty) attribute length.
        self.pack(
            prefixes,
            out,
            2,
            |out| {
                let wlen_at = out.len();
                out.extend_from_slice(&[0, 0]);
                wlen_at
            },
            |out, start, wlen_at| {
                let wlen = (out.len() - wlen_at - 2) as u16;
                out[wlen_at..wlen_at + 2].copy_from_slice(&wlen.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                finish_message(out, start, msg_type::UPDATE);
            },
        )
    }

    /// Appends UPDATEs withdrawing IPv6 unicast `prefixes` in MP_UNREACH.
    pub fn withdraw_ipv6(&self, prefixes: &[Ipv6Prefix], out: &mut Vec<u8>) -> usize {
        self.withdraw_mp(Family::IPV6_UNICAST, prefixes, out)
    }

    /// Appends UPDATEs announcing FlowSpec `rules` of `family` in MP_REACH, with no next
    /// hop (RFC 8955 §4) or `next_hop` (redirect to IP). Rules too long to fit a message
    /// with these attributes are left out; returns the messages written.
    pub fn announce_flow(
        &self,
        attrs: &[u8],
        family: Family,
        next_hop: Option<IpAddr>,
        rules: &[FlowSpec],
        out: &mut Vec<u8>,
    ) -> usize {
        let next_hop: Vec<u8> = match next_hop {
            Some(IpAddr::V4(a)) => a.octets().to_vec(),
            Some(IpAddr::V6(a)) => a.octets().to_vec(),
            None => Vec::new(),
        };
        let fixed = self.mp_reach_fixed(attrs, &next_hop);
        let fits: Vec<FlowSpec> = rules
            .iter()
            .filter(|r| fixed + r.encoded_len() <= self.max_len)
            .cloned()
            .collect();
        self.announce_mp(attrs, family, &next_hop, &fits, out)
    }

    /// Appends UPDATEs withdrawing FlowSpec `rules` of `family` in MP_UNREACH.
    pub fn withdraw_flow(&self, family: Family, rules: &[FlowSpec], out: &mut Vec<u8>) -> usize {
        self.withdraw_mp(family, rules, out)
    }

    /// Octets of an UPDATE announcing in MP_REACH with `attrs` and `next_hop`, before
    /// its NLRI.
    fn mp_reach_fixed(&self, attrs: &[u8], next_hop: &[u8]) -> usize {
        HEADER_LEN + 2 + 2 + attrs.len() + MP_ATTR_HEADER + 3 + 1 + next_hop.len() + 1
    }

    /// Appends UPDATEs announcing `nlri` of `family` in MP_REACH (the last attribute,
    /// after the pre-encoded `attrs`) with `next_hop` (its octets, possibly none).
    fn announce_mp<P: Nlri>(
        &self,
        attrs: &[u8],
        family: Family,
        next_hop: &[u8],
        nlri: &[P],
        out: &mut Vec<u8>,
    ) -> usize {
        self.pack(
            nlri,
            out,
            0,
            |out| {
                out.extend_from_slice(&[0, 0]);
                let alen_at = out.len();
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(attrs);
                let mp_at = begin_mp(out, attr_code::MP_REACH, family);
                out.push(next_hop.len() as u8);
                out.extend_from_slice(next_hop);
                out.push(0);
                (alen_at, mp_at)
            },
            |out, start, (alen_at, mp_at)| finish_mp_update(out, start, alen_at, mp_at),
        )
    }

    /// Appends UPDATEs withdrawing `nlri` of `family` in MP_UNREACH.
    fn withdraw_mp<P: Nlri>(&self, family: Family, nlri: &[P], out: &mut Vec<u8>) -> usize {
        self.pack(
            nlri,
            out,
            0,
            |out| {
                out.extend_from_slice(&[0, 0]);
                let alen_at = out.len();
                out.extend_from_slice(&[0, 0]);
                (alen_at, begin_mp(out, attr_code::MP_UNREACH, family))
            },
            |out, start, (alen_at, mp_at)| finish_mp_update(out, start, alen_at, mp_at),
        )
    }

    /// Writes messages until every prefix is in one: `head` writes what precedes the
    /// prefixes (returning positions to patch), as many prefixes follow as fit with
    /// `reserve` octets to spare, and `tail` completes the message.
    fn pack<P: Nlri, M>(
        &self,
        prefixes: &[P],
        out: &mut Vec<u8>,
        reserve: usize,
        head: impl Fn(&mut Vec<u8>) -> M,
        tail: impl Fn(&mut Vec<u8>, usize, M),
    ) -> usize {
        let mut count = 0;
        let mut rest = prefixes;
        while !rest.is_empty() {
            let start = begin_message(out);
            let marks = head(out);
            rest = fill(rest, out, start + self.max_len - reserve);
            tail(out, start, marks);
            count += 1;
        }
        count
    }

    /// Appends the End-of-RIB marker for `family`.
    pub fn end_of_rib(&self, family: Family, out: &mut Vec<u8>) {
        super::Message::Update(Update::end_of_rib(family)).encode(&self.ctx, out);
    }
}

/// Fills in the lengths of an UPDATE whose last attribute is an MP_(UN)REACH begun at
/// `mp_at`, its attribute field begun at `alen_at`, the message at `start`.
fn finish_mp_update(out: &mut [u8], start: usize, alen_at: usize, mp_at: usize) {
    let mp_len = (out.len() - mp_at - MP_ATTR_HEADER) as u16;
    out[mp_at + 2..mp_at + 4].copy_from_slice(&mp_len.to_be_bytes());
    let alen = (out.len() - alen_at - 2) as u16;
    out[alen_at..alen_at + 2].copy_from_slice(&alen.to_be_bytes());
    finish_message(out, start, msg_type::UPDATE);
}

/// A prefix as carried in an NLRI field.
trait Nlri {
    fn put(&self, out: &mut Vec<u8>);
    fn size(&self) -> usize;
}

impl Nlri for Ipv4Prefix {
    fn put(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
    fn size(&self) -> usize {
        self.encoded_len()
    }
}

impl Nlri for Ipv6Prefix {
    fn put(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
    fn size(&self) -> usize {
        self.encoded_len()
    }
}

/// Starts an MP_REACH/MP_UNREACH attribute of `family` (header, AFI, SAFI); returns
/// where it begins, for [`finish_mp_update`].
fn begin_mp(out: &mut Vec<u8>, code: u8, family: Family) -> usize {
    let mp_at = out.len();
    attributes::put_attr_header(out, flag::OPTIONAL, code, 0);
    out.extend_from_slice(&family.afi.to_be_bytes());
    out.push(family.safi);
    mp_at
}

impl Nlri for FlowSpec {
    fn put(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
    fn size(&self) -> usize {
        self.encoded_len()
    }
}

/// Encodes prefixes until the next would pass `limit` (an absolute offset in `out`);
/// returns the rest. Always takes at least one so that progress is guaranteed.
fn fill<'a, P: Nlri>(prefixes: &'a [P], out: &mut Vec<u8>, limit: usize) -> &'a [P] {
    let mut taken = 0;
    for p in prefixes {
        if taken > 0 && out.len() + p.size() > limit {
            break;
        }
        p.put(out);
        taken += 1;
    }
    &prefixes[taken..]
}

#[cfg(test)]
mod tests {
    use super::super::attributes::{AsPath, NextHop, Origin};
    use super::super::{Message, decode, frame_len};
    use super::*;

    fn ctx() -> Context {
        Context::default()
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        v.push(2);
        v.extend_from_slice(body);
        v
    }

    /// 100.10.0.0/24 via 192.0.2.1, origin IGP, AS_PATH 65001, MED 100, community 65001:100.
    const IPV4_BODY: &[u8] = &[
        0x00, 0x00, // withdrawn length
        0x00, 0x22, // attribute length 34
        0x40, 0x01, 0x01, 0x00, // ORIGIN IGP
        0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfd, 0xe9, // AS_PATH seq [65001]
        0x40, 0x03, 0x04, 192, 0, 2, 1, // NEXT_HOP
        0x80, 0x04, 0x04, 0x00, 0x00, 0x00, 0x64, // MED 100
        0xc0, 0x08, 0x04, 0xfd, 0xe9, 0x00, 0x64, // COMMUNITIES 65001:100
        0x18, 100, 10, 0, // NLRI
    ];

    fn ipv4_update() -> Update {
        Update {
            attributes: PathAttributes {
                origin: Origin::Igp,
                as_path: AsPath::from_sequence(vec![65001]),
                next_hop: Some(NextHop::Addr("192.0.2.1".parse().unwrap())),
                med: Some(100),
                communities: vec![(65001 << 16) | 100],
                ..PathAttributes::default()
            },
            nlri: vec!["100.10.0.0/24".parse().unwrap()],
            ..Update::default()
        }
    }

    #[test]
    fn ipv4_update_vector_both_ways() {
        let bytes = framed(IPV4_BODY);
        assert_eq!(Message::Update(ipv4_update()).to_bytes(&ctx()), bytes);
        assert_eq!(
            decode(&bytes, &ctx()).unwrap(),
            Message::Update(ipv4_update())
        );
    }

    /// 2001:db8:1::/48 via 2001:db8::1 in MP_REACH, origin IGP, empty AS_PATH.
    const IPV6_BODY: &[u8] = &[
        0x00, 0x00, // withdrawn length
        0x00, 0x27, // attribute length 39
        0x40, 0x01, 0x01, 0x00, // ORIGIN IGP
        0x40, 0x02, 0x00, // AS_PATH empty
        0x90, 0x0e, 0x00, 0x1c, // MP_REACH, extended length 28
        0x00, 0x02, 0x01, 0x10, // AFI 2, SAFI 1, next hop length 16
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
        0x00, // reserved
        0x30, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, // 2001:db8:1::/48
    ];

    fn ipv6_update() -> Update {
        let nh: IpAddr = "2001:db8::1".parse().unwrap();
        Update {
            attributes: PathAttributes {
                next_hop: Some(NextHop::Addr(nh)),
                ..PathAttributes::default()
            },
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: vec![nh],
                nlri: MpNlri::Ipv6(vec!["2001:db8:1::/48".parse().unwrap()]),
            }),
            ..Update::default()
        }
    }

    #[test]
    fn ipv6_update_vector_both_ways() {
        let bytes = framed(IPV6_BODY);
        assert_eq!(Message::Update(ipv6_update()).to_bytes(&ctx()), bytes);
        assert_eq!(
            decode(&bytes, &ctx()).unwrap(),
            Message::Update(ipv6_update())
        );
    }

    #[test]
    fn withdrawal_vectors_both_ways() {
        let v4 = Update {
            withdrawn: vec!["100.10.0.0/24".parse().unwrap()],
            ..Update::default()
        };
        let bytes = framed(&[0x00, 0x04, 0x18, 100, 10, 0, 0x00, 0x00]);
        assert_eq!(Message::Update(v4.clone()).to_bytes(&ctx()), bytes);
        assert_eq!(decode(&bytes, &ctx()).unwrap(), Message::Update(v4));

        let v6 = Update {
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: MpNlri::Ipv6(vec!["2001:db8:1::/48".parse().unwrap()]),
            }),
            ..Update::default()
        };
        let bytes = framed(&[
            0x00, 0x00, 0x00, 0x0e, 0x90, 0x0f, 0x00, 0x0a, 0x00, 0x02, 0x01, 0x30, 0x20, 0x01,
            0x0d, 0xb8, 0x00, 0x01,
        ]);
        assert_eq!(Message::Update(v6.clone()).to_bytes(&ctx()), bytes);
        assert_eq!(decode(&bytes, &ctx()).unwrap(), Message::Update(v6));
    }

    #[test]
    fn end_of_rib_markers() {
        let v4 = Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)).to_bytes(&ctx());
        assert_eq!(v4, framed(&[0, 0, 0, 0]));
        let v6 = Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)).to_bytes(&ctx());
        assert_eq!(v6, framed(&[0, 0, 0, 7, 0x90, 0x0f, 0, 3, 0, 2, 1]));
        for (bytes, fam) in [(v4, Family::IPV4_UNICAST), (v6, Family::IPV6_UNICAST)] {
            let Message::Update(u) = decode(&bytes, &ctx()).unwrap() else {
                panic!()
            };
            assert_eq!(u.end_of_rib_family(), Some(fam));
        }
        assert_eq!(ipv4_update().end_of_rib_family(), None);
    }

    #[test]
    fn two_octet_session_uses_as_trans_and_as4_path() {
        let two = Context {
            four_octet_as: false,
        };
        let mut u = ipv4_update();
        u.attributes.as_path = AsPath::from_sequence(vec![4_200_000_000, 65001]);
        let bytes = Message::Update(u.clone()).to_bytes(&two);
        let Message::Update(back) = decode(&bytes, &two).unwrap() else {
            panic!()
        };
        assert_eq!(back.attributes.as_path, u.attributes.as_path);
        assert!(bytes.windows(2).any(|w| w == 23456u16.to_be_bytes()));
    }

    fn decode_body(body: &[u8]) -> Result<Update, DecodeError> {
        let Message::Update(u) = decode(&framed(body), &ctx())? else {
            panic!()
        };
        Ok(u)
    }

    #[test]
    fn rfc7606_treat_as_withdraw() {
        // ORIGIN value 9.
        let mut body = IPV4_BODY.to_vec();
        body[7] = 9;
        let u = decode_body(&body).unwrap();
        assert!(u.treat_as_withdraw.as_deref().unwrap().contains("ORIGIN"));
        assert_eq!(u.withdrawn, vec!["100.10.0.0/24".parse().unwrap()]);
        assert!(u.nlri.is_empty());

        // COMMUNITIES of 3 octets (MED flags kept valid).
        let mut body = IPV4_BODY.to_vec();
        body[3] -= 1;
        body[33] = 3;
        body.remove(37);
        let u = decode_body(&body).unwrap();
        assert!(u.treat_as_withdraw.is_some());

        // Missing NEXT_HOP.
        let mut body = IPV4_BODY.to_vec();
        body.drain(17..24);
        body[3] -= 7;
        let u = decode_body(&body).unwrap();
        assert_eq!(
            u.treat_as_withdraw.as_deref(),
            Some("missing well-known attribute NEXT_HOP")
        );

        // Wrong flags on MED (marked transitive).
        let mut body = IPV4_BODY.to_vec();
        body[24] = 0xc0;
        assert!(decode_body(&body).unwrap().treat_as_withdraw.is_some());

        // NEXT_HOP 0.0.0.0.
        let mut body = IPV4_BODY.to_vec();
        body[20..24].copy_from_slice(&[0, 0, 0, 0]);
        assert!(decode_body(&body).unwrap().treat_as_withdraw.is_some());
    }

    #[test]
    fn rfc7606_attribute_discard() {
        // ATOMIC_AGGREGATE with a value is discarded, the route kept.
        let mut body = IPV4_BODY.to_vec();
        body.splice(38..38, [0x40, 0x06, 0x01, 0x00]);
        body[3] += 4;
        let u = decode_body(&body).unwrap();
        assert!(u.treat_as_withdraw.is_none());
        assert!(!u.attributes.atomic_aggregate);
        assert_eq!(u.discarded.len(), 1);
        assert_eq!(u.nlri.len(), 1);
    }

    #[test]
    fn session_reset_errors() {
        // Attribute length overruns the message.
        let mut body = IPV4_BODY.to_vec();
        body[3] = 0xff;
        let e = decode_body(&body).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (3, 1));
        // Unrecognized well-known attribute (type 99, not optional).
        let mut body = IPV4_BODY.to_vec();
        body.splice(38..38, [0x40, 99, 0x00]);
        body[3] += 3;
        let e = decode_body(&body).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (3, 2));
        // Bad NLRI.
        let mut body = IPV4_BODY.to_vec();
        body[38] = 40;
        let e = decode_body(&body).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (3, 10));
        // Duplicate MP_REACH.
        let mut body = IPV6_BODY.to_vec();
        let mp = body[11..43].to_vec();
        body.extend_from_slice(&mp);
        body[3] += 32;
        let e = decode_body(&body).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (3, 1));
    }

    #[test]
    fn unknown_optional_transitive_is_kept_with_partial_bit() {
        let mut body = IPV4_BODY.to_vec();
        body.splice(38..38, [0xc0, 99, 0x02, 0xab, 0xcd, 0x80, 98, 0x01, 0x00]);
        body[3] += 9;
        let u = decode_body(&body).unwrap();
        assert_eq!(u.attributes.unknown.len(), 1, "non-transitive dropped");
        assert_eq!(u.attributes.unknown[0].value, vec![0xab, 0xcd]);
        let again = Message::Update(u).to_bytes(&ctx());
        assert!(again.windows(5).any(|w| w == [0xe0, 99, 0x02, 0xab, 0xcd]));
    }

    #[test]
    fn packer_fills_messages_and_round_trips() {
        let packer = UpdatePacker::new(ctx());
        let attrs = ipv4_update().attributes;
        let enc = packer.encode_attributes(&attrs, Some("192.0.2.1".parse().unwrap()));
        let prefixes: Vec<Ipv4Prefix> = (0..5000u32)
            .map(|i| Ipv4Prefix::new(Ipv4Addr::from((10 << 24) | (i << 8)), 24).unwrap())
            .collect();
        let mut out = Vec::new();
        let n = packer.announce_ipv4(&enc, &prefixes, &mut out);
        // 4096 - 23 - 34 octets of attributes leave room for 1009 /24s per message.
        assert_eq!(n, 5);
        let mut back = Vec::new();
        let mut buf = &out[..];
        while let Some(len) = frame_len(buf).unwrap() {
            assert!(len <= MAX_MESSAGE_LEN);
            let Message::Update(u) = decode(&buf[..len], &ctx()).unwrap() else {
                panic!()
            };
            assert_eq!(u.attributes, attrs);
            back.extend(u.nlri);
            buf = &buf[len..];
        }
        assert_eq!(back, prefixes);

        let v6: Vec<Ipv6Prefix> = (0..3000u128)
            .map(|i| {
                Ipv6Prefix::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64)), 64).unwrap()
            })
            .collect();
        let nh = ["2001:db8::1".parse().unwrap()];
        let mut attrs6 = PathAttributes::default();
        let enc6 = packer.encode_attributes(&attrs6, None);
        let mut out = Vec::new();
        packer.announce_ipv6(&enc6, &nh, &v6, &mut out);
        packer.withdraw_ipv6(&v6, &mut out);
        packer.withdraw_ipv4(&prefixes, &mut out);
        let (mut ann, mut wd6, mut wd4) = (Vec::new(), Vec::new(), Vec::new());
        let mut buf = &out[..];
        attrs6.next_hop = Some(NextHop::Addr(nh[0].into()));
        while let Some(len) = frame_len(buf).unwrap() {
            let Message::Update(u) = decode(&buf[..len], &ctx()).unwrap() else {
                panic!()
            };
            if let Some(MpReach {
                nlri: MpNlri::Ipv6(p),
                ..
            }) = u.mp_reach
            {
                assert_eq!(u.attributes, attrs6);
                ann.extend(p);
            }
            if let Some(MpUnreach {
                withdrawn: MpNlri::Ipv6(p),
                ..
            }) = u.mp_unreach
            {
                wd6.extend(p);
            }
            wd4.extend(u.withdrawn);
            buf = &buf[len..];
        }
        assert_eq!(ann, v6);
        assert_eq!(wd6, v6);
        assert_eq!(wd4, prefixes);
    }

    fn flow_rule(afi: u16, port: u64) -> FlowSpec {
        use super::super::flowspec::{Component, FlowPrefix, NumericOp};
        let eq = |value| NumericOp {
            and: false,
            lt: false,
            gt: false,
            eq: true,
            value,
        };
        let destination = match afi {
            AFI_IPV4 => FlowPrefix::V4("192.0.2.0/24".parse().unwrap()),
            _ => FlowPrefix::V6 {
                prefix: "2001:db8:2::/64".parse().unwrap(),
                offset: 0,
            },
        };
        let components = [
            Component::Destination(destination),
            Component::Protocol(vec![eq(17)]),
            Component::SourcePort(vec![eq(port)]),
        ];
        FlowSpec::new(afi, &components).unwrap()
    }

    /// FlowSpec rules go in MP_REACH with no next hop and come back the same, both
    /// families; withdrawals in MP_UNREACH.
    #[test]
    fn flow_announce_and_withdraw_round_trip() {
        let packer = UpdatePacker::new(ctx());
        let attrs = PathAttributes {
            as_path: AsPath::from_sequence(vec![65001]),
            ..PathAttributes::default()
        };
        let enc = packer.encode_attributes(&attrs, None);
        for (family, afi) in [
            (Family::IPV4_FLOWSPEC, AFI_IPV4),
            (Family::IPV6_FLOWSPEC, AFI_IPV6),
        ] {
            let rules = vec![flow_rule(afi, 53), flow_rule(afi, 123)];
            let mut out = Vec::new();
            assert_eq!(
                packer.announce_flow(&enc, family, None, &rules, &mut out),
                1
            );
            let Message::Update(u) = decode(&out, &ctx()).unwrap() else {
                panic!("not an UPDATE")
            };
            let reach = u.mp_reach.expect("MP_REACH");
            assert_eq!(reach.family, family);
            assert!(reach.next_hop.is_empty(), "no next hop (RFC 8955 §4)");
            assert_eq!(reach.nlri, MpNlri::Flow(rules.clone()));
            assert_eq!(u.attributes.next_hop, None);
            let mut out = Vec::new();
            assert_eq!(packer.withdraw_flow(family, &rules, &mut out), 1);
            let Message::Update(u) = decode(&out, &ctx()).unwrap() else {
                panic!("not an UPDATE")
            };
            let unreach = u.mp_unreach.expect("MP_UNREACH");
            assert_eq!(
                (unreach.family, unreach.withdrawn),
                (family, MpNlri::Flow(rules))
            );
        }
    }

    /// A rule whose length is sound but whose components are out of order makes the
    /// UPDATE treat-as-withdraw: the good rule beside it is withdrawn, nothing resets.
    #[test]
    fn malformed_flow_rule_is_treat_as_withdraw() {
        let good = flow_rule(AFI_IPV4, 53);
        // destination-port (5) before protocol (3): out of order.
        let bad: &[u8] = &[0x06, 0x05, 0x81, 0x50, 0x03, 0x81, 0x06];
        let mut nlri = Vec::new();
        good.encode(&mut nlri);
        nlri.extend_from_slice(bad);
        let mut mp = vec![0, 1, 133, 0, 0];
        mp.extend_from_slice(&nlri);
        let mut body = vec![0, 0];
        let mut attrs = vec![0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x00];
        attrs.extend_from_slice(&[0x90, 0x0e]);
        attrs.extend_from_slice(&(mp.len() as u16).to_be_bytes());
        attrs.extend_from_slice(&mp);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        let Message::Update(u) = decode(&framed(&body), &ctx()).unwrap() else {
            panic!("not an UPDATE")
        };
        assert!(
            u.treat_as_withdraw
                .as_deref()
                .unwrap()
                .contains("ipv4-flowspec")
        );
        assert!(u.mp_reach.is_none());
        let unreach = u.mp_unreach.expect("withdrawn instead");
        assert_eq!(unreach.withdrawn, MpNlri::Flow(vec![good]));
        // A length that overruns the field cannot be walked: the session's error.
        let mut body = vec![0, 0];
        let mp = [0, 1, 133, 0, 0, 0x09, 0x01, 0x18];
        let mut attrs = vec![0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x00, 0x90, 0x0e, 0, 8];
        attrs.extend_from_slice(&mp);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        assert!(decode(&framed(&body), &ctx()).is_err());
    }
}
