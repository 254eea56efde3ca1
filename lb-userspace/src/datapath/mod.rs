//! The XDP datapath seen from userspace: loading and attaching the program,
//! and programming its maps as `docs/datapath.md` ("What userspace must do")
//! describes.

mod attach;
mod bpffs;
mod clock;
mod conntrack;
mod decap;
mod error;
mod icmp_limit;
mod ids;
mod ifaddrs;
mod journal;
mod load;
mod maps;
mod prog_load;
mod program;
mod restore;
mod ring;
mod snat_source;
mod stages;
mod stale_pins;
mod stats;
mod tunnel_source;
mod tunnels;

use std::{collections::BTreeMap, sync::Arc};

pub use attach::{AttachedIface, XdpModeArg};
pub use clock::{Clock, monotonic_coarse_ns};
pub use conntrack::{Conntrack, ScanReport};
pub use error::DatapathError;
pub use load::DatapathOptions;
pub use prog_load::load_program;
pub use program::{BackendHandle, InstalledService};
pub use ring::build_ring;
pub use stages::load_balancer;
pub use stats::{BackendCounters, ServiceCounters};
pub use tunnel_source::TunnelEndConfig;

use crate::config::ServiceKey;

/// The loaded datapath: its program attached to the configured interfaces,
/// and the userspace view of the services it holds.
///
/// Dropping it detaches the program; the maps stay pinned under the pin
/// directory, so established connections survive a daemon restart.
pub struct Datapath {
    ebpf: aya::Ebpf,
    attached: attach::Attachments,
    /// The decapsulation program and its maps.
    decap: decap::Decap,
    maps: maps::Maps,
    /// Tunnel routes (`TUNNELS`).
    tunnels: tunnels::Tunnels,
    conntrack: Arc<Conntrack>,
    clock: Arc<Clock>,
    installed: BTreeMap<ServiceKey, InstalledService>,
    service_ids: ids::IdAllocator,
    backend_ids: ids::IdAllocator,
    /// `--overlay-ip`: full NAT's default source (`snat_source.rs`).
    overlay_ip: Option<std::net::Ipv4Addr>,
}

impl Datapath {
    /// The connection table, shared with the scan task.
    pub fn conntrack(&self) -> Arc<Conntrack> {
        Arc::clone(&self.conntrack)
    }

    /// The datapath's clock, ticked by the daemon.
    pub fn clock(&self) -> Arc<Clock> {
        Arc::clone(&self.clock)
    }

    /// The rate limit of ICMP fragmentation-needed answers in force
    /// (`ICMP_LIMIT`).
    pub fn icmp_limit(&self) -> Result<lb_common::IcmpLimit, DatapathError> {
        icmp_limit::read(&self.ebpf)
    }

    /// Interfaces the program is attached to.
    pub fn attached(&self) -> &[AttachedIface] {
        &self.attached.ifaces
    }

    /// The addresses IPIP is decapsulated for (`DECAP_ADDRS`).
    pub fn decap_addrs(
        &self,
    ) -> Result<std::collections::BTreeSet<std::net::Ipv4Addr>, DatapathError> {
        self.decap.addrs()
    }

    /// Every `DECAP_STATS` counter.
    pub fn decap_counters(&self) -> Result<Vec<(lb_common::DecapStat, u64)>, DatapathError> {
        self.decap.counters()
    }

    /// What the datapath holds for `key`: its service id and backend ids.
    pub fn installed(&self, key: &ServiceKey) -> Option<&InstalledService> {
        self.installed.get(key)
    }

    /// Every installed service's key.
    pub fn installed_keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.installed.keys()
    }

    /// The raw `SERVICES` map entry for `key` (tests and debugging).
    pub fn service_entry(
        &self,
        key: &ServiceKey,
    ) -> Result<Option<lb_common::Service>, DatapathError> {
        self.maps.service(&key.vip_key())
    }

    /// Every `SERVICES` map entry.
    pub fn service_entries(
        &self,
    ) -> Result<Vec<(lb_common::VipKey, lb_common::Service)>, DatapathError> {
        self.maps.service_entries()
    }

    /// The raw `BACKENDS` entry `id`.
    pub fn backend_entry(&self, id: u32) -> Result<lb_common::Backend, DatapathError> {
        self.maps.backend(id)
    }

    /// The `VIPS` count for `vip` (None: not a VIP).
    pub fn vip_entry(&self, vip: std::net::Ipv4Addr) -> Result<Option<u32>, DatapathError> {
        self.maps.vip_count(u32::from_ne_bytes(vip.octets()))
    }

    /// The ring of service `id`: backend ids of slots `0..slot_count`.
    pub fn ring_entries(&self, id: u32, slot_count: u32) -> Result<Vec<u32>, DatapathError> {
        (0..slot_count)
            .map(|i| self.maps.ring_slot(id * lb_common::limits::RING_SIZE + i))
            .collect()
    }

    /// Detaches the programs from every interface (maps stay pinned).
    pub fn detach(&mut self) -> Result<(), DatapathError> {
        let decap = self.decap.detach(&mut self.ebpf);
        let prog = attach::balancer(&mut self.ebpf)?;
        self.attached.detach(prog, "detached").and(decap)
    }
}

#[cfg(test)]
impl Datapath {
    /// Shrinks the backend id space (before any allocation) so tests can run
    /// out of ids midway through a change.
    pub(crate) fn limit_backend_ids(&mut self, end: u32) {
        assert!(self.installed.is_empty());
        self.backend_ids = ids::IdAllocator::new(1, end);
    }
}

#[cfg(test)]
mod snat_tests;
#[cfg(test)]
mod stats_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;
