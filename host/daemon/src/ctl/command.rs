//! Parsing of control commands (pure; the speaker carries them out).

use std::net::IpAddr;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::text::quote;
use wasmbgp_bgp::words::{self, RouteSpec};

/// What `show` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// Sessions.
    Neighbors,
    /// Routes sent, optionally for one neighbor: after export policy, or before it
    /// (`--pre-policy`: the originated routes the policy judges).
    AdjRibOut {
        /// Only this neighbor.
        neighbor: Option<IpAddr>,
        /// Before export policy.
        pre_policy: bool,
    },
    /// Routes received, optionally from one neighbor: after import policy, or as
    /// received (`--pre-policy`).
    AdjRibIn {
        /// Only this neighbor.
        neighbor: Option<IpAddr>,
        /// Before import policy.
        pre_policy: bool,
    },
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
}

/// Which task `debug panic` makes panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicTarget {
    /// The speaker task.
    Speaker,
    /// One neighbor's task.
    Neighbor(IpAddr),
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
    /// `plugin disable|enable NAME`.
    Plugin {
        /// What to do.
        action: PluginAction,
        /// The plugin's name.
        name: String,
    },
    /// `plugin reload NAME [PATH]`: swap the plugin's instance, to the component at
    /// PATH (settings and grants as they run) or to its block as the config file says
    /// now.
    PluginReload {
        /// The plugin's name.
        name: String,
        /// The new component.
        path: Option<std::path::PathBuf>,
    },
    /// `shutdown [--message TEXT]`: stop wasmbgp as SIGTERM does, every session
    /// ended with Cease/Administrative Shutdown carrying TEXT (RFC 9003) if given.
    /// `shutdown --graceful-restart`: stop, closing every session without a
    /// NOTIFICATION, so that peers keep the routes until wasmbgp is back.
    Shutdown(Farewell),
    /// `reload [--json]`: re-read the config file and apply what changed.
    Reload {
        /// The summary as JSON.
        json: bool,
    },
    /// `policy reevaluate NAME`: judge again every route the policy filters (after
    /// editing something it reads that wasmbgp cannot see change); only differences
    /// reach the wire.
    PolicyReevaluate(String),
    /// `debug panic speaker|neighbor ADDR`: fault injection for the tests of the task
    /// supervision; refused unless wasmbgp runs with `WASMBGP_FAULT_INJECTION=1`.
    DebugPanic(PanicTarget),
}

/// How wasmbgp leaves its peers when it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Farewell {
    /// Cease/Administrative Shutdown: the peers withdraw wasmbgp's routes at once
    /// (SIGTERM, `ctl shutdown`). With this shutdown communication if given, else the
    /// configured one, if any.
    Cease(Option<String>),
    /// Close without a NOTIFICATION (`ctl shutdown --graceful-restart`): peers with
    /// graceful restart keep wasmbgp's routes, stale, until it is back and has sent
    /// its End-of-RIB (a binary upgrade without a withdrawal).
    GracefulRestart,
}

/// Parses one command line. Never panics: every input is outside input (fuzzed in
/// `fuzz/`), and errors quote at most a short prefix of it.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut tokens = words::tokenize(line);
    let json = tokens.iter().any(|w| w == "--json");
    tokens.retain(|w| w != "--json");
    let pre_policy =
        tokens.first().is_some_and(|w| w == "show") && tokens.iter().any(|w| w == "--pre-policy");
    if pre_policy {
        tokens.retain(|w| w != "--pre-policy");
    }
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    match t.as_slice() {
        [] => Err("empty command".into()),
        ["show", rest @ ..] => {
            parse_show(rest, pre_policy).map(|what| Command::Show { what, json })
        }
        ["policy", "reevaluate", name] => Ok(Command::PolicyReevaluate(name.to_string())),
        ["policy", ..] => Err("policy what? (policy reevaluate NAME)".into()),
        ["neighbor", list, rest @ ..] => {
            let neighbors = list
                .split(',')
                .map(parse_neighbor)
                .collect::<Result<Vec<_>, _>>()?;
            parse_route_command(rest, Some(neighbors))
        }
        ["shutdown"] => Ok(Command::Shutdown(Farewell::Cease(None))),
        ["shutdown", "--graceful-restart"] => Ok(Command::Shutdown(Farewell::GracefulRestart)),
        ["shutdown", "--message", words @ ..] if !words.is_empty() => {
            let message = words.join(" ");
            if message.len() > 255 {
                return Err("the shutdown message is at most 255 bytes (RFC 9003)".into());
            }
            Ok(Command::Shutdown(Farewell::Cease(Some(message))))
        }
        ["shutdown", ..] => Err("shutdown [--message TEXT | --graceful-restart]".into()),
        ["reload"] => Ok(Command::Reload { json }),
        ["reload", ..] => Err("reload takes no arguments (reload [--json])".into()),
        ["plugin", "reload", name] => Ok(Command::PluginReload {
            name: name.to_string(),
            path: None,
        }),
        ["plugin", "reload", name, path] => Ok(Command::PluginReload {
            name: name.to_string(),
            path: Some(std::path::PathBuf::from(path)),
        }),
        ["plugin", action, name] => {
            let action = match *action {
                "disable" => PluginAction::Disable,
                "enable" => PluginAction::Enable,
                other => {
                    return Err(format!(
                        "unknown plugin action {} (disable, enable, reload NAME [PATH])",
                        quote(other)
                    ));
                }
            };
            Ok(Command::Plugin {
                action,
                name: name.to_string(),
            })
        }
        ["debug", "panic", "speaker"] => Ok(Command::DebugPanic(PanicTarget::Speaker)),
        ["debug", "panic", "neighbor", address] => {
            parse_neighbor(address).map(|a| Command::DebugPanic(PanicTarget::Neighbor(a)))
        }
        ["debug", ..] => Err("debug what? (debug panic speaker|neighbor ADDR)".into()),
        _ => parse_route_command(&t, None),
    }
}

fn parse_neighbor(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("invalid neighbor address {}", quote(text)))
}

fn parse_show(rest: &[&str], pre_policy: bool) -> Result<Show, String> {
    let neighbor = |rest: &[&str]| -> Result<Option<IpAddr>, String> {
        match rest {
            [] => Ok(None),
            [a] => parse_neighbor(a).map(Some),
            _ => Err("too many arguments".into()),
        }
    };
    if pre_policy && !matches!(rest.first(), Some(&"adj-rib-in" | &"adj-rib-out")) {
        return Err("--pre-policy is for show adj-rib-in and show adj-rib-out".into());
    }
    match rest {
        ["neighbors" | "neighbor"] => Ok(Show::Neighbors),
        ["adj-rib-out", n @ ..] => neighbor(n).map(|neighbor| Show::AdjRibOut {
            neighbor,
            pre_policy,
        }),
        ["adj-rib-in", n @ ..] => neighbor(n).map(|neighbor| Show::AdjRibIn {
            neighbor,
            pre_policy,
        }),
        ["plugins"] => Ok(Show::Plugins),
        ["metrics"] => Ok(Show::Metrics),
        _ => Err("show what? (neighbors, adj-rib-out [NEIGHBOR] [--pre-policy], adj-rib-in [NEIGHBOR] [--pre-policy], plugins, metrics)".into()),
    }
}

fn parse_route_command(t: &[&str], neighbors: Option<Vec<IpAddr>>) -> Result<Command, String> {
    match t {
        ["announce", "route", route @ ..] => {
            let route = words::parse_route(route, &PathAttributes::default())?;
            if route.attrs.next_hop.is_none() {
                return Err("announce route needs next-hop (an address or self)".into());
            }
            Ok(Command::Announce { neighbors, route })
        }
        ["withdraw", "route", prefix, ..] => {
            let prefix = words::parse_prefix(prefix)?;
            Ok(Command::Withdraw { neighbors, prefix })
        }
        ["withdraw", "route"] => Err("withdraw route needs a prefix".into()),
        ["announce", "flow", "route", rule @ ..] => {
            let route = words::flow::parse_flow_route(rule, &PathAttributes::default())?;
            Ok(Command::Announce {
                neighbors,
                route: route.into(),
            })
        }
        // The rule is what identifies the route: actions, if given, are ignored.
        ["withdraw", "flow", "route", rule @ ..] => {
            let route = words::flow::parse_flow_route(rule, &PathAttributes::default())?;
            Ok(Command::Withdraw {
                neighbors,
                prefix: Prefix::Flow(route.rule),
            })
        }
        [other, ..] => Err(format!(
            "unknown command {} (show, announce [flow] route, withdraw [flow] route, neighbor A ..., plugin, reload, shutdown)",
            quote(other)
        )),
        [] => Err("missing command after neighbor".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbgp_bgp::NextHop;

    #[test]
    fn shutdown_forms() {
        assert_eq!(
            parse("shutdown"),
            Ok(Command::Shutdown(Farewell::Cease(None)))
        );
        assert_eq!(
            parse("shutdown --message back in 5 min"),
            Ok(Command::Shutdown(Farewell::Cease(Some(
                "back in 5 min".into()
            ))))
        );
        assert_eq!(
            parse("shutdown --graceful-restart"),
            Ok(Command::Shutdown(Farewell::GracefulRestart))
        );
        assert!(parse("shutdown --graceful-restart --message x").is_err());
        assert!(parse(&format!("shutdown --message {}", "x".repeat(256))).is_err());
    }

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
                what: Show::AdjRibIn {
                    neighbor: Some("127.0.0.2".parse().unwrap()),
                    pre_policy: false
                },
                json: false
            }
        );
        assert_eq!(
            parse("show adj-rib-out --pre-policy --json").unwrap(),
            Command::Show {
                what: Show::AdjRibOut {
                    neighbor: None,
                    pre_policy: true
                },
                json: true
            }
        );
        assert!(parse("show neighbors --pre-policy").is_err());
        assert_eq!(
            parse("policy reevaluate rov").unwrap(),
            Command::PolicyReevaluate("rov".into())
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
    fn json_flag_anywhere_and_neighbor_prefix() {
        let c = parse("neighbor 127.0.0.2 announce route 10.0.0.0/8 next-hop self --json");
        assert!(matches!(c, Ok(Command::Announce { .. })), "{c:?}");
        assert!(matches!(
            parse("--json show plugins"),
            Ok(Command::Show {
                what: Show::Plugins,
                json: true
            })
        ));
    }

    /// Issue 7: the extended community that panicked the words parser, and input far
    /// longer than any command, get short errors.
    #[test]
    fn outside_input_gets_short_errors() {
        let e =
            parse("announce route 10.0.0.0/24 next-hop self extended-community 0x0é0000000000000")
                .unwrap_err();
        assert!(e.contains("extended-community"), "{e}");
        let long = "x".repeat(100_000);
        for line in [
            long.clone(),
            format!("neighbor {long} withdraw route 10.0.0.0/8"),
            format!("plugin {long} web"),
            format!("withdraw route {long}"),
        ] {
            let e = parse(&line).unwrap_err();
            assert!(e.len() < 200, "{}", &e[..200]);
        }
    }

    /// ExaBGP's flow words, block or flat, announce and withdraw a rule; the rule alone
    /// names what is withdrawn.
    #[test]
    fn flow_routes() {
        let c = parse(
            "announce flow route { match { source 10.0.0.0/24; destination-port =80; protocol tcp; } then { redirect 65001:999; } }",
        )
        .unwrap();
        let Command::Announce {
            neighbors: None,
            route,
        } = c
        else {
            panic!("{c:?}")
        };
        let Prefix::Flow(rule) = &route.prefix else {
            panic!("not a flow: {:?}", route.prefix)
        };
        assert_eq!(
            rule.to_string(),
            "source 10.0.0.0/24 protocol =tcp destination-port =80"
        );
        assert_eq!(
            route.attrs.extended_communities[0].to_string(),
            "redirect:65001:999"
        );
        let c = parse(
            "neighbor 127.0.0.2 withdraw flow route source 10.0.0.0/24 destination-port =80 protocol tcp",
        )
        .unwrap();
        assert_eq!(
            c,
            Command::Withdraw {
                neighbors: Some(vec!["127.0.0.2".parse().unwrap()]),
                prefix: route.prefix.clone(),
            }
        );
        assert!(
            parse("announce flow route { match { source 10.0.0.0/33; } }")
                .unwrap_err()
                .contains("10.0.0.0/33")
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
