//! Packet fixtures: the rate limit of the ICMP fragmentation-needed answers
//! built in XDP (`frag_needed.rs`). Each CPU has a token bucket refilled
//! from the datapath clock at `ICMP_LIMIT`'s rate up to its burst; with the
//! bucket empty the oversized packet is dropped and counted
//! (`drop_frag_needed_rate_limited`). The test thread stays on one CPU:
//! the bucket is that CPU's. Setup: tests/src/encap_fixture.rs (the nodes'
//! link has MTU 1500: 1480 bytes fit an IPIP tunnel, 1450 VXLAN, 1430
//! DSR behind VXLAN).

use std::net::Ipv4Addr;

use lb_common::{GlobalStat, icmp_limit};
use tests::{
    dnat_fixture::{TCP_VIP, UDP_VIP, XDP_DROP, XDP_REDIRECT, client_tcp, client_udp},
    encap_fixture::*,
    frag_needed_expect::{assert_answered, expect_frag_needed, oversized},
    packets::Frame,
    xdp::{START_CLOCK_NS, stay_on_this_cpu},
};

const MS: u64 = 1_000_000;

/// `EncapFixture::new` or `EncapFixture::dsr`.
type Fixture = fn(Ipv4Addr) -> anyhow::Result<EncapFixture>;

/// Sends `n` oversized DF packets (alternating TCP and UDP) and checks that
/// each gets its exact answer carrying `fits`.
fn answered(fx: &EncapFixture, n: u32, fits: usize, what: &str) {
    for i in 0..n {
        let f = packet(i, fits);
        let run = fx.from_client(&f).unwrap();
        assert_answered(&run, &f, fits as u16, format_args!("{what}: answer {i}"));
    }
}

/// The next oversized DF packet is dropped.
fn dropped(fx: &EncapFixture, fits: usize, what: &str) {
    let run = fx.from_client(&packet(0, fits)).unwrap();
    assert_eq!(run.action, XDP_DROP, "{what}: limited");
}

fn packet(i: u32, fits: usize) -> Frame {
    if i.is_multiple_of(2) {
        oversized(client_tcp(TCP_VIP), fits + 1 + i as usize)
    } else {
        oversized(client_udp(UDP_VIP), fits + 1 + i as usize)
    }
}

fn counts(fx: &EncapFixture) -> (u64, u64) {
    (
        fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(),
        fx.lb.global(GlobalStat::DropFragNeededRateLimited).unwrap(),
    )
}

#[test]
fn answers_stop_after_the_burst_and_resume_at_the_rate() {
    stay_on_this_cpu().unwrap();
    // (fixture, largest packet that fits)
    let cases: [(&str, Fixture, Ipv4Addr, usize); 3] = [
        ("ipip", EncapFixture::new, POD_IPIP, 1480),
        ("vxlan", EncapFixture::new, POD_VXLAN, 1450),
        ("dsr behind vxlan", EncapFixture::dsr, POD_VXLAN, 1430),
    ];
    for (what, make, pod, fits) in cases {
        let mut fx = make(pod).unwrap();
        // 10 per second: one token every 100 ms (one clock tick).
        fx.lb.set_icmp_limit(10, 3).unwrap();
        answered(&fx, 3, fits, what);
        dropped(&fx, fits, what);
        assert_eq!(counts(&fx), (3, 1), "{what}");

        // What fits still goes through, and takes no token.
        let ok = oversized(client_tcp(TCP_VIP), fits);
        assert_eq!(fx.from_client(&ok).unwrap().action, XDP_REDIRECT, "{what}");
        dropped(&fx, fits, what);

        // Just under a token's time: still nothing.
        fx.lb.set_clock(START_CLOCK_NS + 99 * MS).unwrap();
        dropped(&fx, fits, what);
        // One tick: one token.
        fx.lb.set_clock(START_CLOCK_NS + 100 * MS).unwrap();
        answered(&fx, 1, fits, what);
        dropped(&fx, fits, what);
        // A long pause fills the bucket to the burst, no more.
        fx.lb.set_clock(START_CLOCK_NS + 60_000 * MS).unwrap();
        answered(&fx, 3, fits, what);
        dropped(&fx, fits, what);
        assert_eq!(counts(&fx), (7, 5), "{what}");
        assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 0);
    }
}

#[test]
fn unwritten_limit_is_linux_burst_of_fifty() {
    stay_on_this_cpu().unwrap();
    let mut fx = EncapFixture::new(POD_IPIP).unwrap();
    let burst = icmp_limit::DEFAULT_BURST;
    answered(&fx, burst, 1480, "default");
    dropped(&fx, 1480, "default");
    assert_eq!(counts(&fx), (u64::from(burst), 1));
    // 1000 per second: 100 ms refill more than the burst.
    fx.lb.set_clock(START_CLOCK_NS + 100 * MS).unwrap();
    answered(&fx, burst, 1480, "default, refilled");
    dropped(&fx, 1480, "default, refilled");
    assert_eq!(counts(&fx), (2 * u64::from(burst), 2));
}

#[test]
fn a_packet_without_df_is_not_limited() {
    stay_on_this_cpu().unwrap();
    let mut fx = EncapFixture::new(POD_SMALL).unwrap();
    fx.lb.set_icmp_limit(1, 1).unwrap();
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    assert_eq!(run.output, expect_frag_needed(&data, SMALL_MTU - 20));
    assert_eq!(fx.from_client(&data).unwrap().action, XDP_DROP);
    // Without DF the stack fragments: no answer, no token needed.
    let mut no_df = client_tcp(TCP_VIP);
    no_df.ip.dont_fragment = false;
    for _ in 0..3 {
        assert_ne!(fx.from_client(&no_df).unwrap().action, XDP_DROP);
    }
    assert_eq!(counts(&fx), (1, 1));
    assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 3);
}
