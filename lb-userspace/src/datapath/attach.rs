//! Attaching the XDP program to interfaces.

use aya::programs::{Xdp, XdpMode, xdp::XdpLinkId};
use lb_common::maps::PROG_BALANCER;

use super::DatapathError;

/// `--xdp-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpModeArg {
    /// Driver (native) mode, falling back to generic (skb) mode with a
    /// warning when the driver does not support XDP.
    #[default]
    Auto,
    /// Driver (native) mode only.
    Driver,
    /// Generic mode (in the kernel's network stack).
    Skb,
}

/// An interface the program is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachedIface {
    pub name: String,
    pub ifindex: u32,
    /// `driver` or `skb`.
    pub mode: &'static str,
}

pub(crate) fn balancer(ebpf: &mut aya::Ebpf) -> Result<&mut Xdp, DatapathError> {
    program(ebpf, PROG_BALANCER)
}

/// XDP program `name` of the object.
pub(crate) fn program<'a>(
    ebpf: &'a mut aya::Ebpf,
    name: &'static str,
) -> Result<&'a mut Xdp, DatapathError> {
    ebpf.program_mut(name)
        .ok_or(DatapathError::MissingProgram(name))?
        .try_into()
        .map_err(DatapathError::program)
}

pub(crate) fn ifindex(name: &str) -> Result<u32, DatapathError> {
    let c = std::ffi::CString::new(name).map_err(|_| DatapathError::UnknownIface(name.into()))?;
    // SAFETY: `c` is a NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(DatapathError::UnknownIface(name.into())),
        i => Ok(i),
    }
}

/// Attaches `prog` to `name` in `mode`.
pub(crate) fn attach(
    prog: &mut Xdp,
    name: &str,
    mode: XdpModeArg,
) -> Result<(AttachedIface, XdpLinkId), DatapathError> {
    let ifindex = ifindex(name)?;
    let attach_err = |mode: &'static str| {
        move |e| DatapathError::Attach {
            iface: name.to_string(),
            mode,
            source: Box::new(e),
        }
    };
    let (link, mode) = match mode {
        XdpModeArg::Driver => (
            prog.attach_to_if_index(ifindex, XdpMode::Driver)
                .map_err(attach_err("driver"))?,
            "driver",
        ),
        XdpModeArg::Skb => (
            prog.attach_to_if_index(ifindex, XdpMode::Skb)
                .map_err(attach_err("skb"))?,
            "skb",
        ),
        XdpModeArg::Auto => match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(link) => (link, "driver"),
            Err(e) => {
                tracing::warn!(iface = name, error = %e, "driver-mode XDP failed; falling back to generic (skb) mode");
                (
                    prog.attach_to_if_index(ifindex, XdpMode::Skb)
                        .map_err(attach_err("skb"))?,
                    "skb",
                )
            }
        },
    };
    tracing::info!(iface = name, ifindex, mode, "attached");
    Ok((
        AttachedIface {
            name: name.to_string(),
            ifindex,
            mode,
        },
        link,
    ))
}

/// The interfaces one program is attached to, with the links that detach it.
#[derive(Default)]
pub(crate) struct Attachments {
    pub(crate) ifaces: Vec<AttachedIface>,
    links: Vec<XdpLinkId>,
}

impl Attachments {
    /// Attaches `prog` to every interface of `names`. On error the caller
    /// drops its `Ebpf`, which detaches what was attached.
    pub(crate) fn attach_all(
        prog: &mut Xdp,
        names: &[String],
        mode: XdpModeArg,
    ) -> Result<Self, DatapathError> {
        let mut out = Attachments::default();
        for name in names {
            let (a, link) = attach(prog, name, mode)?;
            out.ifaces.push(a);
            out.links.push(link);
        }
        Ok(out)
    }

    /// Detaches `prog` from every interface, logging `what` for each; the
    /// first error is returned after trying them all.
    pub(crate) fn detach(&mut self, prog: &mut Xdp, what: &str) -> Result<(), DatapathError> {
        let mut first_err = None;
        for link in self.links.drain(..) {
            if let Err(e) = prog.detach(link) {
                first_err.get_or_insert(DatapathError::program(e));
            }
        }
        for a in self.ifaces.drain(..) {
            tracing::info!(iface = %a.name, "{what}");
        }
        first_err.map_or(Ok(()), Err)
    }
}
