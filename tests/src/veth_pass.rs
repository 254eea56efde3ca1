//! An XDP program that passes everything, attached to a veth end so that
//! frames XDP-redirected (or sent with XDP_TX) into its peer are received:
//! the kernel runs a veth's NAPI, which takes such frames, only while the
//! veth has an XDP program or GRO on. GRO is no choice on a bridge port in
//! front of an XDP program: it merges a burst of TCP segments (and IPIP
//! packets: the kernel has GRO for IPIP built in) into one large packet,
//! which the XDP program on the far side then sees as one frame, and which
//! a real NIC never delivers.
//!
//! The program is the object's `ferrolb_decap` with no decapsulation
//! address: it passes every packet.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use aya::{
    Ebpf,
    programs::{Xdp, XdpMode},
};
use lb_common::maps::PROG_DECAP;

use crate::netns::Netns;

/// The program, attached; detached (and its maps' pins removed) on drop.
pub struct VethPass {
    _ebpf: Ebpf,
    pin_dir: PathBuf,
}

impl VethPass {
    /// Attaches the pass-everything program to `dev` in `ns` (driver mode).
    pub fn attach(ns: &Netns, dev: &str) -> Result<VethPass> {
        let (mut ebpf, pin_dir) = crate::xdp::load_object("pass-pins")?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROG_DECAP)
            .ok_or_else(|| anyhow!("program {PROG_DECAP} missing"))?
            .try_into()?;
        lb_userspace::datapath::load_program(prog)?;
        ns.run(|| prog.attach(dev, XdpMode::Driver))?
            .with_context(|| format!("attaching XDP to {dev} in {}", ns.name()))?;
        Ok(VethPass {
            _ebpf: ebpf,
            pin_dir,
        })
    }
}

impl Drop for VethPass {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}
