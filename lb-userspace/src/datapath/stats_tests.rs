//! A service's counters against a real loaded datapath (root): the datapath
//! counts per backend only, so they are its backends' plus those of the
//! backends that left it (`RETIRED_STATS`).

use aya::maps::PerCpuValues;
use lb_common::Counters;

use super::*;
use crate::test_support::{Dirs, spec};

const TWO: &str = r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp",
    "backends": [{"ip": "10.0.2.2", "port": 80}, {"ip": "10.0.2.3", "port": 80}]}"#;
const ONE: &str = r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp",
    "backends": [{"ip": "10.0.2.3", "port": 80}]}"#;

/// Sets backend `backend`'s counters: `packets` packets on CPU 0, one on
/// every other CPU (bytes, replies and connections in proportion).
fn counted(dp: &mut Datapath, backend: u32, packets: u64) {
    let cpus = nr_cpus();
    let per_cpu: Vec<Counters> = (0..cpus)
        .map(|cpu| {
            let n = if cpu == 0 { packets } else { 1 };
            Counters {
                packets: n,
                bytes: 100 * n,
                new_connections: 1,
                reply_packets: n,
                reply_bytes: 60 * n,
            }
        })
        .collect();
    dp.maps
        .backend_stats
        .set(backend, PerCpuValues::try_from(per_cpu).unwrap(), 0)
        .unwrap();
}

fn nr_cpus() -> usize {
    aya::util::nr_cpus().unwrap()
}

fn packets(dp: &Datapath, key: &ServiceKey) -> (u64, Vec<u64>) {
    let c = dp.service_counters(key).unwrap().unwrap();
    (
        c.service.packets,
        c.backends.iter().map(|b| b.counters.packets).collect(),
    )
}

#[test]
fn a_service_counts_its_backends_and_those_that_left_it() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    dp.limit_backend_ids(3); // ids 1 and 2: a removed backend's id is reused
    let two = spec(TWO);
    let key = two.key();
    dp.apply(&two).unwrap();
    let ids: Vec<u32> = dp
        .installed(&key)
        .unwrap()
        .backends
        .values()
        .map(|h| h.id)
        .collect();
    let others = nr_cpus() as u64 - 1;
    counted(&mut dp, ids[0], 10);
    counted(&mut dp, ids[1], 5);
    assert_eq!(
        packets(&dp, &key),
        (15 + 2 * others, vec![10 + others, 5 + others])
    );

    // 10.0.2.2 leaves: its packets stay in the service's.
    dp.apply(&spec(ONE)).unwrap();
    assert_eq!(packets(&dp, &key), (15 + 2 * others, vec![5 + others]));
    let c = dp.service_counters(&key).unwrap().unwrap().service;
    assert_eq!(c.bytes, 100 * (15 + 2 * others));
    assert_eq!(c.new_connections, 2 * (others + 1));

    // Its id goes to a new backend, which starts from zero; the service's
    // counters do not change.
    dp.apply(&two).unwrap();
    assert_eq!(packets(&dp, &key), (15 + 2 * others, vec![0, 5 + others]));

    // A service made anew under a reused id starts from zero.
    dp.remove(&key).unwrap();
    dp.apply(&two).unwrap();
    assert_eq!(packets(&dp, &key), (0, vec![0, 0]));
}
