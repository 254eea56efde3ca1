//! A packet with no live connection: find its service, pick a backend and
//! record the connection.

use lb_common::{Flow, VipKey};

use crate::{
    conntrack,
    error::Error,
    maps::SERVICES,
    nat::check_ttl,
    parse::{Packet, is_vip},
    select,
};

#[inline(always)]
pub fn schedule(pkt: &Packet, now: u64) -> Result<Flow, Error> {
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
    conntrack::create(&pkt.key, &svc, backend_id, &backend, pkt.tcp_flags, now)
}
