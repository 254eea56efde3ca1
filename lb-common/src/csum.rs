//! Incremental Internet checksum updates (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
//!
//! All values are the raw bytes of the packet loaded as native integers
//! (`u16::from_ne_bytes`, `u32::from_ne_bytes`): one's complement addition is
//! the same in either byte order, so no swapping is needed as long as the
//! checksum and the replaced words are loaded the same way.

#[inline(always)]
const fn fold(mut sum: u32) -> u16 {
    // Two folds are always enough for sums of fewer than 65536 16-bit
    // terms.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Checksum after replacing the 16-bit word `old` by `new`.
#[inline(always)]
pub const fn replace2(csum: u16, old: u16, new: u16) -> u16 {
    let sum = (!csum as u32) + (!old as u32) + (new as u32);
    !fold(sum)
}

/// Checksum after replacing the 32-bit word `old` by `new` (an IPv4 address,
/// or two adjacent ports).
#[inline(always)]
pub const fn replace4(csum: u16, old: u32, new: u32) -> u16 {
    let sum = (!csum as u32) + ((!old) & 0xffff) + ((!old) >> 16) + (new & 0xffff) + (new >> 16);
    !fold(sum)
}

/// UDP variant of [`replace4`]: a zero checksum means "none" and stays zero,
/// and a computed zero is sent as `0xffff` (RFC 768).
#[inline(always)]
pub const fn udp_replace4(csum: u16, old: u32, new: u32) -> u16 {
    if csum == 0 {
        return 0;
    }
    let c = replace4(csum, old, new);
    if c == 0 { 0xffff } else { c }
}

/// Internet checksum of a 20-byte IPv4 header given as its ten 16-bit words
/// (loaded natively): the value to store in a header whose checksum field is
/// zero, or 0 when checking a header that carries a right checksum.
#[inline(always)]
pub const fn ipv4_header(words: [u16; 10]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    // A constant-bound loop the compiler unrolls: no loop for the verifier.
    while i < 10 {
        sum += words[i] as u32;
        i += 1;
    }
    !fold(sum)
}

/// The checksum of words whose (natively loaded) values add up to `sum`
/// (fewer than 65536 words): what to store in the checksum field when it
/// was zero in the sum, 0 when checking a right one.
#[inline(always)]
pub const fn finish(sum: u32) -> u16 {
    !fold(sum)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Full checksum of `data` (RFC 1071), as a native load of the two
    /// checksum bytes would read it.
    fn full(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for chunk in data.chunks(2) {
            let word = if chunk.len() == 2 {
                u16::from_ne_bytes([chunk[0], chunk[1]])
            } else {
                u16::from_ne_bytes([chunk[0], 0])
            };
            sum += word as u32;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// A 20-byte IPv4 header with its checksum filled in.
    fn ipv4_header(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
        let mut h = std::vec![
            0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, ttl, 6, 0, 0, src[0], src[1], src[2], src[3],
            dst[0], dst[1], dst[2], dst[3],
        ];
        let c = full(&h);
        h[10..12].copy_from_slice(&c.to_ne_bytes());
        h
    }

    fn csum_of(h: &[u8]) -> u16 {
        u16::from_ne_bytes([h[10], h[11]])
    }

    #[test]
    fn replace4_matches_full_recompute() {
        let cases = [
            ([10, 0, 0, 1], [10, 96, 0, 10], [10, 0, 2, 2]),
            ([192, 168, 1, 1], [255, 255, 255, 255], [0, 0, 0, 0]),
            ([1, 2, 3, 4], [0, 0, 0, 0], [255, 255, 255, 255]),
            ([172, 16, 1, 14], [192, 168, 140, 65], [192, 168, 140, 66]),
        ];
        for (src, dst, new_dst) in cases {
            let mut h = ipv4_header(src, dst, 64);
            let old = u32::from_ne_bytes(dst);
            let new = u32::from_ne_bytes(new_dst);
            let c = replace4(csum_of(&h), old, new);
            h[16..20].copy_from_slice(&new_dst);
            h[10..12].copy_from_slice(&c.to_ne_bytes());
            // A header with a correct checksum sums to zero.
            assert_eq!(full(&h), 0, "dst {dst:?} -> {new_dst:?}");
        }
    }

    #[test]
    fn replace2_handles_ttl_decrement() {
        for ttl in [1u8, 2, 64, 128, 255] {
            let mut h = ipv4_header([10, 0, 0, 1], [10, 0, 0, 2], ttl);
            let old = u16::from_ne_bytes([h[8], h[9]]);
            h[8] = ttl - 1;
            let new = u16::from_ne_bytes([h[8], h[9]]);
            let c = replace2(csum_of(&h), old, new);
            h[10..12].copy_from_slice(&c.to_ne_bytes());
            assert_eq!(full(&h), 0, "ttl {ttl}");
        }
    }

    #[test]
    fn ipv4_header_matches_full_checksum() {
        let mut h = ipv4_header([172, 16, 1, 1], [172, 16, 1, 14], 64);
        let words = |h: &[u8]| -> [u16; 10] {
            core::array::from_fn(|i| u16::from_ne_bytes([h[2 * i], h[2 * i + 1]]))
        };
        assert_eq!(
            super::ipv4_header(words(&h)),
            0,
            "a right header checks to 0"
        );
        let expected = csum_of(&h);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(super::ipv4_header(words(&h)), expected);
    }

    #[test]
    fn finish_matches_full_checksum() {
        let sum = |d: &[u8]| -> u32 {
            d.chunks(2)
                .map(|c| u32::from(u16::from_ne_bytes([c[0], c[1]])))
                .sum()
        };
        let data: Vec<u8> = (0u8..36).map(|b| b.wrapping_mul(37)).collect();
        assert_eq!(finish(sum(&data)), full(&data));
        let h = ipv4_header([10, 0, 0, 1], [10, 0, 0, 2], 9);
        assert_eq!(finish(sum(&h)), 0);
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        assert_eq!(udp_replace4(0, 0x0100_000a, 0x0200_000a), 0);
    }

    #[test]
    fn udp_computed_zero_becomes_ffff() {
        // Search for a checksum whose update computes to zero rather than
        // derive one by hand.
        let mut found = false;
        for csum in 1u16..=0xffff {
            if replace4(csum, 0x1234_5678, 0x8765_4321) == 0 {
                assert_eq!(udp_replace4(csum, 0x1234_5678, 0x8765_4321), 0xffff);
                found = true;
                break;
            }
        }
        assert!(found);
    }
}
