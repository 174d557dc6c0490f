//! `rpki-rov`: RFC 6811 route origin validation against the VRPs that
//! rpki-client or Routinator exported as JSON, in both directions.
//!
//! Settings:
//! - `vrps` (required): the path of the VRP file, exactly as written in the
//!   plugin's `grants.files`; the host hands its contents to `init` (and
//!   starts a new instance when the file changes).
//! - `invalid`: `reject` (default) drops invalid routes; `tag` accepts them
//!   with the community `tag-community` added.
//! - `tag-community`: required with `invalid = "tag"`, refused otherwise: a
//!   standard community ("65001:666", or a well-known name) or a large one
//!   ("65001:0:6").
//!
//! Valid and not-found routes are accepted unchanged.
//!
//! The origin AS is the last ASN of the path when its last segment
//! (confederation segments aside) is an AS_SEQUENCE. When it is an AS_SET
//! the origin is NONE: the route is invalid if any VRP covers it, not-found
//! otherwise. When the path is empty, the route was originated by the AS
//! at the other end of the path: the neighbor's (`peer-as`) on import
//! (only an iBGP neighbor sends an empty path), our own (`local-as`) on
//! export (export sees routes as originated, before the local AS is
//! prepended).

mod vrps;

pub use vrps::{Validity, Vrps};
use wasmbgp_sdk::{
    Community, DataFile, Direction, Error, LargeCommunity, Modification, OriginAs, Policy, Route,
    Settings, Verdict, find_file,
};

/// The policy: the VRPs, and what to do with invalid routes.
pub struct RpkiRov {
    vrps: Vrps,
    /// `None`: reject invalid routes; else accept them with this change.
    tag: Option<Modification>,
}

impl RpkiRov {
    /// The validity of `route`.
    pub fn validity(&self, route: &Route<'_>) -> Validity {
        let origin = match route.attributes().origin_as() {
            OriginAs::Asn(asn) => Some(asn),
            OriginAs::Set => None,
            OriginAs::Empty => Some(match route.direction() {
                Direction::Import => route.session().peer_as,
                Direction::Export => route.session().local_as,
            }),
        };
        self.vrps.validate(&route.prefix(), origin)
    }
}

/// Parses `tag-community`: standard or large, by the number of colons.
fn tag(text: &str) -> Result<Modification, Error> {
    let in_setting =
        |e: wasmbgp_sdk::ParseError| Error::new(format!("setting `tag-community`: {e}"));
    Ok(if text.matches(':').count() == 2 {
        Modification::new().add_large_community(text.parse::<LargeCommunity>().map_err(in_setting)?)
    } else {
        Modification::new().add_community(text.parse::<Community>().map_err(in_setting)?)
    })
}

impl Policy for RpkiRov {
    fn init(settings: &Settings, files: &[DataFile]) -> Result<Self, Error> {
        settings.only(&["vrps", "invalid", "tag-community"])?;
        let tag = match (
            settings.get_or("invalid", "reject"),
            settings.get("tag-community"),
        ) {
            ("reject", None) => None,
            ("reject", Some(_)) => {
                return Err("setting `tag-community` is used only with invalid = \"tag\"".into());
            }
            ("tag", Some(community)) => Some(tag(community)?),
            ("tag", None) => {
                return Err("setting `tag-community` is required with invalid = \"tag\"".into());
            }
            (other, _) => {
                return Err(format!(
                    "setting `invalid` = {other:?} is invalid: expected \"reject\" or \"tag\""
                )
                .into());
            }
        };
        let path = settings.required("vrps")?;
        let file =
            find_file(files, path).map_err(|e| Error::new(format!("setting `vrps`: {e}")))?;
        let vrps = Vrps::from_json(&file.contents)
            .map_err(|e| Error::new(format!("VRP file {path:?} (setting `vrps`): {e}")))?;
        #[cfg(target_arch = "wasm32")]
        wasmbgp_sdk::log::info(&format!(
            "{} VRPs for {} prefixes from {path}",
            vrps.len(),
            vrps.prefixes()
        ));
        Ok(RpkiRov { vrps, tag })
    }

    #[inline]
    fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
        match self.validity(route) {
            Validity::Valid | Validity::NotFound => Verdict::Accept,
            Validity::Invalid => match &self.tag {
                None => Verdict::Reject,
                Some(tag) => Verdict::Modify(tag),
            },
        }
    }
}

wasmbgp_sdk::export_policy!(RpkiRov);

#[cfg(test)]
mod tests {
    use wasmbgp_sdk::types::SegmentKind;
    use wasmbgp_sdk::{Attributes, IpAddress, Session};

    use super::*;

    const VRPS: &[u8] = br#"{"roas": [
        {"asn": "AS65001", "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "test"},
        {"asn": "AS65000", "prefix": "198.51.100.0/24", "maxLength": 24, "ta": "test"}
    ]}"#;

    fn files() -> Vec<DataFile> {
        vec![DataFile {
            path: "/var/lib/rpki/vrps.json".into(),
            contents: VRPS.to_vec(),
        }]
    }

    fn policy(pairs: &[(&str, &str)]) -> Result<RpkiRov, Error> {
        let mut all = vec![("vrps".to_string(), "/var/lib/rpki/vrps.json".to_string())];
        all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        RpkiRov::init(&Settings::new(all), &files())
    }

    fn judge(
        policy: &mut RpkiRov,
        direction: Direction,
        prefix: &str,
        path: &[(SegmentKind, &[u32])],
    ) -> String {
        let session = Session {
            neighbor: IpAddress::V4(0x7f00_0002),
            peer_as: 65000,
            local_as: 65001,
        };
        let attributes = Attributes::new().with_segments(path);
        let route = Route::new(direction, &session, prefix.parse().unwrap(), &attributes);
        match policy.evaluate(&route) {
            Verdict::Accept => "accept".into(),
            Verdict::Reject => "reject".into(),
            Verdict::Modify(m) => format!("modify {:?}", m.apply(&attributes).communities),
            Verdict::ModifyOwned(_) => "owned".into(),
        }
    }

    #[test]
    fn origin_as_rules() {
        use SegmentKind::*;
        let mut p = policy(&[]).unwrap();
        let import = Direction::Import;
        assert_eq!(
            judge(
                &mut p,
                import,
                "192.0.2.0/24",
                &[(Sequence, &[65000, 65001])]
            ),
            "accept"
        );
        assert_eq!(
            judge(
                &mut p,
                import,
                "192.0.2.0/24",
                &[(Sequence, &[65001, 65000])]
            ),
            "reject"
        );
        assert_eq!(
            judge(&mut p, import, "10.0.0.0/8", &[(Sequence, &[65000])]),
            "accept"
        );
        // AS_SET last: NONE.
        assert_eq!(
            judge(
                &mut p,
                import,
                "192.0.2.0/24",
                &[(Sequence, &[65000]), (Set, &[65001])]
            ),
            "reject"
        );
        assert_eq!(
            judge(
                &mut p,
                import,
                "10.0.0.0/8",
                &[(Sequence, &[65000]), (Set, &[65001])]
            ),
            "accept"
        );
        // Empty path: the peer's AS on import, ours on export.
        assert_eq!(judge(&mut p, import, "198.51.100.0/24", &[]), "accept");
        assert_eq!(judge(&mut p, import, "192.0.2.0/24", &[]), "reject");
        assert_eq!(
            judge(&mut p, Direction::Export, "192.0.2.0/24", &[]),
            "accept"
        );
        assert_eq!(
            judge(&mut p, Direction::Export, "198.51.100.0/24", &[]),
            "reject"
        );
        // Confederation segments do not count.
        assert_eq!(
            judge(
                &mut p,
                import,
                "192.0.2.0/24",
                &[(Sequence, &[65001]), (ConfedSequence, &[64512])]
            ),
            "accept"
        );
    }

    #[test]
    fn invalid_routes_can_be_tagged() {
        use SegmentKind::*;
        let mut p = policy(&[("invalid", "tag"), ("tag-community", "65001:666")]).unwrap();
        let path: &[(SegmentKind, &[u32])] = &[(Sequence, &[65009])];
        assert_eq!(
            judge(&mut p, Direction::Import, "192.0.2.0/24", path),
            format!("modify {:?}", [(65001u32 << 16) | 666])
        );
        assert_eq!(
            judge(&mut p, Direction::Import, "10.0.0.0/8", path),
            "accept"
        );
        let p = policy(&[("invalid", "tag"), ("tag-community", "65001:0:6")]).unwrap();
        assert!(p.tag.is_some());
    }

    #[test]
    fn settings_errors_are_clear() {
        let error = |pairs: &[(&str, &str)]| policy(pairs).err().unwrap().to_string();
        assert!(error(&[("invalid", "tag")]).contains("`tag-community` is required"));
        assert!(error(&[("tag-community", "1:1")]).contains("only with invalid"));
        assert!(error(&[("invalid", "drop")]).contains("\"reject\" or \"tag\""));
        assert!(error(&[("invalid", "tag"), ("tag-community", "x")]).contains("`tag-community`"));
        let missing = RpkiRov::init(
            &Settings::new(vec![("vrps".into(), "other.json".into())]),
            &files(),
        );
        let e = missing.err().unwrap().to_string();
        assert!(
            e.contains("setting `vrps`") && e.contains("/var/lib/rpki/vrps.json"),
            "{e}"
        );
        let bad = vec![DataFile {
            path: "v.json".into(),
            contents: b"{\"roas\": 5}".to_vec(),
        }];
        let e = RpkiRov::init(&Settings::new(vec![("vrps".into(), "v.json".into())]), &bad)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("VRP file \"v.json\"") && e.contains("list of ROAs"),
            "{e}"
        );
    }
}
