//! Sizes of the datapath's maps. Userspace validates configuration against
//! these so it never writes past the end of a map.

/// Services (VIP, port, protocol) the balancer can hold at once. Service ids
/// index the per-service arrays and run from 0 to `MAX_SERVICES - 1`.
pub const MAX_SERVICES: u32 = 1024;

/// Selection slots per service. Userspace spreads a service's backends over
/// its slots in proportion to their weights; the datapath picks a slot.
pub const RING_SIZE: u32 = 256;

/// Backends of one service. Every backend needs at least one slot, and the
/// rest of the ring leaves room for weights.
pub const MAX_BACKENDS_PER_SERVICE: u32 = 128;

/// Largest weight of one backend.
pub const MAX_WEIGHT: u32 = 100;

/// Entries in the backend table. Backend ids index it; id 0 is never used,
/// so a zeroed slot means "no backend".
pub const MAX_BACKENDS: u32 = 65536;

/// Default size of the connection table (two entries per connection: one per
/// direction). Userspace may override it at load time.
pub const CONNTRACK_ENTRIES: u32 = 262_144;

/// Smallest size of the device map (`TX_PORTS`, indexed by ifindex).
pub const MAX_IFACES: u32 = 64;

/// Idle time after which a TCP connection that saw FIN or RST is forgotten.
pub const TCP_CLOSE_TIMEOUT_S: u32 = 10;

/// Default idle timeouts per protocol.
pub const DEFAULT_TCP_TIMEOUT_S: u32 = 3600;
pub const DEFAULT_UDP_TIMEOUT_S: u32 = 60;

/// Addresses `ferrolb_decap` decapsulates IPIP for (`DECAP_ADDRS`).
pub const MAX_DECAP_ADDRS: u32 = 256;

/// Tunnel routes (`TUNNELS`): pod networks the balancer can reach.
pub const MAX_TUNNELS: u32 = 4096;

/// Load balancer tunnel endpoints (`TUNNEL_ENDPOINTS`): distinct (tunnel
/// source, encapsulation, VXLAN port) of the tunnel routes.
pub const MAX_TUNNEL_ENDPOINTS: u32 = 64;

/// Nodes whose learned path MTU (`PATH_MTU`, an LRU hash) is kept at once:
/// as many as there can be tunnel routes (each has one node).
pub const MAX_PATH_MTUS: u32 = MAX_TUNNELS;

/// Ports the datapath allocates to source-NATed connections (`onearm`,
/// `fullnat`): below the kernel's default ephemeral range (32768-60999),
/// so the load balancer's own connections from the same address do not
/// collide with them, and above the usual VXLAN ports (8472, 4789; a
/// tunnel's VXLAN port may not be in this range, since replies to the
/// tunnel source on it would be taken for VXLAN). A (SNAT address, backend
/// address and port) carries this many connections at once.
pub const SNAT_PORT_MIN: u16 = 10000;
pub const SNAT_PORT_MAX: u16 = 32767;

/// Ports tried for a new source-NATed connection before it is dropped
/// (`drop_snat_ports_busy`): each try is a hash of the client end and the
/// try number, checked against the connection table.
pub const SNAT_PORT_TRIES: u32 = 4;
