//! Names of the datapath's maps and programs, as userspace finds them in the
//! object file and under the pin directory.

/// `HashMap<VipKey, Service>`: the services.
pub const SERVICES: &str = "SERVICES";
/// `HashMap<u32 (VIP, network byte order), u32 (number of services)>`: every
/// address that is a VIP, whatever its port, so traffic to a known VIP on an
/// unknown port (and fragments to a VIP) is dropped, not passed.
pub const VIPS: &str = "VIPS";
/// `Array<u32>` of `MAX_SERVICES * RING_SIZE` backend ids: service `s` owns
/// slots `s * RING_SIZE .. s * RING_SIZE + Service::slot_count`.
pub const RINGS: &str = "RINGS";
/// `Array<Backend>` of `MAX_BACKENDS`, indexed by backend id.
pub const BACKENDS: &str = "BACKENDS";
/// `Array<FlowBucket>`: the connection table (`flow_table`), sized by the
/// daemon (`flow_table::buckets_for`).
pub const CONNTRACK: &str = "CONNTRACK";
/// `Array<u64>`, one per `CONNTRACK` bucket: the buckets' tag words
/// (`flow_table::tag`), sized with it.
pub const CONNTRACK_TAGS: &str = "CONNTRACK_TAGS";
/// `PerCpuArray<u32>` of `MAX_SERVICES`: round-robin position per service.
pub const RR_STATE: &str = "RR_STATE";
/// `PerCpuArray<Counters>` of `MAX_SERVICES`, indexed by service id: the
/// counters of the backends that left the service, folded in by userspace
/// (the datapath counts per backend only; a service's counters are these
/// plus its backends').
pub const RETIRED_STATS: &str = "RETIRED_STATS";
/// `PerCpuArray<Counters>` of `MAX_BACKENDS`, indexed by backend id.
pub const BACKEND_STATS: &str = "BACKEND_STATS";
/// `PerCpuArray<u64>` of `GlobalStat::COUNT`, indexed by `GlobalStat`.
pub const GLOBAL_STATS: &str = "GLOBAL_STATS";
/// `PerCpuArray<NextHop>` of `MAX_BACKENDS`, indexed by backend id: the next
/// hop toward each backend, so new connections skip the FIB lookup.
pub const BACKEND_NEXT_HOP: &str = "BACKEND_NEXT_HOP";
/// `Array<Clock>` of 1: the datapath's clock, CLOCK_MONOTONIC_COARSE in ns,
/// and the connection table's bucket hash (multiplier, shift, mask),
/// written by the daemon every `CLOCK_TICK_MS`. Reading it is an inlined
/// array load, far cheaper per packet than a time helper; the XDP link is
/// owned by the daemon, so the datapath never runs with a stopped clock.
pub const CLOCK: &str = "CLOCK";
/// How often the daemon writes `CLOCK`.
pub const CLOCK_TICK_MS: u64 = 100;
/// Map flags of `CONNTRACK` and `CLOCK`: `BPF_F_MMAPABLE`, not to map them
/// but because the kernel then starts an array's values on a page. They
/// otherwise start 312 bytes in (after `struct bpf_array`), 56 bytes into
/// a cache line, and a 64-byte part of a bucket (two slots' keys, one
/// entry) spans two lines where it could be one: a new connection's
/// entries missed about a third more lines, and the 24-byte clock read by
/// every packet spanned two.
pub const PAGE_ALIGNED: u32 = 1 << 10;
/// `DevMap` indexed by ifindex (an array: redirects cost no hash lookup),
/// sized by userspace at load to the largest attached ifindex + 1 (at least
/// `MAX_IFACES`); not pinned, rewritten at every start: interfaces the datapath may redirect to.
pub const TX_PORTS: &str = "TX_PORTS";

/// `HashMap<u32 (address, network byte order), u32 (unused, 0)>` of
/// `MAX_DECAP_ADDRS`: the node addresses whose IPIP packets `ferrolb_decap`
/// decapsulates.
pub const DECAP_ADDRS: &str = "DECAP_ADDRS";
/// `PerCpuArray<u64>` of `DecapStat::COUNT`, indexed by `DecapStat`.
pub const DECAP_STATS: &str = "DECAP_STATS";

/// `LpmTrie<u32 (IPv4 prefix, network byte order), Tunnel>` of
/// `MAX_TUNNELS`: tunnel routes, longest-prefix match from a backend address
/// to the node that hosts its pod network.
pub const TUNNELS: &str = "TUNNELS";

/// `PerCpuArray<BackendTunnel>` of `MAX_BACKENDS`, indexed by backend id:
/// the `TUNNELS` answer for each backend's address, cached by the datapath
/// (re-resolved once per next-hop epoch).
pub const BACKEND_TUNNEL: &str = "BACKEND_TUNNEL";

/// `HashMap<TunnelEndpoint, u32 (number of tunnel routes using it)>` of
/// `MAX_TUNNEL_ENDPOINTS`: where encapsulated replies to this load balancer
/// arrive (tunnel source address, IPIP or VXLAN UDP port and VNI); the
/// balancer decapsulates those that carry a reply of one of its connections.
pub const TUNNEL_ENDPOINTS: &str = "TUNNEL_ENDPOINTS";

/// `Array<EndpointSet>` of 1: the tunnel endpoints the return path
/// compares inline (`tunnel::EndpointSet`), and how many more only
/// `TUNNEL_ENDPOINTS` holds; written by userspace with them. While it holds
/// none the balancer skips the endpoint check (one inlined array load for
/// every UDP packet), so plain DNAT pays nothing for the tunnel feature.
pub const TUNNEL_ENDPOINT_SET: &str = "TUNNEL_ENDPOINT_SET";

/// Pins earlier builds made that this one no longer uses (removed at start).
pub const RETIRED_PINS: &[&str] = &[
    // `Array<u32>`, the number of endpoints: now `TUNNEL_ENDPOINT_SET`.
    "TUNNEL_ENDPOINT_COUNT",
    // `PerCpuArray<Counters>`, per service, counted by the datapath: now
    // derived from the backends' (`RETIRED_STATS`).
    "SERVICE_STATS",
];

/// `Array<IcmpLimit>` of 1: the rate limit of the ICMP
/// fragmentation-needed answers (`icmp_limit`), written by the daemon at
/// start (`--icmp-rate`, `--icmp-burst`); all zero: the defaults. Not
/// pinned: each loaded object gets its own.
pub const ICMP_LIMIT: &str = "ICMP_LIMIT";
/// `PerCpuArray<IcmpBucket>` of 1: each CPU's token bucket for those
/// answers, kept by the datapath alone. Not pinned (a restart refills it).
pub const ICMP_BUCKET: &str = "ICMP_BUCKET";

/// `HashMap<u32 (node address, network byte order), u32 (number of tunnel
/// routes to it)>` of `MAX_TUNNELS`: the nodes encapsulating tunnel routes
/// (with a resolved tunnel source) send to, kept in step with `TUNNELS` by
/// userspace; the datapath learns path MTUs only toward them.
pub const TUNNEL_NODES: &str = "TUNNEL_NODES";

/// `LruHashMap<u32 (node address, network byte order), PathMtu>` of
/// `MAX_PATH_MTUS`: path MTUs toward nodes learned from ICMP
/// fragmentation-needed about our encapsulated packets (`path_mtu`),
/// written by the datapath. Not pinned: relearned after a restart.
pub const PATH_MTU: &str = "PATH_MTU";

/// The balancer's XDP program.
pub const PROG_BALANCER: &str = "ferrolb";
/// The balancer's stages, tail-called from `PROG_BALANCER` through
/// `PROGRAMS`: separate programs so each stays within the verifier's
/// complexity and stack limits.
pub const PROG_NEW_FLOW: &str = "ferrolb_new_flow";
pub const PROG_ICMP: &str = "ferrolb_icmp";
/// Program array (not pinned: each loaded object fills its own) of the
/// balancer's stages, indexed by `STAGE_*`.
pub const PROGRAMS: &str = "PROGRAMS";
/// `PROGRAMS` index of `PROG_NEW_FLOW`: a packet with no live connection.
pub const STAGE_NEW_FLOW: u32 = 0;
/// `PROGRAMS` index of `PROG_ICMP`: an ICMP packet.
pub const STAGE_ICMP: u32 = 1;
/// Every stage: (`PROGRAMS` index, program name).
pub const STAGES: [(u32, &str); 2] = [(STAGE_NEW_FLOW, PROG_NEW_FLOW), (STAGE_ICMP, PROG_ICMP)];
/// A program that drops everything: the baseline of the benchmarks.
pub const PROG_DROP: &str = "ferrolb_drop";
/// The node-side IPIP decapsulation XDP program (`ferrolbd --node-decap`).
pub const PROG_DECAP: &str = "ferrolb_decap";
