//! Source ports for source-NATed connections (`onearm`, `fullnat`): a new
//! connection to a backend with an SNAT address gets a port no live
//! connection to the same backend (address and port) from that address
//! uses, so their replies never mix up.
//!
//! A port is a seeded hash of the client end and the try number, within
//! `SNAT_PORT_MIN..=SNAT_PORT_MAX`; a port is free when the connection
//! table has no live reply entry (backend -> SNAT address and port) of
//! another connection (`conntrack::reply_tuple_free`). A client's
//! connection reopened from the same port gets the same SNAT port again
//! (its own old entry does not count as taken). The range holds no VXLAN
//! port of a tunnel (userspace refuses those), so a reply to an SNAT port
//! is never taken for VXLAN. Like Cilium's SNAT, a few
//! random tries and no port bitmap: with tens of thousands of ports per
//! backend and few of them in use, the first try is nearly always free.
//! Two CPUs taking the same port for the same backend in the same instant
//! is not excluded (the later reply entry wins); the odds are those of two
//! new connections hashing to one port within the time of one insert.

use lb_common::{
    Backend, FlowKey,
    hash::flow_hash_seeded,
    limits::{SNAT_PORT_MAX, SNAT_PORT_MIN, SNAT_PORT_TRIES},
};

use crate::{
    conntrack::reply_tuple_free,
    error::Error,
    flow_table::{Bucket, end_bucket},
    maps::CLOCK,
};

/// Port `n` of the tries for client end (`ip`, `port`, `proto`): network
/// byte order.
#[inline(always)]
fn candidate(seed: u32, key: &FlowKey, n: u32) -> u16 {
    let h = flow_hash_seeded(seed ^ n, key.src_ip, 0, key.src_port, 0, key.proto);
    let span = (SNAT_PORT_MAX - SNAT_PORT_MIN) as u32 + 1;
    // `span` is a constant > 0: no division by zero (the verifier checks).
    ((SNAT_PORT_MIN as u32 + h % span) as u16).to_be()
}

/// A free source port for a connection from `key` to `backend` from its SNAT
/// address, and the bucket its reply entry goes to.
#[inline(always)]
pub fn allocate(key: &FlowKey, backend: &Backend, now: u64) -> Result<(u16, Bucket), Error> {
    // Seeded from the table's random multiplier, in another hash than the
    // buckets', so a port says nothing about where the client's entries are.
    let seed = CLOCK
        .get(0)
        .map_or(0, |c| (c.bucket_hash.mult >> 32) as u32);
    for n in 0..SNAT_PORT_TRIES {
        let port = candidate(seed, key, n);
        let reply_key = FlowKey::new(backend.ip, backend.snat_ip, backend.port, port, key.proto);
        let b = end_bucket(backend.snat_ip, port, key.proto).ok_or(Error::ConntrackFull)?;
        if reply_tuple_free(b, &reply_key, key, now) {
            return Ok((port, b));
        }
    }
    Err(Error::SnatPortsBusy)
}
