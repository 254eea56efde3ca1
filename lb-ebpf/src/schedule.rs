//! A packet with no live connection: find its service, pick a backend and
//! record the connection.

use lb_common::{Flow, NextHop, VipKey};

use crate::{
    conntrack,
    error::Error,
    maps::{BACKEND_NEXT_HOP, SERVICES},
    nat::check_ttl,
    parse::{Packet, is_vip},
    select,
};

/// The new connection's forward entry (staged: `new_entries`), and the
/// per-CPU next-hop cache of its backend (for `forward`).
#[inline(always)]
pub fn schedule(pkt: &Packet, now: u64) -> Result<(*const Flow, Option<*mut NextHop>), Error> {
    let vip = VipKey {
        ip: pkt.key.dst_ip,
        port: pkt.key.dst_port,
        proto: pkt.key.proto,
        _pad: 0,
    };
    // SAFETY: the value is copied out at once.
    let Some(svc) = (unsafe { SERVICES.get(vip) }).copied() else {
        return Err(if is_vip(pkt.key.dst_ip) {
            Error::UnknownPort
        } else {
            Error::NotOurs
        });
    };
    check_ttl(pkt)?;
    let (backend_id, backend) = select::pick(&svc, &pkt.key)?;
    let cache = BACKEND_NEXT_HOP.get_ptr_mut(backend_id);
    let next_hop = match cache {
        // SAFETY: per-CPU slot, copied out.
        Some(p) => unsafe { *p },
        None => NextHop::default(),
    };
    let flow = conntrack::create(
        &pkt.key,
        &svc,
        backend_id,
        &backend,
        next_hop,
        pkt.tcp_flags,
        now,
    )?;
    Ok((flow, cache))
}
