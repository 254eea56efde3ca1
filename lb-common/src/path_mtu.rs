//! Path MTUs toward nodes, learned from ICMP fragmentation-needed about the
//! load balancer's own encapsulated packets (`PATH_MTU`: node address →
//! `PathMtu`). A router between the balancer and a node with a smaller MTU
//! answers an outer packet (IPIP, or VXLAN's UDP) with type 3 code 4 and
//! its next-hop MTU; nothing on this host listens for those (the
//! encapsulation is done in XDP), so the datapath records the MTU itself
//! and uses the smaller of it and the route MTU toward the node, as Linux's
//! route exceptions do for tunnels the kernel owns. See docs/datapath.md,
//! "Path MTU toward nodes".

/// Smallest reported MTU accepted: Linux's `min_pmtu` default (552). A
/// smaller one (a router's bug, or someone trying to shrink every packet
/// toward a node) is ignored.
pub const MIN_PATH_MTU: u16 = 552;

/// How long a learned MTU holds: Linux's `mtu_expires` default (10 minutes).
/// After that the route MTU is used again (and, if the path is still
/// narrower, the next oversized packet teaches it again).
pub const PATH_MTU_EXPIRES_NS: u64 = 600 * 1_000_000_000;

/// Value of the `PATH_MTU` map: the MTU learned toward a node.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PathMtu {
    /// Datapath clock time (`Clock::now_ns`) at which it stops holding.
    pub expires_ns: u64,
    /// The learned MTU, host order (a 16-bit value held in 32 bits: no
    /// odd-sized padding for the datapath to zero).
    pub mtu: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<PathMtu>() == 16);

impl PathMtu {
    /// The entry for an MTU of `mtu` learned at `now_ns`.
    pub const fn learned(mtu: u16, now_ns: u64) -> PathMtu {
        PathMtu {
            expires_ns: now_ns.wrapping_add(PATH_MTU_EXPIRES_NS),
            mtu: mtu as u32,
            _pad: 0,
        }
    }

    /// Whether the entry still holds at `now_ns`.
    pub const fn holds_at(&self, now_ns: u64) -> bool {
        now_ns < self.expires_ns
    }

    /// The smaller of `route_mtu` and this entry's MTU while it holds.
    pub const fn cap(&self, route_mtu: u16, now_ns: u64) -> u16 {
        if self.holds_at(now_ns) && self.mtu < route_mtu as u32 {
            self.mtu as u16
        } else {
            route_mtu
        }
    }
}

/// Whether a fragmentation-needed reporting `reported` about an outer
/// packet of `sent_len` bytes (its quoted total length) is worth learning,
/// given what is known toward the node (`known`, possibly expired): the
/// MTU must be at least `MIN_PATH_MTU`, below the packet's length (else the
/// packet would have fit: the report is bogus) and below an MTU still held.
pub const fn accepts(reported: u16, sent_len: u16, known: Option<&PathMtu>, now_ns: u64) -> bool {
    if reported < MIN_PATH_MTU || reported >= sent_len {
        return false;
    }
    match known {
        Some(k) => !k.holds_at(now_ns) || (reported as u32) < k.mtu,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000_000_000;

    #[test]
    fn learned_mtu_caps_until_it_expires() {
        let p = PathMtu::learned(1400, NOW);
        assert_eq!(p.cap(1500, NOW), 1400);
        assert_eq!(p.cap(1300, NOW), 1300, "the route MTU is smaller");
        assert_eq!(p.cap(1500, NOW + PATH_MTU_EXPIRES_NS - 1), 1400);
        assert_eq!(p.cap(1500, NOW + PATH_MTU_EXPIRES_NS), 1500, "expired");
    }

    #[test]
    fn only_plausible_smaller_mtus_are_accepted() {
        assert!(accepts(1400, 1500, None, NOW));
        assert!(accepts(MIN_PATH_MTU, 1500, None, NOW));
        assert!(
            !accepts(MIN_PATH_MTU - 1, 1500, None, NOW),
            "below min_pmtu"
        );
        assert!(!accepts(0, 1500, None, NOW), "no MTU (RFC 792 router)");
        assert!(!accepts(1500, 1500, None, NOW), "the packet fitted");
        let known = PathMtu::learned(1400, NOW);
        assert!(accepts(1300, 1500, Some(&known), NOW));
        assert!(!accepts(1400, 1500, Some(&known), NOW), "not smaller");
        assert!(!accepts(1450, 1500, Some(&known), NOW), "larger");
        assert!(
            accepts(1450, 1500, Some(&known), NOW + PATH_MTU_EXPIRES_NS),
            "the known one expired"
        );
    }
}
