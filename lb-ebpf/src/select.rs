//! Backend selection for a new connection: a slot of the service's ring
//! (userspace spreads weighted backends over the slots), chosen by round
//! robin or by flow hash.

use lb_common::{
    Backend, FlowKey, Service,
    hash::flow_hash,
    limits::RING_SIZE,
    service::{BACKEND_ACTIVE, select},
};

use crate::{
    error::Error,
    maps::{BACKENDS, RINGS, RR_STATE},
};

#[inline(always)]
fn position(svc: &Service, key: &FlowKey) -> u32 {
    match svc.select {
        select::HASH => flow_hash(
            key.src_ip,
            key.dst_ip,
            key.src_port,
            key.dst_port,
            key.proto,
        ),
        _ => match RR_STATE.get_ptr_mut(svc.id) {
            Some(p) => {
                // SAFETY: per-CPU slot: this CPU is the only writer.
                let p = unsafe { &mut *p };
                let v = *p;
                *p = v.wrapping_add(1);
                v
            }
            None => 0,
        },
    }
}

/// The backend (id and entry) a new connection of `svc` goes to.
#[inline(always)]
pub fn pick(svc: &Service, key: &FlowKey) -> Result<(u32, Backend), Error> {
    let slot = position(svc, key)
        .checked_rem(svc.slot_count)
        .ok_or(Error::NoBackend)?;
    if slot >= RING_SIZE {
        return Err(Error::NoBackend);
    }
    let id = *RINGS
        .get(svc.id.wrapping_mul(RING_SIZE).wrapping_add(slot))
        .ok_or(Error::NoBackend)?;
    let backend = *BACKENDS.get(id).ok_or(Error::NoBackend)?;
    if id == 0 || backend.flags & BACKEND_ACTIVE == 0 {
        return Err(Error::NoBackend);
    }
    Ok((id, backend))
}

/// Whether the backend a connection was recorded against still serves it.
#[inline(always)]
pub fn backend_live(backend_id: u32, generation: u32) -> bool {
    match BACKENDS.get(backend_id) {
        Some(b) => b.flags & BACKEND_ACTIVE != 0 && b.generation == generation,
        None => false,
    }
}
