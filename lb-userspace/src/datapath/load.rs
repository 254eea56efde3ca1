//! Loading the eBPF object with its maps pinned, and attaching it.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use aya::EbpfLoader;
use lb_common::{
    flow_table::{self, BucketHash},
    limits, maps as names,
};

use super::{
    Datapath, DatapathError, XdpModeArg,
    attach::{self, Attachments},
    bpffs,
    clock::Clock,
    conntrack::Conntrack,
    decap::Decap,
    icmp_limit,
    ids::IdAllocator,
    maps::{Maps, take},
    stages, stale_pins,
    tunnel_source::TunnelEndConfig,
    tunnels::Tunnels,
};

/// Default pin directory of the maps.
pub const DEFAULT_BPFFS_DIR: &str = "/sys/fs/bpf/ferrolb";

/// How to load the datapath.
#[derive(Clone, Debug)]
pub struct DatapathOptions {
    /// Directory (on a bpf filesystem) the maps are pinned in.
    pub bpffs_dir: PathBuf,
    /// Interfaces to attach the program to; none is allowed (tests).
    pub ifaces: Vec<String>,
    /// Interfaces to attach the IPIP decapsulation program to (a node's
    /// side of DSR / IPIP delivery); none is allowed.
    pub decap_ifaces: Vec<String>,
    /// Attach mode of both programs.
    pub xdp_mode: XdpModeArg,
    /// Entries of the connection table; `None`: the object's default.
    pub conntrack_size: Option<u32>,
    /// How the load balancer's end of the tunnels is chosen.
    pub tunnel_end: TunnelEndConfig,
    /// The load balancer's own address on the pod network (`--overlay-ip`):
    /// kept for full NAT (its SNAT source), not used by DNAT.
    pub overlay_ip: Option<std::net::Ipv4Addr>,
    /// Rate limit of the ICMP fragmentation-needed answers
    /// (`--icmp-rate`, `--icmp-burst`; each 1..=its maximum).
    pub icmp_limit: lb_common::IcmpLimit,
}

impl Default for DatapathOptions {
    fn default() -> Self {
        Self {
            bpffs_dir: DEFAULT_BPFFS_DIR.into(),
            ifaces: Vec::new(),
            decap_ifaces: Vec::new(),
            xdp_mode: XdpModeArg::Auto,
            conntrack_size: None,
            tunnel_end: TunnelEndConfig::default(),
            overlay_ip: None,
            icmp_limit: lb_common::IcmpLimit {
                rate_per_s: lb_common::icmp_limit::DEFAULT_RATE_PER_S,
                burst: lb_common::icmp_limit::DEFAULT_BURST,
            },
        }
    }
}

impl Datapath {
    /// Loads `lb_userspace::EBPF_OBJECT`, reusing maps already pinned in
    /// `opts.bpffs_dir` (connections survive a restart), attaches the program
    /// to every interface and lists them in `TX_PORTS`. The services already
    /// in the pinned maps are not adopted yet: see `Datapath::restore`.
    /// The decapsulation program goes on every `decap_ifaces` interface.
    pub fn load(opts: &DatapathOptions) -> Result<Self, DatapathError> {
        if let Some(both) = opts.decap_ifaces.iter().find(|i| opts.ifaces.contains(i)) {
            return Err(DatapathError::BothPrograms(both.clone()));
        }
        icmp_limit::check(opts.icmp_limit)?;
        bpffs::prepare(&opts.bpffs_dir)?;
        let buckets =
            flow_table::buckets_for(opts.conntrack_size.unwrap_or(limits::CONNTRACK_ENTRIES));
        let table = stale_pins::prepare(&opts.bpffs_dir, buckets);
        // TX_PORTS is an array indexed by ifindex: size it for the largest.
        let mut tx_ports_size = limits::MAX_IFACES;
        for iface in &opts.ifaces {
            tx_ports_size = tx_ports_size.max(attach::ifindex(iface)?.saturating_add(1));
        }
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(&opts.bpffs_dir);
        loader.map_max_entries(names::TX_PORTS, tx_ports_size);
        loader.map_max_entries(names::CONNTRACK, buckets);
        loader.map_max_entries(names::CONNTRACK_TAGS, buckets);
        let mut ebpf = loader
            .load(crate::EBPF_OBJECT)
            .map_err(|e| DatapathError::Load(Box::new(e)))?;

        let mut maps = Maps::take(&mut ebpf)?;
        let tunnels = Tunnels::new(
            take(&mut ebpf, names::TUNNELS)?,
            take(&mut ebpf, names::TUNNEL_ENDPOINTS)?,
            take(&mut ebpf, names::TUNNEL_NODES)?,
            take(&mut ebpf, names::TUNNEL_ENDPOINT_SET)?,
            opts.tunnel_end,
        )?;
        let bucket_hash = BucketHash::new(table.seed, buckets);
        let conntrack = Arc::new(Conntrack::new(
            take(&mut ebpf, names::CONNTRACK)?,
            take(&mut ebpf, names::CONNTRACK_TAGS)?,
            bucket_hash,
        ));
        // The clock (with the table's bucket hash) must run before the
        // program sees its first packet.
        let clock = Arc::new(Clock::new(take(&mut ebpf, names::CLOCK)?, bucket_hash));
        clock.tick()?;
        icmp_limit::write(&mut ebpf, opts.icmp_limit)?;

        stages::load_balancer(&mut ebpf)?;
        let prog = attach::balancer(&mut ebpf)?;
        let attached = Attachments::attach_all(prog, &opts.ifaces, opts.xdp_mode)?;
        maps.set_tx_ports(attached.ifaces.iter().map(|a| a.ifindex))?;
        let decap = Decap::load(&mut ebpf, &opts.decap_ifaces, opts.xdp_mode)?;

        Ok(Datapath {
            ebpf,
            attached,
            decap,
            maps,
            tunnels,
            conntrack,
            clock,
            installed: BTreeMap::new(),
            service_ids: IdAllocator::new(0, limits::MAX_SERVICES),
            backend_ids: IdAllocator::new(1, limits::MAX_BACKENDS),
            overlay_ip: opts.overlay_ip,
        })
    }
}
