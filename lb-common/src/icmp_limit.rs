//! The rate limit of the ICMP fragmentation-needed answers the datapath
//! builds (`lb-ebpf/src/frag_needed.rs`): a token bucket per CPU, refilled
//! from the daemon's clock (`Clock::now_ns`).

/// Default answers per second (each CPU), as Linux's
/// `net.ipv4.icmp_msgs_per_sec`.
pub const DEFAULT_RATE_PER_S: u32 = 1000;
/// Default bucket size (each CPU), as Linux's `net.ipv4.icmp_msgs_burst`.
pub const DEFAULT_BURST: u32 = 50;
/// Largest `IcmpLimit::rate_per_s` and `IcmpLimit::burst` userspace
/// accepts; with `MAX_REFILL_NS` it keeps the refill's product in a `u64`.
pub const MAX_RATE_PER_S: u32 = 1_000_000;
pub const MAX_BURST: u32 = 1_000_000;
/// Longest time one refill counts (later refills count the rest: the
/// bucket's stamp only moves by the time its new tokens took).
pub const MAX_REFILL_NS: u64 = 1_000 * NS_PER_S;
pub const NS_PER_S: u64 = 1_000_000_000;

/// The one entry of `ICMP_LIMIT`, written by the daemon at start. All zero
/// (not written): the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IcmpLimit {
    /// Tokens added per second, 1..=`MAX_RATE_PER_S`.
    pub rate_per_s: u32,
    /// Most tokens the bucket holds, 1..=`MAX_BURST`.
    pub burst: u32,
}
const _: () = assert!(core::mem::size_of::<IcmpLimit>() == 8);

impl IcmpLimit {
    /// The limit in force: the defaults where a field is 0 (not written).
    #[inline(always)]
    pub fn effective(self) -> IcmpLimit {
        IcmpLimit {
            rate_per_s: if self.rate_per_s == 0 {
                DEFAULT_RATE_PER_S
            } else {
                self.rate_per_s
            },
            burst: if self.burst == 0 {
                DEFAULT_BURST
            } else {
                self.burst
            },
        }
    }
}

/// One CPU's bucket (`ICMP_BUCKET`, a per-CPU array of 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IcmpBucket {
    /// Clock time the tokens were counted up to; 0: never used (the bucket
    /// starts full).
    pub stamp_ns: u64,
    /// Tokens left: answers this CPU may send now.
    pub tokens: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<IcmpBucket>() == 16);

impl IcmpBucket {
    /// Refills the bucket up to `now_ns` under `limit` (effective: no zero
    /// field) and takes one token. `false`: the bucket is empty, no answer.
    ///
    /// New tokens are whole: the stamp moves on only by the time they took,
    /// so a slow rate still adds up across clock ticks. A clock that went
    /// back (a restarted daemon's, a test's) restarts the bucket full.
    #[inline(always)]
    pub fn take(&mut self, limit: IcmpLimit, now_ns: u64) -> bool {
        let rate = u64::from(limit.rate_per_s);
        if rate == 0 {
            return false;
        }
        if self.stamp_ns == 0 || now_ns < self.stamp_ns {
            self.stamp_ns = now_ns;
            self.tokens = limit.burst;
        } else {
            let elapsed = now_ns - self.stamp_ns;
            let counted = if elapsed > MAX_REFILL_NS {
                MAX_REFILL_NS
            } else {
                elapsed
            };
            // At most MAX_RATE_PER_S * MAX_REFILL_NS = 1e18 < u64::MAX.
            let new = rate * counted / NS_PER_S;
            if new > 0 {
                let tokens = u64::from(self.tokens) + new;
                if tokens >= u64::from(limit.burst) {
                    // Full: time spent full earns nothing.
                    self.tokens = limit.burst;
                    self.stamp_ns = now_ns;
                } else {
                    self.tokens = tokens as u32;
                    self.stamp_ns += new * NS_PER_S / rate;
                }
            }
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: IcmpLimit = IcmpLimit {
        rate_per_s: 10,
        burst: 3,
    };
    const T0: u64 = 5 * NS_PER_S;

    fn take_all(b: &mut IcmpBucket, now: u64) -> u32 {
        let mut n = 0;
        while b.take(LIMIT, now) {
            n += 1;
            assert!(n <= MAX_BURST, "bucket never empties");
        }
        n
    }

    #[test]
    fn starts_full_and_empties_after_the_burst() {
        let mut b = IcmpBucket::default();
        assert_eq!(take_all(&mut b, T0), 3);
        assert!(!b.take(LIMIT, T0));
    }

    #[test]
    fn refills_at_the_rate_up_to_the_burst() {
        let mut b = IcmpBucket::default();
        take_all(&mut b, T0);
        // 10 per second: one token per 100 ms, none before.
        assert_eq!(take_all(&mut b, T0 + 99_000_000), 0);
        assert_eq!(take_all(&mut b, T0 + 100_000_000), 1);
        assert_eq!(take_all(&mut b, T0 + 300_000_000), 2);
        // Long idle: full, not more.
        assert_eq!(take_all(&mut b, T0 + 3600 * NS_PER_S), 3);
    }

    #[test]
    fn fractions_of_a_token_add_up_across_ticks() {
        let limit = IcmpLimit {
            rate_per_s: 3,
            burst: 1,
        };
        let mut b = IcmpBucket::default();
        assert!(b.take(limit, T0));
        // A token takes 333.3 ms: ticks of 100 ms reach it at the 4th.
        let mut t = T0;
        let mut ticks = 0;
        loop {
            t += 100_000_000;
            ticks += 1;
            if b.take(limit, t) {
                break;
            }
        }
        assert_eq!(ticks, 4);
    }

    #[test]
    fn a_clock_that_went_back_restarts_full() {
        let mut b = IcmpBucket::default();
        take_all(&mut b, T0);
        assert_eq!(take_all(&mut b, T0 - NS_PER_S), 3);
    }

    #[test]
    fn zero_fields_mean_the_defaults() {
        let l = IcmpLimit::default().effective();
        assert_eq!((l.rate_per_s, l.burst), (DEFAULT_RATE_PER_S, DEFAULT_BURST));
        assert_eq!(LIMIT.effective(), LIMIT);
    }

    #[test]
    fn largest_limits_do_not_overflow() {
        let limit = IcmpLimit {
            rate_per_s: MAX_RATE_PER_S,
            burst: MAX_BURST,
        };
        let mut b = IcmpBucket::default();
        assert!(b.take(limit, T0));
        b.tokens = 0;
        assert!(b.take(limit, T0 + 10 * MAX_REFILL_NS));
        assert_eq!(b.tokens, MAX_BURST - 1);
    }
}
