//! The source address a service's connections to a backend get
//! (`Backend::snat_ip`): none for `dnat` and `dsr`; for `fullnat` the service's
//! `snat_ip`, else the load balancer's overlay address (`--overlay-ip`);
//! for `onearm` the load balancer's own address toward the backend: the
//! tunnel source of the backend's tunnel route when it is behind one, else
//! the preferred source of the kernel's route to it.

use std::net::Ipv4Addr;

use lb_common::tunnel::encap;

use super::{Datapath, DatapathError, tunnel_source::route_source};
use crate::config::{Mode, ServiceSpec};

impl Datapath {
    /// `Backend::snat_ip` (network byte order, 0: none) for `spec`'s backend
    /// at `ip`. Errors name the service and what could not be found.
    pub(crate) fn snat_source(
        &self,
        spec: &ServiceSpec,
        ip: Ipv4Addr,
    ) -> Result<u32, DatapathError> {
        let fail = |reason: String| DatapathError::SnatSource {
            service: spec.key().to_string(),
            reason,
        };
        let addr = match spec.mode {
            Mode::Dnat | Mode::Dsr => return Ok(0),
            Mode::Fullnat => spec.snat_ip.or(self.overlay_ip).ok_or_else(|| {
                fail(
                    "mode fullnat needs a source address: give the service snat_ip, \
                     or ferrolbd --overlay-ip"
                        .to_string(),
                )
            })?,
            Mode::Onearm => match self.tunnel_lookup(ip)? {
                Some(t) if t.encap != encap::NONE && t.src_ip != 0 => {
                    Ipv4Addr::from(t.src_ip.to_ne_bytes())
                }
                _ => route_source(ip).map_err(|e| {
                    fail(format!(
                        "mode onearm: no route to backend {ip} to take this load balancer's \
                         address from ({e})"
                    ))
                })?,
            },
        };
        Ok(u32::from_ne_bytes(addr.octets()))
    }

    /// Brings the source address of `spec`'s installed backends up to date
    /// (after a tunnel route changed: an onearm backend's source is its
    /// route's tunnel source). Writes only the backends whose address
    /// changed; nothing else of the service is touched. A service not
    /// installed (its source could not be chosen at start) is applied.
    pub fn refresh_snat(&mut self, spec: &ServiceSpec) -> Result<(), DatapathError> {
        let Some(installed) = self.installed.get(&spec.key()).cloned() else {
            return self.apply(spec);
        };
        for b in &spec.backends {
            let Some(h) = installed.backends.get(&(b.ip, b.port)) else {
                continue;
            };
            let snat_ip = self.snat_source(spec, b.ip)?;
            let mut value = self.maps.backend(h.id)?;
            if value.snat_ip != snat_ip {
                value.snat_ip = snat_ip;
                self.maps.write_backend(h.id, value)?;
            }
        }
        Ok(())
    }
}
