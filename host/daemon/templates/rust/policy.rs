//! `{{name}}`: a wasmbgp routing policy (world `policy`). Rejects prefixes longer
//! than `max-length` (IPv4) or `max-length-v6`, and tags the routes it accepts with
//! `community`.
//!
//! Settings: `max-length` (default 24), `max-length-v6` (default 48), `community`
//! ("65001:100" or a well-known name such as "no-export"; none: accepted routes
//! pass unchanged).

use wasmbgp_sdk::{
    Community, DataFile, Error, Modification, Policy, Prefix, Route, Settings, Verdict,
};

struct Filter {
    max_v4: u8,
    max_v6: u8,
    /// Built once: returned by reference, it costs nothing per route.
    tag: Option<Modification>,
}

impl Policy for Filter {
    /// Called once per instance with `[plugin.settings]` and the data files of
    /// `grants.files`. An error is a configuration error: the plugin does not start.
    fn init(settings: &Settings, _files: &[DataFile]) -> Result<Self, Error> {
        settings.only(&["max-length", "max-length-v6", "community"])?;
        let max_v4: u8 = settings.parse_or("max-length", 24)?;
        let max_v6: u8 = settings.parse_or("max-length-v6", 48)?;
        if max_v4 > 32 || max_v6 > 128 {
            return Err("`max-length` is at most 32 and `max-length-v6` at most 128".into());
        }
        let tag = settings
            .parse_text::<Community>("community")?
            .map(|community| Modification::new().add_community(community));
        Ok(Filter { max_v4, max_v6, tag })
    }

    /// Called for every route received from (import) or sent to (export) a
    /// neighbor whose `import-policy` / `export-policy` names this plugin.
    fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
        let prefix = route.prefix();
        let max = match prefix {
            Prefix::V4 { .. } => self.max_v4,
            Prefix::V6 { .. } => self.max_v6,
        };
        match &self.tag {
            _ if prefix.length() > max => Verdict::Reject,
            Some(tag) => Verdict::Modify(tag),
            None => Verdict::Accept,
        }
    }
}

wasmbgp_sdk::export_policy!(Filter);
