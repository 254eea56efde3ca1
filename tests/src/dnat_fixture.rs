//! The standard setup of the DNAT packet fixtures: a fixture namespace, the
//! datapath loaded, both interfaces in the device map, and two services on
//! VIP 10.96.0.10 (TCP 80 and UDP 53) over backends 10.0.2.2 and 10.0.2.3.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Result;
use lb_common::{
    limits::{DEFAULT_TCP_TIMEOUT_S, DEFAULT_UDP_TIMEOUT_S},
    proto,
    service::select,
};

use crate::{
    fixture_net::{
        BACKEND_IF_MAC, BACKEND1_MAC, BACKEND2_MAC, CLIENT_IF_MAC, CLIENT_MAC, FixtureNet,
    },
    packets::{Frame, Mac},
    xdp::{Harness, Run, TestService},
};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
pub const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 2), 40000);
pub const TCP_VIP: SocketAddrV4 = SocketAddrV4::new(VIP, 80);
pub const UDP_VIP: SocketAddrV4 = SocketAddrV4::new(VIP, 53);
pub const BACKEND1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 8080);
pub const BACKEND2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 3), 8080);
pub const UDP_BACKEND1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 5353);
pub const UDP_BACKEND2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 3), 5353);
pub const TCP_SERVICE_ID: u32 = 3;
pub const UDP_SERVICE_ID: u32 = 7;

pub struct DnatFixture {
    pub net: FixtureNet,
    pub lb: Harness,
    pub tcp_backend_ids: Vec<u32>,
    pub udp_backend_ids: Vec<u32>,
}

impl DnatFixture {
    /// Standard setup with round-robin services.
    pub fn new() -> Result<DnatFixture> {
        DnatFixture::with_select(select::ROUND_ROBIN)
    }

    pub fn with_select(sel: u8) -> Result<DnatFixture> {
        let net = FixtureNet::enter()?;
        let mut lb = Harness::load()?;
        lb.add_tx_port(net.client_ifindex)?;
        lb.add_tx_port(net.backend_ifindex)?;
        let tcp_backend_ids = lb.add_service(&TestService {
            id: TCP_SERVICE_ID,
            vip: TCP_VIP,
            proto: proto::TCP,
            select: sel,
            timeout_s: DEFAULT_TCP_TIMEOUT_S,
            backends: vec![BACKEND1, BACKEND2],
        })?;
        let udp_backend_ids = lb.add_service(&TestService {
            id: UDP_SERVICE_ID,
            vip: UDP_VIP,
            proto: proto::UDP,
            select: sel,
            timeout_s: DEFAULT_UDP_TIMEOUT_S,
            backends: vec![UDP_BACKEND1, UDP_BACKEND2],
        })?;
        Ok(DnatFixture {
            net,
            lb,
            tcp_backend_ids,
            udp_backend_ids,
        })
    }

    /// Runs `frame` as received from the client side.
    pub fn from_client(&self, frame: &Frame) -> Result<Run> {
        self.lb.run(&frame.bytes(), self.net.client_ifindex)
    }

    /// Runs `frame` as received from the backend side.
    pub fn from_backend(&self, frame: &Frame) -> Result<Run> {
        self.lb.run(&frame.bytes(), self.net.backend_ifindex)
    }
}

/// MAC of the backend at `addr`.
pub fn backend_mac(addr: SocketAddrV4) -> Mac {
    if addr.ip() == BACKEND2.ip() {
        BACKEND2_MAC
    } else {
        BACKEND1_MAC
    }
}

/// A TCP segment from the client to `dst`, as it arrives at the balancer.
pub fn client_tcp(dst: SocketAddrV4) -> Frame {
    Frame::tcp(CLIENT_MAC, CLIENT_IF_MAC, CLIENT, dst)
}

/// A UDP datagram from the client to `dst`.
pub fn client_udp(dst: SocketAddrV4) -> Frame {
    Frame::udp(CLIENT_MAC, CLIENT_IF_MAC, CLIENT, dst)
}

/// What the balancer must send to `backend` for `input` (client -> VIP):
/// same frame, destination rewritten, TTL decremented, MACs of the backend
/// link.
pub fn expect_forwarded(input: &Frame, backend: SocketAddrV4) -> Frame {
    let ttl = input.ip.time_to_live - 1;
    input
        .clone()
        .addrs(CLIENT, backend)
        .ttl(ttl)
        .macs(BACKEND_IF_MAC, backend_mac(backend))
}

/// A TCP SYN from `client` to the TCP VIP.
pub fn syn_from(client: SocketAddrV4) -> Frame {
    client_tcp(TCP_VIP).syn().addrs(client, TCP_VIP)
}

/// A reply from `backend` to the client, as it arrives at the balancer.
pub fn backend_reply(template: Frame, backend: SocketAddrV4) -> Frame {
    template
        .addrs(backend, CLIENT)
        .macs(backend_mac(backend), BACKEND_IF_MAC)
}

/// What the client must receive for `reply`: source rewritten to `vip`.
pub fn expect_reverse_natted(reply: &Frame, vip: SocketAddrV4) -> Frame {
    let ttl = reply.ip.time_to_live - 1;
    reply
        .clone()
        .addrs(vip, CLIENT)
        .ttl(ttl)
        .macs(CLIENT_IF_MAC, CLIENT_MAC)
}
