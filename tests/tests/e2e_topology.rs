//! The namespace topology itself, without ferrolb: the lb namespace routes
//! the client to every backend, and nftables DNAT (the benchmark's
//! comparison point) balances a VIP. If these fail, the ferrolb end-to-end
//! tests cannot mean anything.

use std::net::{SocketAddr, SocketAddrV4};

use tests::client::{self, Proto, TcpSession};
use tests::nft;
use tests::topology::{IO_TIMEOUT, Topology, VIP};

const PORT: u16 = 8080;

#[test]
fn routed_client_reaches_every_backend_directly() {
    let mut topo = Topology::new(2).expect("topology");
    topo.start_servers(PORT).expect("servers");
    for (backend, addr) in topo.backends.iter().zip(topo.backend_addrs(PORT)) {
        let tcp = topo
            .client
            .run(|| client::tcp_hello(addr, IO_TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("TCP to {addr}: {e:#}"));
        assert_eq!(tcp.backend, backend.name);
        assert_eq!(tcp.seen_client, tcp.local, "routed, not NATed");
        let udp = topo
            .client
            .run(|| client::udp_hello(addr, IO_TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("UDP to {addr}: {e:#}"));
        assert_eq!(udp.backend, backend.name);
        assert_eq!(udp.peer, SocketAddr::V4(addr));
    }
}

#[test]
fn vip_is_unreachable_without_a_load_balancer() {
    let mut topo = Topology::new(1).expect("topology");
    topo.start_servers(PORT).expect("servers");
    let vip = SocketAddrV4::new(VIP, PORT);
    let result = topo
        .client
        .run(|| client::udp_hello(vip, std::time::Duration::from_millis(500)))
        .unwrap();
    assert!(result.is_err(), "nothing serves the VIP yet: {result:?}");
}

#[test]
fn nftables_dnat_balances_the_vip_over_all_backends() {
    let mut topo = Topology::new(3).expect("topology");
    topo.start_servers(PORT).expect("servers");
    let vip = SocketAddrV4::new(VIP, PORT);
    nft::add_dnat(&topo.lb, "tcp", vip, &topo.backend_addrs(PORT)).expect("nft tcp");
    let hellos = topo
        .client
        .run(|| client::hellos(Proto::Tcp, vip, 60, IO_TIMEOUT))
        .unwrap()
        .expect("TCP through nft DNAT");
    client::check_nat(&hellos, vip).expect("NAT");
    let spread = client::spread(&hellos);
    assert_eq!(
        spread.len(),
        3,
        "random DNAT over 60 connections reaches all 3 backends: {spread:?}"
    );
}

#[test]
fn greeters_greet_then_close_every_connection() {
    // The connection-rate benchmark's backends: no echo, and no thread
    // per connection, so a run of connections is served one after another
    // by the accepting thread.
    let mut topo = Topology::new(1).expect("topology");
    topo.start_greeters(PORT).expect("greeters");
    let addr = topo.backend_addrs(PORT)[0];
    let name = topo.backends[0].name.clone();
    topo.client
        .run(|| {
            for i in 0..20 {
                let mut session = TcpSession::connect(addr, IO_TIMEOUT)
                    .unwrap_or_else(|e| panic!("connection {i}: {e:#}"));
                assert_eq!(session.hello.backend, name);
                assert_eq!(session.hello.seen_client, session.hello.local);
                let echo = session.echo("x");
                assert!(echo.is_err(), "closed after greeting: {echo:?}");
            }
        })
        .unwrap();
}
