//! The selection ring of a service: which backend each slot points to.

use lb_common::limits::{MAX_BACKENDS_PER_SERVICE, RING_SIZE};

// Every backend of a service gets a slot: validation allows at most
// MAX_BACKENDS_PER_SERVICE backends, so the ring must have room for them.
const _: () = assert!(MAX_BACKENDS_PER_SERVICE <= RING_SIZE);

/// Spreads backends with `weights` over at most `RING_SIZE` slots and
/// returns, per slot, the index of its backend.
///
/// Slot counts are proportional to the weights (exactly when the weights,
/// divided by their greatest common divisor, sum to at most `RING_SIZE`;
/// otherwise by largest remainder), every backend gets at least one slot, and
/// the slots are interleaved by smooth weighted round robin (nginx's), so
/// consecutive slots go to different backends where possible.
pub fn build_ring(weights: &[u32]) -> Vec<usize> {
    let counts = slot_counts(weights, RING_SIZE as usize);
    interleave(&counts)
}

/// Slots per backend, summing to at most `ring`. With more backends than
/// slots (never for a service, see the assertion above) only the first
/// `ring` backends get one.
fn slot_counts(weights: &[u32], ring: usize) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    if weights.len() > ring {
        return (0..weights.len()).map(|i| u64::from(i < ring)).collect();
    }
    let weights: Vec<u64> = weights.iter().map(|&w| u64::from(w.max(1))).collect();
    let g = weights.iter().copied().fold(0, gcd);
    let reduced: Vec<u64> = weights.iter().map(|w| w / g).collect();
    let total: u64 = reduced.iter().sum();
    let ring = ring as u64;
    if total <= ring {
        return reduced;
    }
    // Quota of backend i: ring * w_i / total. Start from the floor (at least
    // 1), then move slots by largest remainder until the sum is `ring`.
    let mut counts: Vec<u64> = reduced.iter().map(|w| (ring * w / total).max(1)).collect();
    // Excess of backend i over its quota, scaled by `total`: c_i*total - ring*w_i.
    let excess = |i: usize, c: u64| (c * total) as i128 - (ring * reduced[i]) as i128;
    let mut sum: u64 = counts.iter().sum();
    while sum > ring {
        // Take from the backend most above its quota that has more than one.
        // There is one: more slots than ring >= backends.
        let Some(i) = (0..counts.len())
            .filter(|&i| counts[i] > 1)
            .max_by_key(|&i| (excess(i, counts[i]), std::cmp::Reverse(i)))
        else {
            break;
        };
        counts[i] -= 1;
        sum -= 1;
    }
    while sum < ring {
        // Give to the backend most below its quota.
        let Some(i) = (0..counts.len()).min_by_key(|&i| (excess(i, counts[i]), i)) else {
            break;
        };
        counts[i] += 1;
        sum += 1;
    }
    counts
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Smooth weighted round robin over `counts`: each step every backend gains
/// its count, the one with the most (first on ties) is picked and loses the
/// total.
fn interleave(counts: &[u64]) -> Vec<usize> {
    let total: u64 = counts.iter().sum();
    let mut current = vec![0i64; counts.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(counts) {
            *c += w as i64;
        }
        let mut best = 0;
        for i in 1..current.len() {
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total as i64;
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::limits::{MAX_BACKENDS_PER_SERVICE, MAX_WEIGHT};

    fn counts_of(ring: &[usize], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &i in ring {
            c[i] += 1;
        }
        c
    }

    #[test]
    fn empty_has_no_slot() {
        assert!(build_ring(&[]).is_empty());
    }

    #[test]
    fn equal_weights_alternate() {
        assert_eq!(build_ring(&[1, 1]), vec![0, 1]);
        assert_eq!(build_ring(&[5, 5, 5]), vec![0, 1, 2], "reduced by the gcd");
    }

    #[test]
    fn smooth_interleaving_like_nginx() {
        // nginx's documented sequence for weights 5, 1, 1: a a b a c a a.
        assert_eq!(build_ring(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        // 3:1 never puts the heavy backend more than three times in a row.
        assert_eq!(build_ring(&[3, 1]), vec![0, 0, 1, 0]);
    }

    #[test]
    fn proportional_when_it_fits() {
        let ring = build_ring(&[3, 2, 1]);
        assert_eq!(counts_of(&ring, 3), vec![3, 2, 1]);
    }

    #[test]
    fn scaled_to_the_ring_when_too_large() {
        // 100 + 99 + 98 = 297 > 256 slots, gcd 1: scaled to 256.
        let ring = build_ring(&[100, 99, 98]);
        assert_eq!(ring.len(), RING_SIZE as usize);
        let c = counts_of(&ring, 3);
        assert!(c[0] >= c[1] && c[1] >= c[2], "{c:?}");
        for (got, w) in c.iter().zip([100.0, 99.0, 98.0]) {
            let quota = 256.0 * w / 297.0;
            assert!((*got as f64 - quota).abs() < 1.0, "{c:?}");
        }
    }

    #[test]
    fn every_backend_gets_a_slot_at_the_limits() {
        // The most backends, one heavy and the rest light.
        let mut weights = vec![1; MAX_BACKENDS_PER_SERVICE as usize];
        weights[0] = MAX_WEIGHT;
        let ring = build_ring(&weights);
        assert!(ring.len() <= RING_SIZE as usize);
        let c = counts_of(&ring, weights.len());
        assert!(c.iter().all(|&n| n >= 1), "{c:?}");
        assert!(c[0] > c[1], "{c:?}");

        // All at maximum weight: equal shares.
        let ring = build_ring(&vec![MAX_WEIGHT; MAX_BACKENDS_PER_SERVICE as usize]);
        assert_eq!(ring.len(), MAX_BACKENDS_PER_SERVICE as usize);
        assert!(counts_of(&ring, 128).iter().all(|&n| n == 1));

        // Mixed weights summing far beyond the ring.
        let weights: Vec<u32> = (1..=MAX_BACKENDS_PER_SERVICE)
            .map(|i| i % 100 + 1)
            .collect();
        let ring = build_ring(&weights);
        assert_eq!(ring.len(), RING_SIZE as usize);
        assert!(counts_of(&ring, weights.len()).iter().all(|&n| n >= 1));
    }

    #[test]
    fn more_backends_than_slots_fill_the_ring_without_panicking() {
        let counts = slot_counts(&[1, 5, 1, 1, 1, 1], 4);
        assert_eq!(counts, vec![1, 1, 1, 1, 0, 0]);
        let ring = interleave(&counts);
        assert_eq!(ring.len(), 4);
        assert_eq!(counts_of(&ring, 6), vec![1, 1, 1, 1, 0, 0]);
    }
}
