//! Sends a rewritten packet on: next hop from the kernel's FIB, then XDP_TX
//! (same interface) or XDP_REDIRECT through the device map. When the kernel
//! cannot give a next hop yet (no neighbour entry, no route), the rewritten
//! packet goes to the stack, which resolves and forwards it.

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup as FibParams, xdp_action},
    helpers::generated::bpf_fib_lookup,
    programs::XdpContext,
};
use lb_common::GlobalStat;

use crate::{
    maps::TX_PORTS,
    packet::{load, store},
    parse::Packet,
    stats,
};

const AF_INET: u8 = 2;

#[inline(always)]
pub fn forward(ctx: &XdpContext, pkt: &Packet) -> u32 {
    let ip = pkt.ip;
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut fib: FibParams = unsafe { core::mem::zeroed() };
    fib.family = AF_INET;
    fib.l4_protocol = pkt.key.proto;
    // SAFETY (field pointers): `ip` was bounds-checked by `parse`.
    fib.__bindgen_anon_1.tot_len = u16::from_be(load(unsafe { &raw const (*ip).tot_len }));
    fib.__bindgen_anon_2.tos = load(unsafe { &raw const (*ip).tos });
    fib.__bindgen_anon_3.ipv4_src = load(unsafe { &raw const (*ip).saddr });
    fib.__bindgen_anon_4.ipv4_dst = load(unsafe { &raw const (*ip).daddr });
    let ingress = ctx.ingress_ifindex() as u32;
    fib.ifindex = ingress;

    // SAFETY: helper call with the program's context and a stack buffer of
    // the size passed.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx.cast(),
            &mut fib,
            core::mem::size_of::<FibParams>() as i32,
            0,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        stats::inc(GlobalStat::PassFibMiss);
        return xdp_action::XDP_PASS;
    }

    // Destination then source MAC: the first 12 bytes of the frame.
    let macs = pkt.eth.cast::<[u8; 12]>();
    let original = load(macs);
    store(unsafe { &raw mut (*pkt.eth).dst }, fib.dmac);
    store(unsafe { &raw mut (*pkt.eth).src }, fib.smac);

    if fib.ifindex == ingress {
        stats::inc(GlobalStat::Tx);
        return xdp_action::XDP_TX;
    }
    match TX_PORTS.redirect(fib.ifindex, xdp_action::XDP_PASS as u64) {
        Ok(action) => {
            stats::inc(GlobalStat::Redirect);
            action
        }
        Err(_) => {
            // Not ours to transmit on: the stack must see the frame as it
            // arrived (its own MAC as destination), only rewritten above L2.
            store(macs, original);
            stats::inc(GlobalStat::PassNoTxPort);
            xdp_action::XDP_PASS
        }
    }
}
