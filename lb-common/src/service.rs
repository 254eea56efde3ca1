//! Services, their VIP keys and backends.

/// Key of the `SERVICES` map: (VIP, port, protocol).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VipKey {
    /// VIP, network byte order.
    pub ip: u32,
    /// Port, network byte order.
    pub port: u16,
    /// IP protocol number (`proto::TCP`, `proto::UDP`).
    pub proto: u8,
    pub _pad: u8,
}
const _: () = assert!(core::mem::size_of::<VipKey>() == 8);

/// How a service rewrites packets (`Service::mode`).
pub mod mode {
    /// Destination rewritten to the backend, client source kept.
    pub const DNAT: u8 = 0;
    /// DNAT, and the source rewritten to the load balancer's address on the
    /// side of the backend (`Backend::snat_ip`), with an allocated port.
    pub const ONEARM: u8 = 1;
    /// DNAT, and the source rewritten to the service's SNAT address
    /// (`Backend::snat_ip`), with an allocated port.
    pub const FULLNAT: u8 = 2;
    /// Direct server return: the packet is not rewritten; it goes
    /// IPIP-encapsulated to the backend (outer destination the backend's
    /// address, inner destination still the VIP), which answers the client
    /// directly. Only a forward connection entry is kept.
    pub const DSR: u8 = 3;
}

/// How a service picks a backend for a new flow (`Service::select`).
pub mod select {
    /// Round robin over the ring (per CPU).
    pub const ROUND_ROBIN: u8 = 0;
    /// Hash of the 5-tuple: a client's flow always lands on the same slot.
    pub const HASH: u8 = 1;
}

/// Value of the `SERVICES` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Service {
    /// Index into `RINGS` (times `RING_SIZE`), `RR_STATE` and `RETIRED_STATS`.
    pub id: u32,
    /// Valid slots of this service's ring; 0 means no backend (drop).
    pub slot_count: u32,
    /// Idle timeout of this service's connections, seconds.
    pub timeout_s: u32,
    /// `mode::*`.
    pub mode: u8,
    /// `select::*`.
    pub select: u8,
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<Service>() == 16);

/// `Backend::flags` bit: the backend takes traffic. A flow whose backend lost
/// this flag (or whose generation changed) ends.
pub const BACKEND_ACTIVE: u16 = 1;

/// Value of the `BACKENDS` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backend {
    /// Backend address, network byte order.
    pub ip: u32,
    /// Backend port, network byte order.
    pub port: u16,
    /// `BACKEND_ACTIVE`.
    pub flags: u16,
    /// Incremented by userspace each time this id is given to a backend, so a
    /// connection recorded against an earlier holder of the id is recognised.
    pub generation: u32,
    /// Service that owns this backend.
    pub service_id: u32,
    /// Source address connections to this backend get (network byte
    /// order), with a port the datapath allocates (`snat.rs`); 0: the
    /// client's address is kept (`mode::DNAT`). Userspace sets it from the
    /// service's mode: the SNAT address (`fullnat`) or its own address
    /// toward this backend (`onearm`).
    pub snat_ip: u32,
}
const _: () = assert!(core::mem::size_of::<Backend>() == 20);
