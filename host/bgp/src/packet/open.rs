//! OPEN and its capabilities (RFC 4271 §4.2, RFC 5492, 4760, 2918, 4724, 6793).

use std::net::Ipv4Addr;

use super::notification::{code, open_sub};
use super::prefix::Family;
use super::{DecodeError, Reader};

/// AS_TRANS, the 2-octet stand-in for a 4-octet ASN (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Capability codes (IANA).
pub mod cap_code {
    /// Multiprotocol Extensions (RFC 4760).
    pub const MULTIPROTOCOL: u8 = 1;
    /// Route Refresh (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 2;
    /// Graceful Restart (RFC 4724).
    pub const GRACEFUL_RESTART: u8 = 64;
    /// Support for 4-octet AS numbers (RFC 6793).
    pub const FOUR_OCTET_AS: u8 = 65;
    /// Enhanced Route Refresh (RFC 7313).
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
}

/// The graceful-restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// Restart State bit: the sender has restarted.
    pub restarting: bool,
    /// Seconds the peer should keep our routes after a restart (12 bits).
    pub restart_time: u16,
    /// Families whose forwarding state is preserved, with their flags.
    pub families: Vec<(Family, u8)>,
}

/// One capability advertised in an OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol Extensions for a family.
    Multiprotocol(Family),
    /// Route Refresh.
    RouteRefresh,
    /// Enhanced Route Refresh.
    EnhancedRouteRefresh,
    /// Graceful Restart.
    GracefulRestart(GracefulRestart),
    /// 4-octet AS number support, carrying the speaker's real ASN.
    FourOctetAs(u32),
    /// Any other capability, kept as received.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

impl Capability {
    fn encode(&self, out: &mut Vec<u8>) {
        let (code, value): (u8, Vec<u8>) = match self {
            Capability::Multiprotocol(f) => {
                let mut v = f.afi.to_be_bytes().to_vec();
                v.extend_from_slice(&[0, f.safi]);
                (cap_code::MULTIPROTOCOL, v)
            }
            Capability::RouteRefresh => (cap_code::ROUTE_REFRESH, vec![]),
            Capability::EnhancedRouteRefresh => (cap_code::ENHANCED_ROUTE_REFRESH, vec![]),
            Capability::GracefulRestart(gr) => {
                let head = ((gr.restarting as u16) << 15) | (gr.restart_time & 0x0fff);
                let mut v = head.to_be_bytes().to_vec();
                for (f, flags) in &gr.families {
                    v.extend_from_slice(&f.afi.to_be_bytes());
                    v.push(f.safi);
                    v.push(*flags);
                }
                (cap_code::GRACEFUL_RESTART, v)
            }
            Capability::FourOctetAs(asn) => (cap_code::FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
            Capability::Unknown { code, value } => (*code, value.clone()),
        };
        out.push(code);
        out.push(value.len() as u8);
        out.extend_from_slice(&value);
    }

    fn decode(code: u8, value: &[u8]) -> Result<Self, DecodeError> {
        let bad = |what: &str| {
            DecodeError::new(
                code::OPEN_MESSAGE,
                0,
                [],
                format!("malformed {what} capability ({} octets)", value.len()),
            )
        };
        let mut r = Reader::new(value);
        Ok(match code {
            cap_code::MULTIPROTOCOL => match (r.u16(), r.u8(), r.u8(), r.is_empty()) {
                (Some(afi), Some(_), Some(safi), true) => {
                    Capability::Multiprotocol(Family { afi, safi })
                }
                _ => return Err(bad("multiprotocol")),
            },
            cap_code::ROUTE_REFRESH | 128 if value.is_empty() => Capability::RouteRefresh,
            cap_code::ENHANCED_ROUTE_REFRESH if value.is_empty() => {
                Capability::EnhancedRouteRefresh
            }
            cap_code::FOUR_OCTET_AS => match (r.u32(), r.is_empty()) {
                (Some(asn), true) => Capability::FourOctetAs(asn),
                _ => return Err(bad("4-octet AS")),
            },
            cap_code::GRACEFUL_RESTART => {
                let head = r.u16().ok_or_else(|| bad("graceful restart"))?;
                if r.remaining() % 4 != 0 {
                    return Err(bad("graceful restart"));
                }
                let mut families = Vec::new();
                while let (Some(afi), Some(safi), Some(flags)) = (r.u16(), r.u8(), r.u8()) {
                    families.push((Family { afi, safi }, flags));
                }
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & 0x8000 != 0,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The sender's ASN: the 4-octet capability's value when present, else the 2-octet field.
    pub asn: u32,
    /// Proposed hold time in seconds (0 or ≥ 3).
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order they were received.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The families the sender announced with the multiprotocol capability.
    pub fn families(&self) -> impl Iterator<Item = Family> + '_ {
        self.capabilities.iter().filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
    }

    /// True if the sender supports 4-octet ASNs.
    pub fn four_octet_as(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
    }

    /// True if the sender supports ROUTE-REFRESH.
    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }

    /// The sender's graceful-restart capability, if any.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(4);
        let my_as = u16::try_from(self.asn).unwrap_or(AS_TRANS);
        out.extend_from_slice(&my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let encoded: Vec<Vec<u8>> = self
            .capabilities
            .iter()
            .map(|c| {
                let mut v = Vec::new();
                c.encode(&mut v);
                v
            })
            .collect();
        // One Capabilities parameter per capability, as most speakers send them; when
        // those do not fit the 255 octets of the parameters field (a peer's OPEN, packed
        // tighter, encoded again), as many capabilities per parameter as fit (RFC 5492
        // §4). Capabilities that fit in no way are left out: the field stays well formed.
        let one_each = encoded.iter().map(|c| 2 + c.len()).sum::<usize>() <= 255;
        let mut params: Vec<u8> = Vec::new();
        let mut open_param: Option<usize> = None;
        for c in &encoded {
            if params.len() + c.len() > 255 {
                continue;
            }
            let joins = open_param.filter(|&at| !one_each && params.len() - at + c.len() <= 257);
            let at = match joins {
                Some(at) => at,
                None if params.len() + 2 + c.len() <= 255 => {
                    params.extend_from_slice(&[2, 0]); // parameter type Capabilities, length
                    params.len() - 2
                }
                None => continue,
            };
            params.extend_from_slice(c);
            params[at + 1] = (params.len() - at - 2) as u8;
            open_param = Some(at);
        }
        out.push(params.len() as u8);
        out.extend_from_slice(&params);
    }

    pub(crate) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let (Some(version), Some(my_as), Some(hold_time), Some(id), Some(opt_len)) =
            (r.u8(), r.u16(), r.u16(), r.u32(), r.u8())
        else {
            return Err(DecodeError::new(1, 2, [], "OPEN too short"));
        };
        if version != 4 {
            return Err(DecodeError::new(
                code::OPEN_MESSAGE,
                open_sub::UNSUPPORTED_VERSION,
                4u16.to_be_bytes(),
                format!("unsupported BGP version {version}"),
            ));
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::new(
                code::OPEN_MESSAGE,
                open_sub::UNACCEPTABLE_HOLD_TIME,
                [],
                format!("unacceptable hold time {hold_time}"),
            ));
        }
        let bgp_id = Ipv4Addr::from(id);
        if id == 0 {
            return Err(DecodeError::new(
                code::OPEN_MESSAGE,
                open_sub::BAD_BGP_IDENTIFIER,
                [],
                "BGP identifier 0.0.0.0",
            ));
        }
        let malformed = |why: &str| {
            DecodeError::new(
                code::OPEN_MESSAGE,
                0,
                [],
                format!("malformed optional parameters: {why}"),
            )
        };
        let params = r
            .take(opt_len as usize)
            .ok_or_else(|| malformed("length exceeds message"))?;
        if !r.is_empty() {
            return Err(malformed("trailing octets after optional parameters"));
        }
        let mut capabilities = Vec::new();
        let mut p = Reader::new(params);
        while !p.is_empty() {
            let (Some(kind), Some(len)) = (p.u8(), p.u8()) else {
                return Err(malformed("truncated parameter header"));
            };
            let value = p
                .take(len as usize)
                .ok_or_else(|| malformed("truncated parameter"))?;
            if kind != 2 {
                return Err(DecodeError::new(
                    code::OPEN_MESSAGE,
                    open_sub::UNSUPPORTED_OPTIONAL_PARAMETER,
                    [],
                    format!("unsupported optional parameter type {kind}"),
                ));
            }
            let mut c = Reader::new(value);
            while !c.is_empty() {
                let (Some(code), Some(len)) = (c.u8(), c.u8()) else {
                    return Err(malformed("truncated capability header"));
                };
                let value = c
                    .take(len as usize)
                    .ok_or_else(|| malformed("truncated capability"))?;
                capabilities.push(Capability::decode(code, value)?);
            }
        }
        let asn = capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(my_as as u32);
        Ok(Open {
            asn,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Context, Message, decode};
    use super::*;

    /// OPEN from AS 65001, hold 90, id 127.0.0.1, with MP ipv4/ipv6 unicast, route refresh,
    /// 4-octet AS 65001 and graceful restart (120 s, ipv4 unicast preserved).
    const OPEN_BYTES: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, //
        0x00, 0x43, 0x01, // length 67, OPEN
        0x04, 0xfd, 0xe9, 0x00, 0x5a, 127, 0, 0, 1,    // version, AS, hold, id
        0x26, // optional parameters length 38
        0x02, 0x06, 0x01, 0x04, 0x00, 0x01, 0x00, 0x01, // MP ipv4 unicast
        0x02, 0x06, 0x01, 0x04, 0x00, 0x02, 0x00, 0x01, // MP ipv6 unicast
        0x02, 0x02, 0x02, 0x00, // route refresh
        0x02, 0x06, 0x41, 0x04, 0x00, 0x00, 0xfd, 0xe9, // 4-octet AS 65001
        0x02, 0x08, 0x40, 0x06, 0x00, 0x78, 0x00, 0x01, 0x01, 0x80, // GR
    ];

    fn sample() -> Open {
        Open {
            asn: 65001,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(127, 0, 0, 1),
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(65001),
                Capability::GracefulRestart(GracefulRestart {
                    restarting: false,
                    restart_time: 120,
                    families: vec![(Family::IPV4_UNICAST, 0x80)],
                }),
            ],
        }
    }

    #[test]
    fn open_vector_both_ways() {
        let bytes = Message::Open(sample()).to_bytes(&Context::default());
        assert_eq!(bytes, OPEN_BYTES);
        assert_eq!(
            decode(OPEN_BYTES, &Context::default()).unwrap(),
            Message::Open(sample())
        );
    }

    #[test]
    fn four_octet_asn_uses_as_trans() {
        let mut open = sample();
        open.asn = 4_200_000_000;
        open.capabilities[3] = Capability::FourOctetAs(4_200_000_000);
        let bytes = Message::Open(open.clone()).to_bytes(&Context::default());
        assert_eq!(&bytes[20..22], &AS_TRANS.to_be_bytes());
        let Message::Open(back) = decode(&bytes, &Context::default()).unwrap() else {
            panic!()
        };
        assert_eq!(back.asn, 4_200_000_000);
    }

    fn errors_of(mutate: impl Fn(&mut Vec<u8>)) -> (u8, u8) {
        let mut bytes = OPEN_BYTES.to_vec();
        mutate(&mut bytes);
        let e = decode(&bytes, &Context::default()).unwrap_err();
        (e.notification.code, e.notification.subcode)
    }

    #[test]
    fn open_errors_map_to_rfc_subcodes() {
        assert_eq!(errors_of(|b| b[19] = 3), (2, 1));
        assert_eq!(errors_of(|b| b[23] = 2), (2, 6));
        assert_eq!(
            errors_of(|b| b[24..28].copy_from_slice(&[0, 0, 0, 0])),
            (2, 3)
        );
        assert_eq!(errors_of(|b| b[29] = 3), (2, 4));
        assert_eq!(errors_of(|b| b[28] = 40), (2, 0));
        assert_eq!(errors_of(|b| b[52] = 3), (2, 0)); // 4-octet AS capability of 3 octets
    }

    /// Found by the `message` fuzz target: an OPEN packing many capabilities into one
    /// parameter, decoded and encoded again one parameter per capability, overflowed
    /// the one-octet parameters length and came out corrupt.
    #[test]
    fn capabilities_beyond_255_octets_share_parameters() {
        let mut open = sample();
        open.capabilities = vec![Capability::RouteRefresh; 100];
        let bytes = Message::Open(open.clone()).to_bytes(&Context::default());
        assert_eq!(
            bytes[28],
            2 + 200,
            "one parameter holds the 100 capabilities"
        );
        assert_eq!(
            decode(&bytes, &Context::default()),
            Ok(Message::Open(open.clone()))
        );

        // More than a parameters field holds: the capabilities that fit are kept.
        open.capabilities = vec![Capability::RouteRefresh; 200];
        let bytes = Message::Open(open).to_bytes(&Context::default());
        let Ok(Message::Open(back)) = decode(&bytes, &Context::default()) else {
            panic!("{bytes:02x?}")
        };
        assert_eq!(back.capabilities.len(), 126);
    }

    #[test]
    fn hold_time_zero_is_accepted() {
        let mut bytes = OPEN_BYTES.to_vec();
        bytes[22] = 0;
        bytes[23] = 0;
        let Message::Open(o) = decode(&bytes, &Context::default()).unwrap() else {
            panic!()
        };
        assert_eq!(o.hold_time, 0);
    }
}
