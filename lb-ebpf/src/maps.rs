//! The datapath's maps. Names, sizes and value types are the contract with
//! userspace (`lb_common::maps`, `lb_common::limits`, docs/datapath.md).
//! All but `TX_PORTS`, `PROGRAMS` and `PATH_MTU` are pinned by name so the
//! connection table survives a daemon restart.

use crate::new_entries::NewEntries;
use aya_ebpf::{
    macros::map,
    maps::{Array, DevMap, HashMap, LpmTrie, LruHashMap, PerCpuArray, ProgramArray},
};
use lb_common::{
    Backend, BackendTunnel, Clock, Counters, DecapStat, EndpointSet, FlowBucket, GlobalCounters,
    IcmpBucket, IcmpLimit, NextHop, PathMtu, Service, Tunnel, TunnelEndpoint, VipKey,
    flow_table::buckets_for,
    limits::{
        CONNTRACK_ENTRIES, MAX_BACKENDS, MAX_DECAP_ADDRS, MAX_IFACES, MAX_PATH_MTUS, MAX_SERVICES,
        MAX_TUNNEL_ENDPOINTS, MAX_TUNNELS, RING_SIZE,
    },
    maps::PAGE_ALIGNED,
};

#[map]
pub static SERVICES: HashMap<VipKey, Service> = HashMap::pinned(MAX_SERVICES, 0);

#[map]
pub static VIPS: HashMap<u32, u32> = HashMap::pinned(MAX_SERVICES, 0);

#[map]
pub static RINGS: Array<u32> = Array::pinned(MAX_SERVICES * RING_SIZE, 0);

#[map]
pub static BACKENDS: Array<Backend> = Array::pinned(MAX_BACKENDS, 0);

/// The connection table: buckets of `FLOW_WAYS` entries (`flow_table.rs`).
/// The daemon sizes it at load and tells the datapath the bucket hash
/// (`Clock::bucket_hash`). Page-aligned (`lb_common::maps::PAGE_ALIGNED`).
#[map]
pub static CONNTRACK: Array<FlowBucket> =
    Array::pinned(buckets_for(CONNTRACK_ENTRIES), PAGE_ALIGNED);

/// The connection table's tag words, one per bucket (`flow_table.rs`),
/// sized with it.
#[map]
pub static CONNTRACK_TAGS: Array<u64> = Array::pinned(buckets_for(CONNTRACK_ENTRIES), 0);

/// A new connection's entries until the new-flow stage writes them into
/// `CONNTRACK` (`new_entries.rs`). Not pinned: empty between programs.
#[map]
pub static NEW_ENTRIES: PerCpuArray<NewEntries> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static RR_STATE: PerCpuArray<u32> = PerCpuArray::pinned(MAX_SERVICES, 0);

/// Written by userspace only (`lb_common::maps::RETIRED_STATS`); here so
/// that it is created and pinned with the others.
#[map]
pub static RETIRED_STATS: PerCpuArray<Counters> = PerCpuArray::pinned(MAX_SERVICES, 0);

#[map]
pub static BACKEND_STATS: PerCpuArray<Counters> = PerCpuArray::pinned(MAX_BACKENDS, 0);

#[map]
pub static GLOBAL_STATS: PerCpuArray<GlobalCounters> = PerCpuArray::pinned(1, 0);

#[map]
pub static BACKEND_NEXT_HOP: PerCpuArray<NextHop> = PerCpuArray::pinned(MAX_BACKENDS, 0);

#[map]
pub static CLOCK: Array<Clock> = Array::pinned(1, PAGE_ALIGNED);

/// Indexed by ifindex (an array: no hash lookup per redirect); userspace
/// sizes it to the largest attached ifindex + 1. Not pinned: rewritten at
/// every start.
#[map]
pub static TX_PORTS: DevMap = DevMap::with_max_entries(MAX_IFACES, 0);

/// Node addresses whose IPIP packets `ferrolb_decap` decapsulates.
#[map]
pub static DECAP_ADDRS: HashMap<u32, u32> = HashMap::pinned(MAX_DECAP_ADDRS, 0);

#[map]
pub static DECAP_STATS: PerCpuArray<u64> = PerCpuArray::pinned(DecapStat::COUNT, 0);

/// Tunnel routes: pod network prefix (address in network byte order) → the
/// node behind it. `LpmTrie::pinned` adds `BPF_F_NO_PREALLOC`, which the
/// kernel requires of LPM tries. Userspace programs it; the balancer looks
/// a backend up in it when its `BACKEND_TUNNEL` cache is stale.
#[map]
pub static TUNNELS: LpmTrie<u32, Tunnel> = LpmTrie::pinned(MAX_TUNNELS, 0);

/// Per backend id: the `TUNNELS` answer for the backend's address (cache).
#[map]
pub static BACKEND_TUNNEL: PerCpuArray<BackendTunnel> = PerCpuArray::pinned(MAX_BACKENDS, 0);

/// Where encapsulated replies to this load balancer arrive.
#[map]
pub static TUNNEL_ENDPOINTS: HashMap<TunnelEndpoint, u32> =
    HashMap::pinned(MAX_TUNNEL_ENDPOINTS, 0);

/// The tunnel endpoints compared inline, and how many more only
/// `TUNNEL_ENDPOINTS` holds (`lb_common::tunnel::EndpointSet`).
#[map]
pub static TUNNEL_ENDPOINT_SET: Array<EndpointSet> = Array::pinned(1, 0);

/// The rate limit of ICMP fragmentation-needed answers, written by the
/// daemon at start (all zero: the defaults). Not pinned: each loaded object
/// has its own.
#[map]
pub static ICMP_LIMIT: Array<IcmpLimit> = Array::with_max_entries(1, 0);

/// Each CPU's token bucket for those answers (`frag_needed.rs`). Not
/// pinned: a new object starts full.
#[map]
pub static ICMP_BUCKET: PerCpuArray<IcmpBucket> = PerCpuArray::with_max_entries(1, 0);

/// Nodes the encapsulating tunnel routes send to (node address → number of
/// routes): path MTUs are learned only toward them (`path_mtu.rs`).
#[map]
pub static TUNNEL_NODES: HashMap<u32, u32> = HashMap::pinned(MAX_TUNNELS, 0);

/// Path MTUs toward nodes learned from ICMP fragmentation-needed about our
/// encapsulated packets (`path_mtu.rs`); an LRU hash, so a flood of errors
/// about many nodes only evicts old entries. Not pinned: relearned after a
/// restart.
#[map]
pub static PATH_MTU: LruHashMap<u32, PathMtu> = LruHashMap::with_max_entries(MAX_PATH_MTUS, 0);

/// The balancer's stages (`lb_common::maps::STAGES`), filled by the loader.
/// Not pinned: a program array keeps its programs loaded, and each loaded
/// object has its own stages.
#[map]
pub static PROGRAMS: ProgramArray = ProgramArray::with_max_entries(2, 0);
