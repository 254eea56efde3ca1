//! The service programming against a real loaded datapath (root; no
//! interface attached): map contents, id and generation rules,
//! restore, the connection-table scan and rollback.

use std::net::Ipv4Addr;

use lb_common::{
    Flow, FlowKey,
    conntrack::{DIR_FORWARD, DIR_REPLY},
    limits::RING_SIZE,
    proto,
    service::BACKEND_ACTIVE,
};

use super::*;
use crate::test_support::{Dirs, spec};

const WEB: &str = r#"{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "select": "hash", "timeout_s": 100,
    "backends": [{"ip": "10.0.2.2", "port": 8080, "weight": 2}, {"ip": "10.0.2.3", "port": 8080}]}"#;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn be_ip(s: &str) -> u32 {
    u32::from_ne_bytes(ip(s).octets())
}

fn handle(dp: &Datapath, key: &ServiceKey, addr: &str, port: u16) -> BackendHandle {
    dp.installed(key).unwrap().backends[&(ip(addr), port)]
}

/// The two entries of a connection client:cport -> vip:vport balanced to
/// backend:bport.
fn connection(
    client: (&str, u16),
    vip: (&str, u16),
    backend: (&str, u16),
    h: BackendHandle,
    last_seen_ns: u64,
) -> [(FlowKey, Flow); 2] {
    let (c, cp) = (be_ip(client.0), client.1.to_be());
    let (v, vp) = (be_ip(vip.0), vip.1.to_be());
    let (b, bp) = (be_ip(backend.0), backend.1.to_be());
    let flow = |nat_src_ip, nat_src_port, nat_dst_ip, nat_dst_port, direction| Flow {
        nat_src_ip,
        nat_dst_ip,
        nat_src_port,
        nat_dst_port,
        _reserved: 0,
        backend_id: h.id,
        backend_generation: h.generation,
        timeout_s: 100,
        direction,
        tcp_flags: 0,
        mode: 0,
        _pad: 0,
        last_seen_ns,
        next_hop: Default::default(),
    };
    let key = |src_ip, src_port, dst_ip, dst_port| {
        FlowKey::new(src_ip, dst_ip, src_port, dst_port, proto::TCP)
    };
    [
        (key(c, cp, v, vp), flow(c, cp, b, bp, DIR_FORWARD)),
        (key(b, bp, c, cp), flow(v, vp, c, cp, DIR_REPLY)),
    ]
}

fn insert(dp: &Datapath, entries: &[(FlowKey, Flow)]) {
    for (k, f) in entries {
        dp.conntrack().insert(*k, *f).unwrap();
    }
}

fn present(dp: &Datapath, entries: &[(FlowKey, Flow)]) -> Vec<bool> {
    let all = dp.conntrack().entries().unwrap();
    entries
        .iter()
        .map(|(k, _)| all.iter().any(|(a, _)| a == k))
        .collect()
}

#[test]
fn peer_keys_pair_up() {
    let h = BackendHandle {
        id: 1,
        generation: 1,
    };
    let [fwd, rep] = connection(
        ("10.0.1.2", 40000),
        ("10.96.0.10", 80),
        ("10.0.2.2", 8080),
        h,
        0,
    );
    assert_eq!(fwd.1.peer_key(fwd.0.proto), rep.0);
    assert_eq!(rep.1.peer_key(rep.0.proto), fwd.0);
}

#[test]
fn a_dsr_service_is_programmed_with_the_dsr_mode() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let dsr = spec(
        r#"{"vip": "10.96.0.12", "port": 80, "protocol": "tcp", "mode": "dsr",
            "backends": [{"ip": "10.244.1.2", "port": 80}]}"#,
    );
    dp.apply(&dsr).unwrap();
    let svc = dp
        .service_entry(&dsr.key())
        .unwrap()
        .expect("SERVICES entry");
    assert_eq!(svc.mode, lb_common::service::mode::DSR);
    assert_eq!(svc.slot_count, 1);
}

#[test]
fn apply_writes_the_contract() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let web = spec(WEB);
    dp.apply(&web).unwrap();
    let key = web.key();

    let svc = dp.service_entry(&key).unwrap().expect("SERVICES entry");
    assert_eq!(svc.slot_count, 3, "weights 2 and 1");
    assert_eq!(svc.timeout_s, 100);
    assert_eq!(svc.mode, lb_common::service::mode::DNAT);
    assert_eq!(svc.select, lb_common::service::select::HASH);
    assert_eq!(svc.id, dp.installed(&key).unwrap().id);

    let a = handle(&dp, &key, "10.0.2.2", 8080);
    let b = handle(&dp, &key, "10.0.2.3", 8080);
    assert_ne!(a.id, 0, "id 0 is never used");
    assert_eq!(dp.ring_entries(svc.id, 3).unwrap(), vec![a.id, b.id, a.id]);
    let entry = dp.backend_entry(a.id).unwrap();
    assert_eq!(entry.ip, be_ip("10.0.2.2"));
    assert_eq!(entry.port, 8080u16.to_be());
    assert_eq!(entry.flags & BACKEND_ACTIVE, BACKEND_ACTIVE);
    assert_eq!(entry.service_id, svc.id);
    assert_eq!(entry.generation, a.generation);
    assert_eq!(dp.vip_entry(ip("10.96.0.10")).unwrap(), Some(1));

    // A second service on the same VIP counts in VIPS; removing one keeps
    // the VIP, removing both drops it.
    let dns = spec(r#"{"vip": "10.96.0.10", "port": 53, "protocol": "udp"}"#);
    dp.apply(&dns).unwrap();
    assert_eq!(dp.vip_entry(ip("10.96.0.10")).unwrap(), Some(2));
    let dns_svc = dp.service_entry(&dns.key()).unwrap().unwrap();
    assert_eq!(dns_svc.slot_count, 0, "no backend: the datapath drops");
    assert_ne!(dns_svc.id, svc.id);
    assert!(dp.remove(&dns.key()).unwrap());
    assert_eq!(dp.vip_entry(ip("10.96.0.10")).unwrap(), Some(1));
    assert!(!dp.remove(&dns.key()).unwrap(), "already gone");
    assert!(dp.remove(&key).unwrap());
    assert_eq!(dp.vip_entry(ip("10.96.0.10")).unwrap(), None);
    assert_eq!(dp.service_entry(&key).unwrap(), None);
    for h in [a, b] {
        let e = dp.backend_entry(h.id).unwrap();
        assert_eq!(e.flags & BACKEND_ACTIVE, 0, "deactivated");
        assert_eq!(e.generation, h.generation, "generation kept");
    }
}

#[test]
fn replace_keeps_surviving_backends_and_deactivates_removed() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let web = spec(WEB);
    dp.apply(&web).unwrap();
    let key = web.key();
    let id = dp.installed(&key).unwrap().id;
    let a = handle(&dp, &key, "10.0.2.2", 8080);
    let b = handle(&dp, &key, "10.0.2.3", 8080);
    let now = monotonic_coarse_ns();
    let conn_a = connection(
        ("10.0.1.2", 40000),
        ("10.96.0.10", 80),
        ("10.0.2.2", 8080),
        a,
        now,
    );
    let conn_b = connection(
        ("10.0.1.2", 40001),
        ("10.96.0.10", 80),
        ("10.0.2.3", 8080),
        b,
        now,
    );
    insert(&dp, &conn_a);
    insert(&dp, &conn_b);

    // Drop a, keep b (new weight), add c.
    let replaced = spec(
        r#"{"name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp", "select": "hash", "timeout_s": 100,
        "backends": [{"ip": "10.0.2.3", "port": 8080, "weight": 3}, {"ip": "10.0.2.4", "port": 8080}]}"#,
    );
    dp.apply(&replaced).unwrap();
    assert_eq!(dp.installed(&key).unwrap().id, id, "service keeps its id");
    assert_eq!(
        handle(&dp, &key, "10.0.2.3", 8080),
        b,
        "b keeps id and generation"
    );
    let c = handle(&dp, &key, "10.0.2.4", 8080);
    assert!(c.id != a.id && c.id != b.id);
    assert_eq!(dp.backend_entry(a.id).unwrap().flags & BACKEND_ACTIVE, 0);
    assert_eq!(
        dp.backend_entry(b.id).unwrap().flags & BACKEND_ACTIVE,
        BACKEND_ACTIVE
    );
    // a's entries stay in the table: the datapath ends the connection at
    // its next packet (backend inactive) and reuses the slots.
    assert_eq!(present(&dp, &conn_a), vec![true, true]);
    assert_eq!(
        present(&dp, &conn_b),
        vec![true, true],
        "b's connection kept"
    );
    let svc = dp.service_entry(&key).unwrap().unwrap();
    assert_eq!(
        dp.ring_entries(id, svc.slot_count).unwrap(),
        vec![b.id, b.id, c.id, b.id]
    );

    // Deleting the service deactivates b too.
    dp.remove(&key).unwrap();
    assert_eq!(dp.backend_entry(b.id).unwrap().flags & BACKEND_ACTIVE, 0);
}

#[test]
fn reused_backend_id_gets_a_new_generation() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    dp.limit_backend_ids(2); // a single backend id: 1
    let one = spec(
        r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.2.2", "port": 80}]}"#,
    );
    dp.apply(&one).unwrap();
    let first = handle(&dp, &one.key(), "10.0.2.2", 80);
    dp.remove(&one.key()).unwrap();
    let other = spec(
        r#"{"vip": "10.96.0.11", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.2.9", "port": 80}]}"#,
    );
    dp.apply(&other).unwrap();
    let second = handle(&dp, &other.key(), "10.0.2.9", 80);
    assert_eq!(second.id, first.id);
    assert_eq!(second.generation, first.generation + 1);
    assert_eq!(
        dp.backend_entry(second.id).unwrap().generation,
        second.generation
    );
}

#[test]
fn failure_midway_rolls_back() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    dp.limit_backend_ids(4); // ids 1, 2, 3
    let web = spec(WEB);
    dp.apply(&web).unwrap();
    let key = web.key();
    let before_installed = dp.installed(&key).unwrap().clone();
    let before_service = dp.service_entry(&key).unwrap();
    let before_backends: Vec<_> = (1..4).map(|i| dp.backend_entry(i).unwrap()).collect();
    let before_ring = dp.ring_entries(before_installed.id, 8).unwrap();

    // Three new backends need ids 3, then none left: fails after writing one.
    let bigger = spec(
        r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp",
        "backends": [{"ip": "10.0.2.2", "port": 8080}, {"ip": "10.0.2.5", "port": 1}, {"ip": "10.0.2.6", "port": 1}, {"ip": "10.0.2.7", "port": 1}]}"#,
    );
    let err = dp.apply(&bigger).unwrap_err();
    assert!(matches!(err, DatapathError::Full(_)), "{err}");
    assert_eq!(dp.installed(&key).unwrap(), &before_installed);
    assert_eq!(dp.service_entry(&key).unwrap(), before_service);
    let after_backends: Vec<_> = (1..4).map(|i| dp.backend_entry(i).unwrap()).collect();
    assert_eq!(after_backends, before_backends);
    assert_eq!(
        dp.ring_entries(before_installed.id, 8).unwrap(),
        before_ring
    );

    // The id taken by the failed change was given back.
    let small = spec(
        r#"{"vip": "10.96.0.12", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.2.9", "port": 1}]}"#,
    );
    dp.apply(&small).unwrap();
    assert_eq!(handle(&dp, &small.key(), "10.0.2.9", 1).id, 3);
}

#[test]
fn restore_adopts_ids_and_drops_the_rest() {
    let dirs = Dirs::new();
    let web = spec(WEB);
    let key = web.key();
    let stale = spec(
        r#"{"vip": "10.96.0.20", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.3.3", "port": 80}]}"#,
    );
    let (installed, conn) = {
        let mut dp = dirs.load();
        dp.restore(&[]).unwrap();
        dp.apply(&stale).unwrap();
        dp.apply(&web).unwrap();
        let a = handle(&dp, &key, "10.0.2.2", 8080);
        let conn = connection(
            ("10.0.1.2", 40000),
            ("10.96.0.10", 80),
            ("10.0.2.2", 8080),
            a,
            monotonic_coarse_ns(),
        );
        insert(&dp, &conn);
        (dp.installed(&key).unwrap().clone(), conn)
        // Dropped here: like a daemon exit, the maps stay pinned.
    };
    let stale_backend = 1; // first id given out, to the stale service
    let mut dp = dirs.load();
    assert_eq!(
        dp.installed_keys().count(),
        0,
        "nothing adopted before restore"
    );
    dp.restore(std::slice::from_ref(&web)).unwrap();
    assert_eq!(
        dp.installed(&key).unwrap(),
        &installed,
        "same ids and generations"
    );
    assert_eq!(present(&dp, &conn), vec![true, true], "connection survives");
    assert_eq!(
        dp.service_entry(&stale.key()).unwrap(),
        None,
        "stale service removed"
    );
    assert_eq!(dp.vip_entry(ip("10.96.0.20")).unwrap(), None);
    assert_eq!(dp.vip_entry(ip("10.96.0.10")).unwrap(), Some(1));
    assert_eq!(
        dp.backend_entry(stale_backend).unwrap().flags & BACKEND_ACTIVE,
        0
    );
    // New allocations avoid adopted ids.
    let more = spec(
        r#"{"vip": "10.96.0.30", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.4.4", "port": 80}]}"#,
    );
    dp.apply(&more).unwrap();
    let taken: Vec<u32> = installed.backends.values().map(|h| h.id).collect();
    assert!(!taken.contains(&handle(&dp, &more.key(), "10.0.4.4", 80).id));
    assert_ne!(dp.installed(&more.key()).unwrap().id, installed.id);
}

#[test]
fn scan_counts_live_pairs() {
    let dirs = Dirs::new();
    let dp = dirs.load();
    let h = BackendHandle {
        id: 7,
        generation: 1,
    };
    let s = 1_000_000_000u64;
    let now = 10_000 * s;
    let vip = ("10.96.0.10", 80);
    let be = ("10.0.2.2", 8080);
    // timeout 100 s.
    let idle = connection(("10.0.1.2", 1000), vip, be, h, now - 101 * s);
    let fresh = connection(("10.0.1.2", 1001), vip, be, h, now - 5 * s);
    let mut one_way = connection(("10.0.1.2", 1002), vip, be, h, now - 500 * s);
    one_way[1].1.last_seen_ns = now - s; // replies still flowing
    let orphan = [connection(("10.0.1.2", 1003), vip, be, h, now - 200 * s)[0]];
    // An idle DSR entry (forward only) is not kept alive by the busy reply
    // entry its peer key happens to name (one_way's).
    let mut dsr = [connection(("10.0.1.2", 1002), ("10.96.0.11", 80), be, h, now - 200 * s)[0]];
    dsr[0].1.mode = lb_common::service::mode::DSR;
    for c in [&idle[..], &fresh[..], &one_way[..], &orphan[..], &dsr[..]] {
        insert(&dp, c);
    }
    let report = dp.conntrack().scan_at(now).unwrap();
    assert_eq!(report.used, 8);
    assert_eq!(report.live, 4, "fresh and one-way-busy pairs");
    assert_eq!(dp.conntrack().last_entry_count(), 4);
    // Nothing is deleted: the datapath reuses expired slots.
    assert_eq!(present(&dp, &idle), vec![true, true]);
    assert_eq!(dp.conntrack().scan_at(now + 1000 * s).unwrap().live, 0);
}

/// Both entries of a connection land in one bucket, where the datapath
/// looks for them (`lb_common::flow_table`).
#[test]
fn insert_puts_a_pair_in_one_bucket() {
    let dirs = Dirs::new();
    let dp = dirs.load();
    let h = BackendHandle {
        id: 7,
        generation: 1,
    };
    let now = monotonic_coarse_ns();
    let pair = connection(
        ("10.0.1.2", 1000),
        ("10.96.0.10", 80),
        ("10.0.2.2", 8080),
        h,
        now,
    );
    insert(&dp, &pair);
    let all = dp.conntrack().entries().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(present(&dp, &pair), vec![true, true]);
}

#[test]
fn empty_ring_slot_index_is_per_service() {
    // Service ids index disjoint RING_SIZE blocks.
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let a = spec(WEB);
    let b = spec(
        r#"{"vip": "10.96.0.11", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.5.5", "port": 80}]}"#,
    );
    dp.apply(&a).unwrap();
    dp.apply(&b).unwrap();
    let ib = dp.installed(&b.key()).unwrap().id;
    let bid = handle(&dp, &b.key(), "10.0.5.5", 80).id;
    assert_eq!(dp.maps.ring_slot(ib * RING_SIZE).unwrap(), bid);
    let ia = dp.installed(&a.key()).unwrap().id;
    assert_ne!(dp.maps.ring_slot(ia * RING_SIZE).unwrap(), bid);
}
