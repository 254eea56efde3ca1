//! The flow hash: picks a backend for `select::HASH` services; seeded
//! (`flow_hash_seeded`), it picks SNAT ports. A cheaper one
//! (`spread_hash`) picks the VXLAN source port. Userspace and tests use the
//! same functions to predict where a flow lands.

#[inline(always)]
const fn fmix32(mut h: u32) -> u32 {
    // MurmurHash3's finaliser: full avalanche, only shifts and multiplies.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[inline(always)]
const fn mix(h: u32, k: u32) -> u32 {
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Hash of a 5-tuple given as the packet's raw (network byte order) values
/// loaded natively.
#[inline(always)]
pub const fn flow_hash(src_ip: u32, dst_ip: u32, src_port: u16, dst_port: u16, proto: u8) -> u32 {
    flow_hash_seeded(0x9747_b28c, src_ip, dst_ip, src_port, dst_port, proto)
}

/// `flow_hash` with another seed (for SNAT ports: derived from the
/// connection table's random multiplier, so nobody can predict them).
#[inline(always)]
pub const fn flow_hash_seeded(
    seed: u32,
    src_ip: u32,
    dst_ip: u32,
    src_port: u16,
    dst_port: u16,
    proto: u8,
) -> u32 {
    let ports = ((src_port as u32) << 16) | dst_port as u32;
    let mut h = seed ^ proto as u32;
    h = mix(h, src_ip);
    h = mix(h, dst_ip);
    h = mix(h, ports);
    fmix32(h ^ 13)
}

/// A cheap hash of a 5-tuple (raw values, as `flow_hash`), for spreading
/// flows where no one can aim at the result (the VXLAN source port): two
/// 64-bit multiplies (multiply-shift), one native instruction each on the
/// BPF target, where 32-bit multiplies and rotates are masked (`flow_hash`'s
/// four rounds, and the 32-bit finaliser this replaced, cost a noticeable
/// part of a VXLAN packet). The ports go into the low bits of the second
/// product's operand, so they reach every bit of the result.
#[inline(always)]
pub const fn spread_hash(src_ip: u32, dst_ip: u32, src_port: u16, dst_port: u16, proto: u8) -> u32 {
    let addrs = ((src_ip as u64) << 32) | dst_ip as u64;
    let rest = ((proto as u64) << 32) | ((src_port as u64) << 16) | dst_port as u64;
    let x = addrs.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ rest;
    (x.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_source_ports_evenly() {
        let mut buckets = [0u32; 4];
        for port in 1024u16..5120 {
            let h = flow_hash(0x0100_000a, 0x0a00_600a, port.to_be(), 80u16.to_be(), 6);
            buckets[(h % 4) as usize] += 1;
        }
        for b in buckets {
            // 1024 expected per bucket; allow +-15%.
            assert!((870..=1178).contains(&b), "{buckets:?}");
        }
    }

    #[test]
    fn spread_hash_spreads_source_ports_evenly_over_the_high_bits() {
        // What the VXLAN source port uses: the high bits (the multiply in
        // `tunnel::vxlan_src_port`), for clients that differ in the port
        // only, as many connections from one client do.
        let mut buckets = [0u32; 16];
        for port in 1024u16..9216 {
            let h = spread_hash(0x0100_000a, 0x0a00_600a, port.to_be(), 80u16.to_be(), 6);
            buckets[(h >> 28) as usize] += 1;
        }
        for b in buckets {
            // 512 expected per bucket; allow +-20%.
            assert!((410..=614).contains(&b), "{buckets:?}");
        }
    }

    #[test]
    fn both_hashes_depend_on_every_field() {
        type Hash = fn(u32, u32, u16, u16, u8) -> u32;
        for (name, h) in [
            ("flow_hash", flow_hash as Hash),
            ("spread_hash", spread_hash),
        ] {
            let base = h(1, 2, 3, 4, 6);
            for other in [
                h(9, 2, 3, 4, 6),
                h(1, 9, 3, 4, 6),
                h(1, 2, 9, 4, 6),
                h(1, 2, 3, 9, 6),
            ] {
                assert_ne!(base, other, "{name}");
            }
            assert_ne!(base, h(1, 2, 3, 4, 17), "{name}");
            // The two ends swapped are another flow.
            assert_ne!(base, h(2, 1, 4, 3, 6), "{name}");
        }
    }
}
