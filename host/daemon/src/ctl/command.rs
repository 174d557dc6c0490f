//! Parsing of control commands (pure; the speaker carries them out).

use std::net::IpAddr;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::words::{self, RouteSpec};

/// What `show` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// Sessions.
    Neighbors,
    /// Routes sent, optionally for one neighbor.
    AdjRibOut(Option<IpAddr>),
    /// Routes received, optionally from one neighbor.
    AdjRibIn(Option<IpAddr>),
    /// Plugins.
    Plugins,
    /// Prometheus metrics text.
    Metrics,
}

/// A plugin operator action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginAction {
    /// Maintenance: take the plugin's routes down (or re-MED them).
    Disable,
    /// End maintenance.
    Enable,
    /// Reload the component from its file.
    Reload,
}

/// A control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `show ... [--json]`.
    Show {
        /// What to show.
        what: Show,
        /// JSON instead of text.
        json: bool,
    },
    /// `[neighbor A[,B]] announce route ...`.
    Announce {
        /// Only these neighbors (default: all of the family).
        neighbors: Option<Vec<IpAddr>>,
        /// The route.
        route: RouteSpec,
    },
    /// `[neighbor A[,B]] withdraw route PREFIX`.
    Withdraw {
        /// Only these neighbors.
        neighbors: Option<Vec<IpAddr>>,
        /// The prefix.
        prefix: Prefix,
    },
    /// `plugin disable|enable|reload NAME`.
    Plugin {
        /// What to do.
        action: PluginAction,
        /// The plugin's name.
        name: String,
    },
}

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, String> {
    let tokens = words::tokenize(line);
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let json = t.contains(&"--json");
    let t: Vec<&str> = t.into_iter().filter(|w| *w != "--json").collect();
    match t.as_slice() {
        [] => Err("empty command".into()),
        ["show", rest @ ..] => parse_show(rest).map(|what| Command::Show { what, json }),
        ["neighbor", list, rest @ ..] => {
            let neighbors = list
                .split(',')
                .map(|a| {
                    a.parse::<IpAddr>()
                        .map_err(|_| format!("invalid neighbor address {a:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            parse_route_command(rest, &tokens[tokens.len() - rest.len()..], Some(neighbors))
        }
        ["plugin", action, name] => {
            let action = match *action {
                "disable" => PluginAction::Disable,
                "enable" => PluginAction::Enable,
                "reload" => PluginAction::Reload,
                other => {
                    return Err(format!(
                        "unknown plugin action {other:?} (disable, enable, reload)"
                    ));
                }
            };
            Ok(Command::Plugin {
                action,
                name: name.to_string(),
            })
        }
        _ => parse_route_command(&t, &tokens, None),
    }
}

fn parse_show(rest: &[&str]) -> Result<Show, String> {
    let neighbor = |rest: &[&str]| -> Result<Option<IpAddr>, String> {
        match rest {
            [] => Ok(None),
            [a] => a
                .parse()
                .map(Some)
                .map_err(|_| format!("invalid neighbor address {a:?}")),
            _ => Err("too many arguments".into()),
        }
    };
    match rest {
        ["neighbors" | "neighbor"] => Ok(Show::Neighbors),
        ["adj-rib-out", n @ ..] => neighbor(n).map(Show::AdjRibOut),
        ["adj-rib-in", n @ ..] => neighbor(n).map(Show::AdjRibIn),
        ["plugins"] => Ok(Show::Plugins),
        ["metrics"] => Ok(Show::Metrics),
        _ => Err("show what? (neighbors, adj-rib-out [NEIGHBOR], adj-rib-in [NEIGHBOR], plugins, metrics)".into()),
    }
}

fn parse_route_command(
    t: &[&str],
    tokens: &[String],
    neighbors: Option<Vec<IpAddr>>,
) -> Result<Command, String> {
    match t {
        ["announce", "route", ..] => {
            let route = words::parse_route(&tokens[2..], &PathAttributes::default())?;
            if route.attrs.next_hop.is_none() {
                return Err("announce route needs next-hop (an address or self)".into());
            }
            Ok(Command::Announce { neighbors, route })
        }
        ["withdraw", "route", prefix, ..] => {
            let prefix = prefix.parse::<Prefix>().map_err(|e| e.0)?;
            Ok(Command::Withdraw { neighbors, prefix })
        }
        ["withdraw", "route"] => Err("withdraw route needs a prefix".into()),
        [other, ..] => Err(format!(
            "unknown command {other:?} (show, announce route, withdraw route, neighbor A announce|withdraw route, plugin)"
        )),
        [] => Err("missing command after neighbor".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbgp_bgp::NextHop;

    #[test]
    fn exabgp_commands() {
        let c = parse("announce route 100.10.0.100/32 next-hop self med 100").unwrap();
        let Command::Announce {
            neighbors: None,
            route,
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(route.attrs.next_hop, Some(NextHop::Local));
        assert_eq!(route.attrs.med, Some(100));
        let c = parse("neighbor 127.0.0.2 withdraw route 100.10.0.100/32").unwrap();
        assert_eq!(
            c,
            Command::Withdraw {
                neighbors: Some(vec!["127.0.0.2".parse().unwrap()]),
                prefix: "100.10.0.100/32".parse().unwrap()
            }
        );
        assert_eq!(
            parse("show neighbors --json").unwrap(),
            Command::Show {
                what: Show::Neighbors,
                json: true
            }
        );
        assert_eq!(
            parse("show adj-rib-in 127.0.0.2").unwrap(),
            Command::Show {
                what: Show::AdjRibIn(Some("127.0.0.2".parse().unwrap())),
                json: false
            }
        );
        assert_eq!(
            parse("plugin disable web").unwrap(),
            Command::Plugin {
                action: PluginAction::Disable,
                name: "web".into()
            }
        );
    }

    #[test]
    fn clear_errors() {
        assert!(
            parse("announce route 10.0.0.0/8")
                .unwrap_err()
                .contains("needs next-hop")
        );
        assert!(parse("frobnicate").unwrap_err().contains("unknown command"));
        assert!(parse("show routes").unwrap_err().contains("show what"));
        assert!(
            parse("neighbor x announce route 10.0.0.0/8 next-hop self")
                .unwrap_err()
                .contains("invalid neighbor")
        );
        assert!(
            parse("withdraw route")
                .unwrap_err()
                .contains("needs a prefix")
        );
    }
}
