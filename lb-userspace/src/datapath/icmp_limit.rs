//! The rate limit of the ICMP fragmentation-needed answers the datapath
//! builds (`ICMP_LIMIT`, `lb_common::icmp_limit`): written once at load,
//! before the program is attached (`ferrolbd --icmp-rate/--icmp-burst`).

use aya::{
    Ebpf,
    maps::{Array, MapData},
};
use lb_common::{
    IcmpLimit,
    icmp_limit::{MAX_BURST, MAX_RATE_PER_S},
    maps as names,
};

use super::DatapathError;

/// `limit` if both fields are in range (1..=the maximum), or an error naming
/// the one that is not.
pub fn check(limit: IcmpLimit) -> Result<IcmpLimit, DatapathError> {
    for (what, value, max) in [
        (
            "rate (answers per second)",
            limit.rate_per_s,
            MAX_RATE_PER_S,
        ),
        ("burst", limit.burst, MAX_BURST),
    ] {
        if !(1..=max).contains(&value) {
            return Err(DatapathError::IcmpLimit(format!(
                "ICMP fragmentation-needed {what} {value} is not in 1..={max}"
            )));
        }
    }
    Ok(limit)
}

/// Writes `limit` (checked) to `ICMP_LIMIT`.
pub(crate) fn write(ebpf: &mut Ebpf, limit: IcmpLimit) -> Result<(), DatapathError> {
    let limit = check(limit)?;
    let map = ebpf
        .map_mut(names::ICMP_LIMIT)
        .ok_or(DatapathError::MissingMap(names::ICMP_LIMIT))?;
    let mut array: Array<&mut MapData, IcmpLimit> =
        Array::try_from(map).map_err(DatapathError::map(names::ICMP_LIMIT))?;
    array
        .set(0, limit, 0)
        .map_err(DatapathError::map(names::ICMP_LIMIT))
}

/// What `ICMP_LIMIT` holds.
pub(crate) fn read(ebpf: &Ebpf) -> Result<IcmpLimit, DatapathError> {
    let map = ebpf
        .map(names::ICMP_LIMIT)
        .ok_or(DatapathError::MissingMap(names::ICMP_LIMIT))?;
    let array: Array<&MapData, IcmpLimit> =
        Array::try_from(map).map_err(DatapathError::map(names::ICMP_LIMIT))?;
    array
        .get(&0, 0)
        .map_err(DatapathError::map(names::ICMP_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::icmp_limit::{DEFAULT_BURST, DEFAULT_RATE_PER_S};

    fn limit(rate_per_s: u32, burst: u32) -> IcmpLimit {
        IcmpLimit { rate_per_s, burst }
    }

    #[test]
    fn out_of_range_values_are_named() {
        for (l, what) in [
            (limit(0, 50), "rate (answers per second) 0"),
            (
                limit(MAX_RATE_PER_S + 1, 50),
                "rate (answers per second) 1000001",
            ),
            (limit(1000, 0), "burst 0"),
            (limit(1000, MAX_BURST + 1), "burst 1000001"),
        ] {
            let err = check(l).unwrap_err().to_string();
            assert!(err.contains(what), "{l:?}: {err}");
        }
        assert!(check(limit(1, 1)).is_ok());
        assert!(check(limit(MAX_RATE_PER_S, MAX_BURST)).is_ok());
    }

    /// The loader writes the limit it is given, and refuses a bad one
    /// before loading anything.
    #[test]
    fn load_writes_the_limit_and_refuses_a_bad_one() {
        let dirs = crate::test_support::Dirs::new();
        let dp = dirs.load();
        assert_eq!(
            dp.icmp_limit().unwrap(),
            limit(DEFAULT_RATE_PER_S, DEFAULT_BURST)
        );
        drop(dp);
        let mut opts = dirs.options();
        opts.icmp_limit = limit(7, 3);
        let dp = crate::datapath::Datapath::load(&opts).unwrap();
        assert_eq!(dp.icmp_limit().unwrap(), limit(7, 3));
        drop(dp);
        opts.icmp_limit = limit(7, 0);
        let err = crate::datapath::Datapath::load(&opts).err().unwrap();
        assert!(err.to_string().contains("burst 0"), "{err}");
    }
}
