//! The connection table: lookup with expiry, refresh, TCP close tracking and
//! creation of a connection's two entries (see `lb_common::conntrack`; the
//! table itself: `flow_table.rs`).

use lb_common::{
    Backend, Flow, FlowKey, GlobalStat, NextHop, Service,
    conntrack::{CT_CLOSING, CT_FIN, CT_RST, DIR_FORWARD, DIR_REPLY, LAST_SEEN_GRANULARITY_NS},
    limits::TCP_CLOSE_TIMEOUT_S,
    service::mode,
};

use crate::{
    error::Error,
    flow_table::{self, Bucket, claim, find, find_in, release},
    headers::{TCP_FIN, TCP_RST, TCP_SYN},
    maps::CLOCK,
    new_entries::{self, FORWARD, REPLY},
    select, snat, stats,
};

/// The daemon's clock (`lb_common::maps::CLOCK`): CLOCK_MONOTONIC_COARSE
/// nanoseconds, at most `CLOCK_TICK_MS` old.
#[inline(always)]
pub fn now_ns() -> u64 {
    CLOCK.get(0).map_or(0, |c| c.now_ns)
}

/// A connection-table entry (in its bucket, `lb_common::flow_table`).
#[derive(Clone, Copy)]
pub struct Entry {
    pub flow: *mut Flow,
}

impl Entry {
    /// The other entry of this entry's connection, if it is there: in this
    /// bucket, or (source-NATed connections) in the bucket of the other
    /// client end. A DSR connection has none (its `peer_key` could name
    /// another connection's reply entry).
    #[inline(always)]
    fn peer(self, proto: u8) -> Option<*mut Flow> {
        // SAFETY: map value pointer; see `flow_table` for concurrent writers.
        let f = unsafe { &*self.flow };
        if f.mode == mode::DSR {
            return None;
        }
        find_in(flow_table::peer_bucket_of(f, proto)?, &f.peer_key(proto))
    }
}

/// The live entry for `key`, if any. An entry idle past its timeout is live
/// only while the other direction is not (one-way busy flows stay up).
#[inline(always)]
pub fn lookup(key: &FlowKey, now: u64) -> Option<Entry> {
    let e = Entry { flow: find(key)? };
    live(e, key.proto, now).then_some(e)
}

/// `lookup` for a packet that can only be a reply (decapsulated from a
/// tunnel): its reply bucket is probed first.
#[inline(always)]
pub fn lookup_reply(key: &FlowKey, now: u64) -> Option<Entry> {
    let e = Entry {
        flow: flow_table::find_reply(key)?,
    };
    live(e, key.proto, now).then_some(e)
}

/// Whether entry `e` is live at `now` (see `lookup`).
#[inline(always)]
fn live(e: Entry, proto: u8, now: u64) -> bool {
    // SAFETY: map value pointer; see `flow_table` for concurrent writers.
    let f = unsafe { &*e.flow };
    if !f.expired_at(f.last_seen_ns, now) {
        return true;
    }
    let Some(peer) = e.peer(proto) else {
        return false;
    };
    !f.expired_at(unsafe { (*peer).last_seen_ns }, now)
}

/// Whether the live entry `e` carries a packet with `tcp_flags` on: a
/// reply entry always (replies of a removed backend are still
/// reverse-NATed); a forward entry while its backend is the same active one
/// (else the connection ends, counted, and the packet is scheduled anew) and
/// the packet does not reopen a closing connection.
#[inline(always)]
pub fn carries_on(e: Entry, tcp_flags: u8) -> bool {
    // SAFETY: map value pointer, read only here.
    let f = unsafe { &*e.flow };
    if f.direction == DIR_REPLY {
        return true;
    }
    if !select::backend_live(f.backend_id, f.backend_generation) {
        stats::inc(GlobalStat::BackendGone);
        return false;
    }
    !is_reopen(f, tcp_flags)
}

/// Records activity on `e`, and FIN/RST: a closing connection gets the
/// short close timeout in both directions.
#[inline(always)]
pub fn touch(e: Entry, proto: u8, tcp_flags: u8, now: u64) {
    // SAFETY: see `lookup`.
    let f = unsafe { &mut *e.flow };
    if now.wrapping_sub(f.last_seen_ns) > LAST_SEEN_GRANULARITY_NS {
        f.last_seen_ns = now;
    }
    if tcp_flags & (TCP_FIN | TCP_RST) != 0 && f.tcp_flags & CT_CLOSING == 0 {
        close(f, tcp_flags, now);
        if let Some(peer) = e.peer(proto) {
            close(unsafe { &mut *peer }, 0, now);
        }
    }
}

#[inline(always)]
fn close(f: &mut Flow, tcp_flags: u8, now: u64) {
    f.tcp_flags |= CT_CLOSING
        | if tcp_flags & TCP_RST != 0 { CT_RST } else { 0 }
        | if tcp_flags & TCP_FIN != 0 { CT_FIN } else { 0 };
    f.timeout_s = TCP_CLOSE_TIMEOUT_S;
    f.last_seen_ns = now;
}

/// Whether a forward entry must give way to a new connection: a SYN on a
/// connection that was closing reuses the 5-tuple (TIME_WAIT reuse).
#[inline(always)]
fn is_reopen(flow: &Flow, tcp_flags: u8) -> bool {
    flow.tcp_flags & CT_CLOSING != 0 && tcp_flags & (TCP_SYN | TCP_RST | TCP_FIN) == TCP_SYN
}

/// Records a new connection from `key` (client -> VIP) to `backend`, and
/// returns its forward entry. The entries are staged (`new_entries`): the
/// new-flow stage writes them into the table last (`new_entries::commit`);
/// their slots are claimed here. `next_hop` (toward the backend, possibly
/// not resolved) seeds the forward entry's next-hop cache.
/// A backend with an SNAT address (`onearm`, `fullnat`) gets the
/// connection from that address and a port `snat::allocate` finds free.
/// A DSR service's connection gets the forward entry only: its replies do
/// not come through the load balancer.
#[inline(always)]
pub fn create(
    key: &FlowKey,
    svc: &Service,
    backend_id: u32,
    backend: &Backend,
    next_hop: NextHop,
    tcp_flags: u8,
    now: u64,
) -> Result<*const Flow, Error> {
    let scratch = new_entries::scratch().ok_or(Error::ConntrackFull)?;
    let closing = tcp_flags & (TCP_FIN | TCP_RST) != 0;
    let (flags, timeout_s) = if closing {
        (CT_CLOSING, TCP_CLOSE_TIMEOUT_S)
    } else {
        (0, svc.timeout_s)
    };
    // Built in the scratch, not on the stack (which is full).
    // SAFETY: map value pointers (`new_entries::entry`), this CPU's.
    let forward = unsafe { &mut (*new_entries::entry(scratch, FORWARD)).flow };
    *forward = Flow {
        nat_src_ip: key.src_ip,
        nat_dst_ip: backend.ip,
        nat_src_port: key.src_port,
        nat_dst_port: backend.port,
        _reserved: 0,
        backend_id,
        backend_generation: backend.generation,
        timeout_s,
        direction: DIR_FORWARD,
        tcp_flags: flags,
        mode: svc.mode,
        _pad: 0,
        last_seen_ns: now,
        next_hop,
    };
    // The forward entry goes to the bucket of the client end (`flow_table`).
    let bucket = flow_table::source_bucket(key).ok_or(Error::ConntrackFull)?;
    if svc.mode == mode::DSR {
        let c = claim(bucket, key, now)?;
        new_entries::stage(scratch, FORWARD, &c, key);
        new_entries::ready(scratch, FORWARD);
        return Ok(forward);
    }
    // The reply entry goes to the bucket of the end the backend answers:
    // the same one, or the SNAT address and port.
    let reply_bucket = if backend.snat_ip == 0 {
        if !reply_tuple_free(bucket, &forward.peer_key(key.proto), key, now) {
            return Err(Error::TupleClash);
        }
        bucket
    } else {
        let (port, b) = snat::allocate(key, backend, now)?;
        forward.nat_src_ip = backend.snat_ip;
        forward.nat_src_port = port;
        b
    };
    let reply = unsafe { &mut (*new_entries::entry(scratch, REPLY)).flow };
    *reply = Flow {
        nat_src_ip: key.dst_ip,
        nat_dst_ip: key.src_ip,
        nat_src_port: key.dst_port,
        nat_dst_port: key.src_port,
        direction: DIR_REPLY,
        ..*forward
    };
    // The reply goes toward the client: not resolved yet (clearing only the
    // validity field is enough).
    reply.next_hop.ifindex = 0;
    // Both slots claimed before either is written: a compare-and-swap
    // waits for every earlier store, and the entries' stores miss the cache
    // (`flow_table`).
    let reply_key = forward.peer_key(key.proto);
    let reply_slot = claim(reply_bucket, &reply_key, now)?;
    let forward_slot = match claim(bucket, key, now) {
        Ok(c) => c,
        Err(e) => {
            release(reply_slot);
            return Err(e);
        }
    };
    new_entries::stage(scratch, REPLY, &reply_slot, &reply_key);
    new_entries::stage(scratch, FORWARD, &forward_slot, key);
    new_entries::ready(scratch, REPLY);
    Ok(forward)
}

/// Whether a new connection from `key` may take the reply tuple
/// `reply_key` (backend -> the client end it answers) in bucket `b`. The
/// tuple may be taken: by this same connection (re-created after close or
/// expiry), by a dead one, or by another live connection whose replies look
/// the same (two VIPs on one backend, reached from one client port; or an
/// SNAT port in use toward this backend). Only the last must not be
/// overwritten: its replies would go to the wrong client or from the wrong
/// VIP. (Entries are not deleted when a backend goes: one whose backend is
/// gone counts as dead.)
#[inline(always)]
pub fn reply_tuple_free(b: Bucket, reply_key: &FlowKey, key: &FlowKey, now: u64) -> bool {
    let Some(other) = find_in(b, reply_key) else {
        return true;
    };
    // SAFETY (`other`): map value pointer, read only.
    !(live(Entry { flow: other }, key.proto, now)
        && unsafe { (*other).peer_key(key.proto) } != *key
        && unsafe { select::backend_live((*other).backend_id, (*other).backend_generation) })
}
