//! `routes`: originating routes, checked against the grants, `max-routes` and the BGP
//! core's rules before anything reaches the speaker.

use std::net::IpAddr;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::NextHop;
use wasmbgp_bgp::words::{self, RouteSpec};

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::wasmbgp::plugin::{routes, types};
use super::convert;
use crate::events::{EventSender, PluginEvent};
use crate::grants::{CheckedGrants, NeighborError};
use crate::supervisor::Shared;

/// What `routes` may touch: the grants (neighbors, `max-routes`), the plugin's owned
/// routes and counters, and the queue to the speaker, with the time the call in
/// progress waited on it (not charged to the guest's deadline).
pub(crate) struct RoutesCtx {
    pub plugin: Arc<str>,
    pub shared: Arc<Shared>,
    pub grants: Arc<CheckedGrants>,
    pub events: EventSender,
    pub waited: Duration,
}

impl RoutesCtx {
    fn route_denied(&self, why: String) -> routes::RouteError {
        self.shared.count_denied();
        tracing::warn!(plugin = %self.plugin, "route request denied: {why}");
        routes::RouteError::Denied(why)
    }

    /// Refuses a malformed route request: logged, counted and answered `invalid`.
    fn route_invalid(&self, why: String) -> routes::RouteError {
        self.shared.count_invalid();
        tracing::warn!(plugin = %self.plugin, "route request invalid: {why}");
        routes::RouteError::Invalid(why)
    }

    /// Queues a request for the speaker, waiting for room: a plugin that announces
    /// faster than the speaker applies is paced, not buffered.
    async fn queue(&mut self, event: PluginEvent) {
        let start = Instant::now();
        self.events.send(event).await;
        self.waited += start.elapsed();
    }

    fn neighbors(&self, requested: &[types::IpAddress]) -> Result<Vec<IpAddr>, routes::RouteError> {
        let requested: Vec<IpAddr> = requested.iter().map(convert::address_in).collect();
        self.grants
            .neighbors_for(&requested)
            .map_err(|NeighborError::Denied(why)| self.route_denied(why))
    }
}

impl RoutesCtx {
    /// Owns and queues a checked route (a prefix or a FlowSpec rule), within `max-routes`.
    async fn announce_route(
        &mut self,
        route: RouteSpec,
        neighbors: Vec<IpAddr>,
    ) -> Result<(), routes::RouteError> {
        if !self
            .shared
            .own_route(route.prefix.clone(), self.grants.max_routes)
        {
            self.shared.count_denied();
            let cap = self.grants.max_routes.unwrap_or(0);
            tracing::warn!(plugin = %self.plugin, prefix = %route.prefix, "route refused: max-routes {cap} reached");
            return Err(routes::RouteError::LimitExceeded(format!(
                "max-routes is {cap}"
            )));
        }
        self.queue(PluginEvent::Announce {
            plugin: self.plugin.to_string(),
            route,
            neighbors,
        })
        .await;
        Ok(())
    }

    async fn withdraw_route(&mut self, prefix: Prefix, neighbors: Vec<IpAddr>) {
        self.shared.disown_route(&prefix);
        self.queue(PluginEvent::Withdraw {
            plugin: self.plugin.to_string(),
            prefix,
            neighbors,
        })
        .await;
    }
}

impl routes::Host for RoutesCtx {
    async fn announce(
        &mut self,
        prefix: types::Prefix,
        attributes: types::Attributes,
        neighbors: Vec<types::IpAddress>,
    ) -> Result<(), routes::RouteError> {
        let neighbors = self.neighbors(&neighbors)?;
        let route = route_spec(&prefix, &attributes).map_err(|why| self.route_invalid(why))?;
        self.announce_route(route, neighbors).await
    }

    async fn withdraw(
        &mut self,
        prefix: types::Prefix,
        neighbors: Vec<types::IpAddress>,
    ) -> Result<(), routes::RouteError> {
        let neighbors = self.neighbors(&neighbors)?;
        let prefix = convert::prefix_in(&prefix).map_err(|why| self.route_invalid(why))?;
        self.withdraw_route(prefix, neighbors).await;
        Ok(())
    }

    async fn announce_flow(
        &mut self,
        rule: types::FlowRule,
        attributes: types::Attributes,
        neighbors: Vec<types::IpAddress>,
    ) -> Result<(), routes::RouteError> {
        let neighbors = self.neighbors(&neighbors)?;
        let route = flow_route_spec(&rule, &attributes).map_err(|why| self.route_invalid(why))?;
        self.announce_route(route, neighbors).await
    }

    async fn withdraw_flow(
        &mut self,
        rule: types::FlowRule,
        neighbors: Vec<types::IpAddress>,
    ) -> Result<(), routes::RouteError> {
        let neighbors = self.neighbors(&neighbors)?;
        let rule = convert::flow_rule_in(&rule).map_err(|why| self.route_invalid(why))?;
        self.withdraw_route(Prefix::Flow(rule), neighbors).await;
        Ok(())
    }
}

/// A `routes.announce` request in the speaker's terms, held to the same rules as a
/// route from the config or the control socket: one that fails here never leaves the
/// plugin's call.
fn route_spec(prefix: &types::Prefix, attributes: &types::Attributes) -> Result<RouteSpec, String> {
    let prefix = convert::prefix_in(prefix)?;
    let attrs = convert::attributes_in(attributes, true)?;
    words::check_next_hop_family(&prefix, attrs.next_hop.as_ref())?;
    Ok(RouteSpec { prefix, attrs })
}

/// A `routes.announce-flow` request in the speaker's terms. The next hop is sent only
/// when the plugin set one (redirect to IP).
fn flow_route_spec(
    rule: &types::FlowRule,
    attributes: &types::Attributes,
) -> Result<RouteSpec, String> {
    let rule = convert::flow_rule_in(rule)?;
    let mut attrs = convert::attributes_in(attributes, false)?;
    if let Some(NextHop::Addr(a)) = attrs.next_hop
        && a.is_ipv6() != (rule.family().afi == wasmbgp_bgp::packet::prefix::AFI_IPV6)
    {
        return Err(format!(
            "next-hop {a} is not of the family of the rule {rule}"
        ));
    }
    attrs.next_hop = attrs.next_hop.filter(|nh| matches!(nh, NextHop::Addr(_)));
    Ok(RouteSpec {
        prefix: Prefix::Flow(rule),
        attrs,
    })
}
