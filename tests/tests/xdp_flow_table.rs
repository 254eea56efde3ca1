//! Packet fixtures for the connection table itself (`flow_table`): both
//! entries of a connection in its client's bucket, published under their
//! tags, eviction from a full bucket, reuse of expired slots, and slots
//! other CPUs are writing.

use std::net::{Ipv4Addr, SocketAddrV4};

use lb_common::{
    GlobalStat,
    flow_table::{FLOW_WAYS, tag},
    proto,
};
use tests::{
    dnat_fixture::*,
    xdp::{Harness, START_CLOCK_NS, ip_be},
};

const S: u64 = 1_000_000_000;

/// `n` client ends (address, port) whose connections all hash to one bucket.
fn clients_in_one_bucket(n: usize) -> Vec<SocketAddrV4> {
    let mut out: Vec<SocketAddrV4> = Vec::new();
    let mut bucket = None;
    'search: for host in 2..=250u8 {
        for port in 1024..=65535u16 {
            let c = SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, host), port);
            let b = Harness::client_bucket(c, proto::TCP);
            if *bucket.get_or_insert(b) == b {
                out.push(c);
                if out.len() == n {
                    break 'search;
                }
            }
        }
    }
    assert_eq!(out.len(), n, "found {n} clients sharing a bucket");
    out
}

/// Whether the table holds the forward entry of `c`'s connection.
fn has_connection(fx: &DnatFixture, c: SocketAddrV4) -> bool {
    fx.lb.conntrack().unwrap().iter().any(|(k, _)| {
        k.src_ip == ip_be(*c.ip()) && k.src_port == c.port().to_be() && k.proto == proto::TCP
    })
}

#[test]
fn both_entries_of_a_connection_share_the_clients_bucket() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let entries = fx.lb.conntrack().unwrap();
    assert_eq!(entries.len(), 2);
    // Both in the bucket of the client end: the forward entry keyed from
    // the client, the reply entry keyed toward it.
    let bucket = fx
        .lb
        .conntrack_bucket(Harness::client_bucket(CLIENT, proto::TCP))
        .unwrap();
    assert_eq!(bucket.len(), 2, "{bucket:?}");
    let client = (ip_be(*CLIENT.ip()), CLIENT.port().to_be());
    assert!(bucket.iter().any(|(k, _)| (k.src_ip, k.src_port) == client));
    assert!(bucket.iter().any(|(k, _)| (k.dst_ip, k.dst_port) == client));
}

/// A bucket filled with connections one second apart (the oldest first),
/// and one more client of that bucket (last of the clients).
fn full_bucket() -> (DnatFixture, Vec<SocketAddrV4>, usize) {
    let mut fx = DnatFixture::new().unwrap();
    let per_bucket = FLOW_WAYS / 2;
    let clients = clients_in_one_bucket(per_bucket + 1);
    for (i, &c) in clients[..per_bucket].iter().enumerate() {
        fx.lb.set_clock(START_CLOCK_NS + i as u64 * S).unwrap();
        let run = fx.from_client(&syn_from(c)).unwrap();
        assert_eq!(run.action, XDP_REDIRECT);
    }
    (fx, clients, per_bucket)
}

#[test]
fn a_full_bucket_evicts_the_connection_seen_longest_ago() {
    let (mut fx, clients, per_bucket) = full_bucket();
    assert_eq!(fx.lb.global(GlobalStat::ConntrackEvicted).unwrap(), 0);

    fx.lb
        .set_clock(START_CLOCK_NS + per_bucket as u64 * S)
        .unwrap();
    let newest = clients[per_bucket];
    let run = fx.from_client(&syn_from(newest)).unwrap();
    assert_eq!(run.action, XDP_REDIRECT, "the new connection is balanced");
    // Its two entries took the two slots of the oldest connection.
    assert_eq!(fx.lb.global(GlobalStat::ConntrackEvicted).unwrap(), 2);
    assert!(!has_connection(&fx, clients[0]), "oldest evicted");
    for &c in &clients[1..] {
        assert!(has_connection(&fx, c), "{c} kept");
    }
}

#[test]
fn a_full_bucket_evicts_closing_connections_before_open_ones() {
    let (mut fx, clients, per_bucket) = full_bucket();
    // The newest connection closes (RST); the older ones stay open.
    let closing = clients[per_bucket - 1];
    let rst = client_tcp(TCP_VIP).addrs(closing, TCP_VIP).rst();
    assert_eq!(fx.from_client(&rst).unwrap().action, XDP_REDIRECT);

    fx.lb
        .set_clock(START_CLOCK_NS + per_bucket as u64 * S)
        .unwrap();
    let run = fx.from_client(&syn_from(clients[per_bucket])).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert!(!has_connection(&fx, closing), "the closing one went");
    for &c in clients[..per_bucket - 1]
        .iter()
        .chain(&clients[per_bucket..])
    {
        assert!(has_connection(&fx, c), "{c} kept");
    }
    assert_eq!(
        fx.lb.global(GlobalStat::ConntrackEvicted).unwrap(),
        0,
        "no open connection evicted"
    );
}

#[test]
fn expired_slots_are_reused_before_live_ones() {
    let mut fx = DnatFixture::new().unwrap();
    let per_bucket = FLOW_WAYS / 2;
    let clients = clients_in_one_bucket(per_bucket + 1);
    // The first connection is old enough to have expired (TCP timeout
    // 3600 s), the others are fresh.
    fx.from_client(&syn_from(clients[0])).unwrap();
    let later = START_CLOCK_NS + 4000 * S;
    fx.lb.set_clock(later).unwrap();
    for &c in &clients[1..per_bucket] {
        fx.from_client(&syn_from(c)).unwrap();
    }
    let run = fx.from_client(&syn_from(clients[per_bucket])).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(
        fx.lb.global(GlobalStat::ConntrackEvicted).unwrap(),
        0,
        "no live connection evicted"
    );
    assert!(!has_connection(&fx, clients[0]));
    for &c in &clients[1..] {
        assert!(has_connection(&fx, c));
    }
}

#[test]
fn a_slot_another_cpu_is_writing_drops_the_new_connection() {
    let mut fx = DnatFixture::new().unwrap();
    let bucket = Harness::client_bucket(CLIENT, proto::TCP);
    fx.lb.set_bucket_claimed(bucket, true).unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(fx.lb.global(GlobalStat::DropFlowBusy).unwrap(), 1);
    assert!(
        fx.lb.conntrack().unwrap().is_empty(),
        "nothing half-written"
    );

    // Released: the retransmitted SYN gets through.
    fx.lb.set_bucket_claimed(bucket, false).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    // Round robin moved on when it picked backend 1 for the dropped SYN.
    assert_eq!(run.output, expect_forwarded(&syn, BACKEND2).bytes());
    assert_eq!(fx.lb.conntrack().unwrap().len(), 2);
}

#[test]
fn a_connections_entries_are_published_under_their_keys_tags() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let (b, tags) = fx
        .lb
        .bucket_raw(Harness::client_bucket(CLIENT, proto::TCP))
        .unwrap();
    let used: Vec<usize> = (0..FLOW_WAYS)
        .filter(|&w| tag::used(tag::at(tags, w)))
        .collect();
    assert_eq!(used.len(), 2, "two slots published: {tags:#x}");
    for w in used {
        assert_eq!(tag::at(tags, w), tag::of(&b.keys[w]), "way {w}");
    }
    for w in 0..FLOW_WAYS {
        assert_ne!(tag::at(tags, w), tag::CLAIMED, "no claim left behind");
    }
}

#[test]
fn a_slot_whose_tag_is_not_its_keys_is_not_found() {
    let mut fx = DnatFixture::new().unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let bucket = Harness::client_bucket(CLIENT, proto::TCP);
    let (b, tags) = fx.lb.bucket_raw(bucket).unwrap();
    // The forward entry's slot marked free: its key is there, but a lookup
    // goes by the tags.
    let forward = (0..FLOW_WAYS)
        .find(|&w| b.keys[w].src_ip == ip_be(*CLIENT.ip()) && tag::used(tag::at(tags, w)))
        .unwrap();
    fx.lb
        .set_bucket_tags(bucket, tag::with(tags, forward, tag::FREE))
        .unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP)).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(
        fx.lb
            .service_counters(TCP_SERVICE_ID)
            .unwrap()
            .new_connections,
        2,
        "scheduled as a new connection"
    );
}

#[test]
fn a_new_connection_that_gets_one_slot_of_two_gives_it_back() {
    let mut fx = DnatFixture::new().unwrap();
    let bucket = Harness::client_bucket(CLIENT, proto::TCP);
    // Every slot but the last claimed by other CPUs: the reply entry gets
    // the last one, the forward entry none.
    let others = (0..FLOW_WAYS - 1).fold(0, |w, way| tag::with(w, way, tag::CLAIMED));
    fx.lb.set_bucket_tags(bucket, others).unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(fx.lb.global(GlobalStat::DropFlowBusy).unwrap(), 1);
    let (_, tags) = fx.lb.bucket_raw(bucket).unwrap();
    assert_eq!(tags, others, "the last slot is free again");

    fx.lb.set_bucket_tags(bucket, 0).unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(fx.lb.conntrack().unwrap().len(), 2);
}
