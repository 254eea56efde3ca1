//! The setup of the encapsulation packet fixtures: the fixture namespace
//! (`fixture_net`) plus nodes on its backend link, tunnel routes for pod
//! networks behind them, the load balancer's tunnel endpoints, and a TCP and
//! a UDP service on the VIP whose backend is one pod (DNAT, or DSR with
//! [`EncapFixture::dsr`]).
//!
//! ```text
//!   load balancer's tunnel source 10.0.2.1 (fx-backend, 02:..:02:01)
//!   node-ipip  10.0.2.20 (02:..:02:14): pods 10.244.1.0/24, IPIP
//!   node-vxlan 10.0.2.21 (02:..:02:15): pods 10.244.2.0/24, VXLAN VNI 0x123456 port 8472,
//!              VTEP MAC 0a:00:00:00:00:15
//!   10.244.3.0/24: encap none, routed via 10.0.2.3 (a backend of fixture_net)
//!   node-small 10.0.2.22 (02:..:02:16), route MTU 70: pods 10.244.4.0/24, IPIP
//!   10.0.2.9 (no neighbour entry): pods 10.244.5.0/24, IPIP
//!   pods 10.244.6.0/24: IPIP, tunnel source unresolved (0)
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Result;
use etherparse::Ipv4Header;
use lb_common::{
    Tunnel, TunnelEndpoint,
    hash::spread_hash,
    limits::{DEFAULT_TCP_TIMEOUT_S, DEFAULT_UDP_TIMEOUT_S},
    proto,
    service::{mode, select},
    tunnel::{encap, vni_wire},
};

use crate::{
    dnat_fixture::{CLIENT, TCP_VIP, UDP_VIP},
    fixture_net::{BACKEND_IF, BACKEND_IF_MAC, FixtureNet, ip, mac_str},
    ipip,
    packets::{Frame, Mac},
    vxlan::{self, FLANNEL_PORT},
    xdp::{Harness, Run, TestService, ip_be},
};

pub const TUNNEL_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
/// The load balancer's VTEP MAC: its backend-side interface's.
pub const LB_VTEP_MAC: Mac = BACKEND_IF_MAC;

pub const NODE_IPIP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 20);
pub const NODE_IPIP_MAC: Mac = [2, 0, 0, 0, 2, 0x14];
pub const NODE_VXLAN: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 21);
pub const NODE_VXLAN_MAC: Mac = [2, 0, 0, 0, 2, 0x15];
pub const NODE_VTEP_MAC: Mac = [0x0a, 0, 0, 0, 0, 0x15];
pub const VNI: u32 = 0x12_3456;
pub const NODE_SMALL: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 22);
pub const NODE_SMALL_MAC: Mac = [2, 0, 0, 0, 2, 0x16];
pub const SMALL_MTU: u16 = 70;
pub const NODE_NO_NEIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 9);
pub const PLAIN_VIA: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// Pod addresses behind each route.
pub const POD_IPIP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 5);
pub const POD_VXLAN: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 5);
pub const POD_PLAIN: Ipv4Addr = Ipv4Addr::new(10, 244, 3, 5);
pub const POD_SMALL: Ipv4Addr = Ipv4Addr::new(10, 244, 4, 5);
pub const POD_NO_NEIGH: Ipv4Addr = Ipv4Addr::new(10, 244, 5, 5);
pub const POD_NO_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 244, 6, 5);

pub const TCP_PORT: u16 = 8080;
pub const UDP_PORT: u16 = 5353;

pub struct EncapFixture {
    pub net: FixtureNet,
    pub lb: Harness,
}

/// A tunnel route toward `node_ip` of kind `kind` (`encap::*`), from tunnel
/// source `src` (unspecified: not resolved).
pub fn tunnel(node_ip: Ipv4Addr, kind: u8, src: Ipv4Addr) -> Tunnel {
    let vxlan = kind == encap::VXLAN;
    Tunnel {
        node_ip: ip_be(node_ip),
        vni: if vxlan { VNI } else { 0 },
        dst_port: if vxlan { FLANNEL_PORT.to_be() } else { 0 },
        vtep_mac: if vxlan { NODE_VTEP_MAC } else { [0; 6] },
        encap: kind,
        _pad: [0; 3],
        src_ip: ip_be(src),
        src_mac: if vxlan { LB_VTEP_MAC } else { [0; 6] },
        _pad2: 0,
    }
}

impl EncapFixture {
    /// The setup above, with the TCP (port 80 → `pod`:8080) and UDP (53 →
    /// `pod`:5353) services balancing to the one pod `pod`.
    pub fn new(pod: Ipv4Addr) -> Result<EncapFixture> {
        EncapFixture::with_ports(pod, TCP_PORT, UDP_PORT)
    }

    /// The setup above with both services in direct-server-return mode
    /// (`mode::DSR`), their backend `pod` on the VIPs' own ports (80, 53).
    pub fn dsr(pod: Ipv4Addr) -> Result<EncapFixture> {
        let mut fx = EncapFixture::with_ports(pod, TCP_VIP.port(), UDP_VIP.port())?;
        fx.lb.set_service_mode(TCP_VIP, proto::TCP, mode::DSR)?;
        fx.lb.set_service_mode(UDP_VIP, proto::UDP, mode::DSR)?;
        Ok(fx)
    }

    fn with_ports(pod: Ipv4Addr, tcp_port: u16, udp_port: u16) -> Result<EncapFixture> {
        let net = FixtureNet::enter()?;
        let n = net.name.as_str();
        for (addr, mac) in [
            (NODE_IPIP, NODE_IPIP_MAC),
            (NODE_VXLAN, NODE_VXLAN_MAC),
            (NODE_SMALL, NODE_SMALL_MAC),
        ] {
            ip(&[
                "-n",
                n,
                "neigh",
                "replace",
                &addr.to_string(),
                "lladdr",
                &mac_str(mac),
                "dev",
                BACKEND_IF,
                "nud",
                "permanent",
            ])?;
        }
        ip(&[
            "-n",
            n,
            "route",
            "add",
            "10.0.2.22/32",
            "dev",
            BACKEND_IF,
            // Locked: the forwarding path (and bpf_fib_lookup) honours a
            // route's MTU only then (or with ip_forward_use_pmtu).
            "mtu",
            "lock",
            &SMALL_MTU.to_string(),
        ])?;
        ip(&[
            "-n",
            n,
            "route",
            "add",
            "10.244.3.0/24",
            "via",
            &PLAIN_VIA.to_string(),
        ])?;

        let mut lb = Harness::load()?;
        lb.add_tx_port(net.client_ifindex)?;
        lb.add_tx_port(net.backend_ifindex)?;
        for (net_addr, node, kind, src) in [
            ([10, 244, 1, 0], NODE_IPIP, encap::IPIP, TUNNEL_SOURCE),
            ([10, 244, 2, 0], NODE_VXLAN, encap::VXLAN, TUNNEL_SOURCE),
            (
                [10, 244, 3, 0],
                PLAIN_VIA,
                encap::NONE,
                Ipv4Addr::UNSPECIFIED,
            ),
            ([10, 244, 4, 0], NODE_SMALL, encap::IPIP, TUNNEL_SOURCE),
            ([10, 244, 5, 0], NODE_NO_NEIGH, encap::IPIP, TUNNEL_SOURCE),
            (
                [10, 244, 6, 0],
                NODE_IPIP,
                encap::IPIP,
                Ipv4Addr::UNSPECIFIED,
            ),
        ] {
            lb.add_tunnel(Ipv4Addr::from(net_addr), 24, tunnel(node, kind, src))?;
        }
        for (port, p, vni) in [(0, proto::IPIP, 0), (FLANNEL_PORT, proto::UDP, VNI)] {
            lb.add_tunnel_endpoint(TunnelEndpoint {
                addr: ip_be(TUNNEL_SOURCE),
                port: port.to_be(),
                proto: p,
                _pad: 0,
                vni: vni_wire(vni),
            })?;
        }
        lb.add_service(&TestService {
            id: 1,
            vip: TCP_VIP,
            proto: proto::TCP,
            select: select::ROUND_ROBIN,
            timeout_s: DEFAULT_TCP_TIMEOUT_S,
            backends: vec![SocketAddrV4::new(pod, tcp_port)],
        })?;
        lb.add_service(&TestService {
            id: 2,
            vip: UDP_VIP,
            proto: proto::UDP,
            select: select::ROUND_ROBIN,
            timeout_s: DEFAULT_UDP_TIMEOUT_S,
            backends: vec![SocketAddrV4::new(pod, udp_port)],
        })?;
        Ok(EncapFixture { net, lb })
    }

    /// Runs `frame` as received from the client side.
    pub fn from_client(&self, frame: &Frame) -> Result<Run> {
        self.lb.run(&frame.bytes(), self.net.client_ifindex)
    }

    /// Runs raw `bytes` as received from the node side.
    pub fn from_nodes(&self, bytes: &[u8]) -> Result<Run> {
        self.lb.run(bytes, self.net.backend_ifindex)
    }
}

/// The outer header fields copied from the inner packet: identification,
/// DF, DSCP/ECN.
pub fn copy_inner_fields(outer: &mut Ipv4Header, inner: &Frame) {
    outer.identification = inner.ip.identification;
    outer.dont_fragment = inner.ip.dont_fragment;
    outer.dscp = inner.ip.dscp;
    outer.ecn = inner.ip.ecn;
}

/// The UDP source port the load balancer must use for packets of the
/// connection that arrived as `input`.
pub fn expected_src_port(input: &Frame, proto: u8) -> u16 {
    let (sport, dport) = match &input.l4 {
        crate::packets::L4::Tcp(t) => (t.source_port, t.destination_port),
        crate::packets::L4::Udp(u) => (u.source_port, u.destination_port),
    };
    let h = spread_hash(
        u32::from_ne_bytes(input.ip.source),
        u32::from_ne_bytes(input.ip.destination),
        sport.to_be(),
        dport.to_be(),
        proto,
    );
    crate::vxlan::linux_src_port(h)
}

/// The pod's reply to the connection `input` started, as the pod sends it.
pub fn pod_reply(input: &Frame, backend: SocketAddrV4) -> Frame {
    input.clone().addrs(backend, CLIENT)
}

/// `reply` from pod `pod` as its node sends it back: VXLAN to flannel's
/// port from the VXLAN pod's node, IPIP from the IPIP pod's.
pub fn node_reply(pod: Ipv4Addr, reply: &Frame) -> Vec<u8> {
    if pod == POD_VXLAN {
        vxlan_reply(reply, FLANNEL_PORT)
    } else {
        ipip_reply(reply)
    }
}

/// `reply` as the IPIP node sends it to the load balancer's tunnel source.
pub fn ipip_reply(reply: &Frame) -> Vec<u8> {
    ipip::encapsulate(
        NODE_IPIP_MAC,
        BACKEND_IF_MAC,
        NODE_IPIP,
        TUNNEL_SOURCE,
        &ipip::inner_packet(reply),
    )
}

/// `reply` as the VXLAN node sends it (VNI `VNI`) to the load balancer's
/// tunnel source, UDP port `dst_port`.
pub fn vxlan_reply(reply: &Frame, dst_port: u16) -> Vec<u8> {
    vxlan_reply_vni(reply, dst_port, VNI)
}

/// The same with VXLAN network identifier `vni`.
pub fn vxlan_reply_vni(reply: &Frame, dst_port: u16, vni: u32) -> Vec<u8> {
    vxlan::encapsulate(
        NODE_VXLAN_MAC,
        BACKEND_IF_MAC,
        NODE_VXLAN,
        TUNNEL_SOURCE,
        50123,
        dst_port,
        vni,
        &reply.clone().macs(NODE_VTEP_MAC, LB_VTEP_MAC).bytes(),
    )
}
