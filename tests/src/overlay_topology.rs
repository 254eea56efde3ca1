//! The overlay topology: a client, a load balancer on a node network, and
//! Kubernetes-like nodes with pod subnets behind them, reached over VXLAN
//! (configured as flannel's `vxlan` backend does), over IPIP (decapsulated by
//! `ferrolbd --node-decap`, the kernel has no ipip module) or routed plainly
//! (flannel's `host-gw`), each in its own network namespace.
//!
//! ```text
//!  client ns               lb ns (ip_forward=1)          fabric ns
//!  eth0 10.0.1.2/24 ─veth─ c0 10.0.1.1/24
//!  default via 10.0.1.1    n0 172.16.1.1/24 ───veth─── lb ─┐
//!                          [flannel.1 10.244.0.0/32]       br0 (the node network, 172.16.1.0/24)
//!                                                     nodeN ─┘
//!                                                       │veth
//!  node ns N (ip_forward=1)                             │
//!  eth0 172.16.1.(10+N)/24, default via 172.16.1.1 ─────┘
//!  flannel.1 10.244.N.0/32, MTU 1450 (VXLAN nodes: VNI 1, dstport 8472, nolearning, local = eth0's address)
//!  cni0 10.244.N.1/24 (bridge) ─ vethJ ─veth─ pod ns N.J: eth0 10.244.N.(2+J)/24, default via 10.244.N.1
//! ```
//!
//! The node network is a Linux bridge in a namespace of its own (`fabric`),
//! not in the lb namespace: the load balancer then has exactly one interface
//! on it, `n0`, a veth like the client side, where ferrolbd attaches
//! (bridges take XDP only in generic mode). The bridge's veth ends have GRO
//! off (GRO would merge segments into packets no NIC delivers to an XDP
//! program), and its `lb` port has a pass-everything XDP program so frames
//! XDP redirects into `n0` are received ([`crate::veth_pass`]).
//!
//! Every VXLAN node has every other VXLAN node, and the load balancer, as a
//! flannel peer ([`crate::flannel`]): the load balancer joined the overlay
//! as one more "node" with the subnet 10.244.0.0/24, its VTEP MAC
//! ([`OverlayTopology::lb_vtep`]) and its node-network address 172.16.1.1 as
//! the tunnel endpoint, the way F5 BIG-IP joins a flannel cluster. Pod
//! subnets of IPIP and plain nodes are routed to the node's address.
//!
//! The load balancer namespace is either ([`LbMode`]):
//! - `Balancer`: ferrolbd's place. A router with no kernel VTEP (ferrolb's
//!   datapath is to encapsulate and decapsulate itself); its overlay address
//!   is on its loopback; `n0` has the VTEP MAC (so ferrolbd started
//!   without `--tunnel-source`/`--vtep-mac` discovers the end the nodes
//!   trust); with `lb_pod_routes` (the default) it routes every pod subnet
//!   plainly to the node's address, so plain DNAT works;
//! - `KernelVtep`: the baseline without a load balancer. A plain router that
//!   is itself a flannel-style VTEP (kernel `flannel.1` with the nodes as
//!   peers), so the client reaches a pod IP directly through VXLAN. IPIP
//!   nodes' subnets are routed plainly (no ipip module to encapsulate).
//!
//! Replies to the client ([`ClientReturn`]): nodes' default route is the load
//! balancer's node-network address (`Routed`, what plain DNAT needs); with
//! `Vxlan`, VXLAN nodes route the client network into `flannel.1` towards
//! the load balancer's VTEP instead (`10.0.1.0/24 via 10.244.0.0 dev
//! flannel.1 onlink`), the encapsulated return path.
//!
//! With [`OverlayBuilder::node_hop`] the fabric namespace is a router
//! instead: the load balancer's `n0` is routed to its `lb` port
//! (172.16.1.254/24), `br0` holds 172.16.2.1/24, the nodes are
//! 172.16.2.(10+N)/24 with it as their default gateway, and the node side
//! has a narrower MTU (so the router answers oversized encapsulated packets
//! with ICMP fragmentation-needed).
//!
//! MTUs: 1500 on every veth, 1450 on `flannel.1` (flannel's), pods 1500 by
//! default so encapsulated traffic has to deal with the MTU (PMTU discovery),
//! or 1450 as flannel configures them ([`OverlayBuilder::pod_mtu`]).
//! Pods' and nodes' uplinks are prepared like hosts
//! ([`crate::topology::prepare_host_dev`]: GRO on, TX checksum offload and
//! GSO off).
//!
//! Names are unique ([`crate::netns`]); dropping the topology stops what it
//! started (servers, decapsulating daemons) and deletes every namespace.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::{Context, Result, ensure};
use lb_userspace::config::{DEFAULT_VNI, DEFAULT_VXLAN_PORT, Encap, Ipv4Cidr, MacAddr, TunnelSpec};

use crate::daemon::{Daemon, DaemonConfig};
use crate::flannel::{self, Vtep};
use crate::netns::{Netns, cleanup_stale, veth};
use crate::process::Proc;
use crate::server;
use crate::topology::{CLIENT_IP, HOST_DEV, LB_CLIENT_DEV, connect_client, prepare_host_dev};
use crate::veth_pass::VethPass;

/// The load balancer's interface on the node network.
pub const LB_NODE_DEV: &str = "n0";
/// The load balancer's node-network address: nodes' default gateway, and
/// its tunnel source (`ferrolbd --tunnel-source`).
pub const LB_NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
/// Prefix length of the node network 172.16.1.0/24.
pub const NODE_NET_PREFIX: u8 = 24;
/// The bridge of the node network (in the fabric namespace).
pub const FABRIC_BRIDGE: &str = "br0";
/// A node's interface on the node network.
pub const UPLINK_DEV: &str = HOST_DEV;
/// The bridge pods attach to on a node (the CNI bridge plugin's name).
pub const CNI_BRIDGE: &str = "cni0";
/// A pod's interface.
pub const POD_DEV: &str = HOST_DEV;
/// MTU of every veth ("physical" links).
pub const LINK_MTU: u32 = 1500;
/// MTU of `flannel.1`.
pub const VXLAN_MTU: u32 = LINK_MTU - flannel::OVERHEAD;
/// With a router between the load balancer and the nodes
/// ([`OverlayBuilder::node_hop`]): the router's address on the load
/// balancer's link, and on the nodes' network 172.16.2.0/24.
pub const HOP_LB_SIDE_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 254);
pub const HOP_NODE_SIDE_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 2, 1);
/// The load balancer's VTEP MAC unless the builder says otherwise.
pub const LB_VTEP_MAC: MacAddr = MacAddr([0x0e, 0xf1, 0x00, 0x00, 0xff, 0x01]);
pub const MAX_NODES: usize = 20;
pub const MAX_PODS_PER_NODE: usize = 50;

/// The client network, 10.0.1.0/24.
pub fn client_net() -> Ipv4Cidr {
    Ipv4Cidr::new(Ipv4Addr::new(10, 0, 1, 0), 24).expect("network address")
}

/// The overlay subnet of the load balancer's VTEP, 10.244.0.0/24.
pub fn lb_overlay_subnet() -> Ipv4Cidr {
    Ipv4Cidr::new(Ipv4Addr::new(10, 244, 0, 0), 24).expect("network address")
}

/// Node `index`'s address: 172.16.1.(10+index), or 172.16.2.(10+index)
/// behind a router ([`OverlayBuilder::node_hop`]).
pub fn node_ip(index: u8, behind_hop: bool) -> Ipv4Addr {
    Ipv4Addr::new(172, 16, if behind_hop { 2 } else { 1 }, 10 + index)
}

/// The nodes' network behind a router, 172.16.2.0/24.
pub fn hop_node_net() -> Ipv4Cidr {
    Ipv4Cidr::new(Ipv4Addr::new(172, 16, 2, 0), 24).expect("network address")
}

/// Node `index`'s pod subnet: 10.244.index.0/24.
pub fn pod_cidr(index: u8) -> Ipv4Cidr {
    Ipv4Cidr::new(Ipv4Addr::new(10, 244, index, 0), 24).expect("network address")
}

/// Node `index`'s VTEP MAC: 0e:f1:00:00:00:index.
pub fn node_vtep_mac(index: u8) -> MacAddr {
    MacAddr([0x0e, 0xf1, 0x00, 0x00, 0x00, index])
}

/// What the lb namespace is (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbMode {
    /// Where ferrolbd runs: a router without a kernel VTEP.
    Balancer,
    /// No load balancer: a router that is a flannel-style kernel VTEP.
    KernelVtep,
}

/// How nodes route replies to the client network (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientReturn {
    /// Plainly, to the load balancer's node-network address.
    Routed,
    /// VXLAN nodes: into `flannel.1`, to the load balancer's VTEP.
    Vxlan,
}

/// A pod: a namespace behind its node's [`CNI_BRIDGE`].
#[derive(Debug)]
pub struct Pod {
    /// `node1-pod0`, ...: also the name its test server answers with.
    pub name: String,
    pub ip: Ipv4Addr,
    /// Its node's [`Node::index`].
    pub node: u8,
    pub mtu: u32,
    pub ns: Netns,
}

/// A node with its pods.
pub struct Node {
    /// `ferrolbd --node-decap eth0` on an IPIP node (when the builder starts
    /// it). First field: stopped before the namespaces go.
    pub decap: Option<Daemon>,
    pub pods: Vec<Pod>,
    pub ns: Netns,
    /// N in `nodeN`, `172.16.1.(10+N)`, `10.244.N.0/24`; `nodes[i].index ==
    /// i + 1`.
    pub index: u8,
    /// `node1`, ...: also its tunnel route's name ([`Node::tunnel_spec`]).
    pub name: String,
    pub encap: Encap,
    /// Its address on the node network (on [`UPLINK_DEV`]).
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Cidr,
    /// Its address on [`CNI_BRIDGE`], the pods' default gateway.
    pub pod_gateway: Ipv4Addr,
    /// Its VTEP (VXLAN nodes): subnet = `pod_cidr`, public IP = `ip`, the
    /// MAC of its `flannel.1`, whose address is `vtep.gateway()`.
    pub vtep: Option<Vtep>,
}

impl Node {
    /// The tunnel route for this node's pods, for `PUT /v1/tunnels/{name}`
    /// ([`crate::api::Api::put_tunnel`]).
    pub fn tunnel_spec(&self) -> TunnelSpec {
        let vxlan = self.encap == Encap::Vxlan;
        TunnelSpec {
            name: self.name.clone(),
            pod_cidr: self.pod_cidr,
            node_ip: self.ip,
            encap: self.encap,
            vni: vxlan.then_some(DEFAULT_VNI),
            vtep_mac: self.vtep.map(|v| v.mac),
            dst_port: vxlan.then_some(DEFAULT_VXLAN_PORT),
        }
    }
}

/// How to build an [`OverlayTopology`].
#[derive(Debug, Clone)]
pub struct OverlayBuilder {
    nodes: Vec<Encap>,
    pods_per_node: usize,
    pod_mtu: u32,
    lb_mode: LbMode,
    client_return: ClientReturn,
    lb_overlay_ip: Ipv4Addr,
    lb_vtep_mac: MacAddr,
    lb_pod_routes: bool,
    node_decap: bool,
    node_hop: Option<u32>,
}

impl Default for OverlayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OverlayBuilder {
    /// Two VXLAN nodes, one pod each at MTU 1500, [`LbMode::Balancer`]
    /// with pod subnets routed to the nodes, [`ClientReturn::Routed`], the
    /// load balancer's overlay address 10.244.0.0 and VTEP MAC
    /// [`LB_VTEP_MAC`], `ferrolbd --node-decap` started on IPIP nodes.
    pub fn new() -> Self {
        OverlayBuilder {
            nodes: vec![Encap::Vxlan, Encap::Vxlan],
            pods_per_node: 1,
            pod_mtu: LINK_MTU,
            lb_mode: LbMode::Balancer,
            client_return: ClientReturn::Routed,
            lb_overlay_ip: lb_overlay_subnet().addr(),
            lb_vtep_mac: LB_VTEP_MAC,
            lb_pod_routes: true,
            node_decap: true,
            node_hop: None,
        }
    }

    /// The baseline without a load balancer: [`LbMode::KernelVtep`] and
    /// [`ClientReturn::Vxlan`] (both directions through VXLAN).
    pub fn baseline() -> Self {
        Self::new()
            .lb_mode(LbMode::KernelVtep)
            .client_return(ClientReturn::Vxlan)
    }

    /// One node per entry, with that encapsulation (`Encap::None`: routed
    /// plainly, flannel's host-gw). 1..=[`MAX_NODES`].
    pub fn nodes(mut self, encaps: &[Encap]) -> Self {
        self.nodes = encaps.to_vec();
        self
    }

    /// Pods behind every node, 1..=[`MAX_PODS_PER_NODE`].
    pub fn pods_per_node(mut self, pods: usize) -> Self {
        self.pods_per_node = pods;
        self
    }

    /// MTU of the pods' links (both veth ends and the CNI bridge), at most
    /// [`LINK_MTU`]; [`VXLAN_MTU`] is flannel's own setting.
    pub fn pod_mtu(mut self, mtu: u32) -> Self {
        self.pod_mtu = mtu;
        self
    }

    pub fn lb_mode(mut self, mode: LbMode) -> Self {
        self.lb_mode = mode;
        self
    }

    pub fn client_return(mut self, client_return: ClientReturn) -> Self {
        self.client_return = client_return;
        self
    }

    /// The load balancer's overlay address (`ferrolbd --overlay-ip`), in
    /// 10.244.0.0/24.
    pub fn lb_overlay_ip(mut self, ip: Ipv4Addr) -> Self {
        self.lb_overlay_ip = ip;
        self
    }

    /// The MAC nodes know the load balancer's VTEP by.
    pub fn lb_vtep_mac(mut self, mac: MacAddr) -> Self {
        self.lb_vtep_mac = mac;
        self
    }

    /// [`LbMode::Balancer`]: route every pod subnet plainly to its node
    /// (default on). Off, only an encapsulating datapath reaches the pods.
    pub fn lb_pod_routes(mut self, on: bool) -> Self {
        self.lb_pod_routes = on;
        self
    }

    /// Start `ferrolbd --node-decap` on IPIP nodes (default on; needs the
    /// binaries built).
    pub fn node_decap(mut self, on: bool) -> Self {
        self.node_decap = on;
        self
    }

    /// Put a router between the load balancer and the nodes, whose link to
    /// the nodes has MTU `mtu` (the nodes' uplinks too, and `flannel.1` 50
    /// bytes less, as flannel derives it): the fabric namespace routes
    /// between the load balancer's link (172.16.1.0/24, its address
    /// [`HOP_LB_SIDE_IP`]) and the bridge of the nodes' network
    /// 172.16.2.0/24 ([`HOP_NODE_SIDE_IP`], the nodes' default gateway).
    /// Encapsulated packets that fit the load balancer's link but not the
    /// nodes' make the router answer with ICMP fragmentation-needed.
    pub fn node_hop(mut self, mtu: u32) -> Self {
        self.node_hop = Some(mtu);
        self
    }

    pub fn build(self) -> Result<OverlayTopology> {
        ensure!(
            (1..=MAX_NODES).contains(&self.nodes.len()),
            "nodes must be 1..={MAX_NODES}, got {}",
            self.nodes.len()
        );
        ensure!(
            (1..=MAX_PODS_PER_NODE).contains(&self.pods_per_node),
            "pods per node must be 1..={MAX_PODS_PER_NODE}, got {}",
            self.pods_per_node
        );
        ensure!(
            (576..=LINK_MTU).contains(&self.pod_mtu),
            "pod MTU must be 576..={LINK_MTU}, got {}",
            self.pod_mtu
        );
        if let Some(mtu) = self.node_hop {
            ensure!(
                (576..=LINK_MTU).contains(&mtu),
                "the nodes' MTU behind the router must be 576..={LINK_MTU}, got {mtu}"
            );
        }
        ensure!(
            lb_overlay_subnet().contains(self.lb_overlay_ip),
            "the load balancer's overlay address {} is not in {}",
            self.lb_overlay_ip,
            lb_overlay_subnet()
        );
        cleanup_stale();
        let mut topo = OverlayTopology {
            procs: Vec::new(),
            fabric_pass: None,
            nodes: Vec::new(),
            client: Netns::create("client")?,
            lb: Netns::create("lb")?,
            fabric: Netns::create("fabric")?,
            lb_mode: self.lb_mode,
            client_return: self.client_return,
            lb_vtep: Vtep {
                subnet: lb_overlay_subnet(),
                public_ip: LB_NODE_IP,
                mac: self.lb_vtep_mac,
            },
            lb_overlay_ip: self.lb_overlay_ip,
            pod_mtu: self.pod_mtu,
            node_hop: self.node_hop,
        };
        topo.lb.sysctl("net/ipv4/ip_forward", "1")?;
        connect_client(&topo.client, &topo.lb)?;
        topo.fabric
            .ip(&["link", "add", FABRIC_BRIDGE, "type", "bridge"])?;
        topo.fabric.ip(&["link", "set", FABRIC_BRIDGE, "up"])?;
        match topo.node_hop {
            None => topo.join_fabric(&topo.lb, LB_NODE_DEV, "lb")?,
            Some(mtu) => topo.route_fabric(mtu)?,
        }
        if topo.lb_mode == LbMode::Balancer {
            // What the datapath redirects or sends back out of n0 arrives
            // at the bridge port only with an XDP program there.
            topo.fabric_pass = Some(VethPass::attach(&topo.fabric, "lb")?);
            // The MAC the nodes trust as the load balancer's VTEP is its
            // node-network interface's: what ferrolbd takes as its VTEP MAC
            // when it is not given --vtep-mac.
            topo.lb.ip(&[
                "link",
                "set",
                LB_NODE_DEV,
                "address",
                &topo.lb_vtep.mac.to_string(),
            ])?;
        }
        topo.lb
            .addr(LB_NODE_DEV, &format!("{LB_NODE_IP}/{NODE_NET_PREFIX}"))?;
        for (i, encap) in self.nodes.iter().enumerate() {
            let index = u8::try_from(i + 1).context("node index")?;
            let node = topo.add_node(index, *encap, self.pods_per_node)?;
            topo.nodes.push(node);
        }
        for node in &topo.nodes {
            topo.route_node(node)?;
        }
        topo.route_lb(self.lb_pod_routes)?;
        if self.node_decap {
            for node in topo.nodes.iter_mut().filter(|n| n.encap == Encap::Ipip) {
                let mut config = DaemonConfig::new(Vec::new());
                config.node_decap = vec![UPLINK_DEV.to_string()];
                node.decap = Some(Daemon::start(&node.ns, config)?);
            }
        }
        Ok(topo)
    }
}

/// Client, load balancer, node network, nodes and pods (see the module
/// doc). Field order is drop order: processes, then nodes (their daemons,
/// pods, namespaces), then the rest.
pub struct OverlayTopology {
    procs: Vec<Proc>,
    /// The pass-everything program on the bridge's `lb` port
    /// ([`LbMode::Balancer`]).
    fabric_pass: Option<VethPass>,
    pub nodes: Vec<Node>,
    pub client: Netns,
    pub lb: Netns,
    /// Holds the node network's bridge [`FABRIC_BRIDGE`]; its ports are
    /// `lb` and `nodeN`.
    pub fabric: Netns,
    pub lb_mode: LbMode,
    pub client_return: ClientReturn,
    /// The load balancer as a VTEP: subnet 10.244.0.0/24 (gateway
    /// 10.244.0.0), public IP [`LB_NODE_IP`], its MAC. Every VXLAN node has
    /// it as a flannel peer, in both [`LbMode`]s.
    pub lb_vtep: Vtep,
    /// The load balancer's own overlay address (`--overlay-ip`): on
    /// `flannel.1` with [`LbMode::KernelVtep`], on the loopback with
    /// [`LbMode::Balancer`].
    pub lb_overlay_ip: Ipv4Addr,
    pub pod_mtu: u32,
    /// The MTU of the nodes' network behind a router
    /// ([`OverlayBuilder::node_hop`]), if there is one.
    pub node_hop: Option<u32>,
}

impl OverlayTopology {
    pub fn builder() -> OverlayBuilder {
        OverlayBuilder::new()
    }

    /// The load balancer's interfaces (what ferrolbd attaches to): client
    /// side, node network.
    pub fn lb_ifaces(&self) -> Vec<String> {
        vec![LB_CLIENT_DEV.to_string(), LB_NODE_DEV.to_string()]
    }

    /// The client's address.
    pub fn client_ip(&self) -> Ipv4Addr {
        CLIENT_IP
    }

    /// Every pod, node by node.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.nodes.iter().flat_map(|n| n.pods.iter())
    }

    /// `ip:port` of every pod, node by node.
    pub fn pod_addrs(&self, port: u16) -> Vec<SocketAddrV4> {
        self.pods().map(|p| SocketAddrV4::new(p.ip, port)).collect()
    }

    /// Every node's tunnel route ([`Node::tunnel_spec`]).
    pub fn tunnel_specs(&self) -> Vec<TunnelSpec> {
        self.nodes.iter().map(Node::tunnel_spec).collect()
    }

    /// Start the test server (TCP and UDP on `port`) in every pod, each
    /// answering with its pod's name; returns once all listen.
    pub fn start_servers(&mut self, port: u16) -> Result<()> {
        let mut started = Vec::new();
        for pod in self.pods() {
            started.push(server::start(
                &pod.ns,
                &pod.name,
                SocketAddrV4::new(pod.ip, port),
            )?);
        }
        self.procs.extend(started);
        Ok(())
    }

    /// Keep a process (e.g. `iperf3 -s` in a pod) until the topology goes.
    pub fn keep(&mut self, proc: Proc) {
        self.procs.push(proc);
    }

    /// A veth from `dev` in `ns` to `port` on the node network's bridge.
    /// GRO stays off on the bridge's ports (see [`crate::veth_pass`]).
    fn join_fabric(&self, ns: &Netns, dev: &str, port: &str) -> Result<()> {
        veth(ns, dev, &self.fabric, port)?;
        self.fabric
            .ip(&["link", "set", port, "master", FABRIC_BRIDGE])?;
        Ok(())
    }

    /// The fabric namespace as the router in front of the nodes
    /// ([`OverlayBuilder::node_hop`]): the load balancer's link is routed
    /// (not a bridge port), the bridge holds the nodes' gateway address at
    /// MTU `mtu`, and what the nodes send toward the client network or the
    /// load balancer's overlay subnet goes to the load balancer.
    fn route_fabric(&self, mtu: u32) -> Result<()> {
        let fabric = &self.fabric;
        fabric.sysctl("net/ipv4/ip_forward", "1")?;
        veth(&self.lb, LB_NODE_DEV, fabric, "lb")?;
        fabric.addr("lb", &format!("{HOP_LB_SIDE_IP}/{NODE_NET_PREFIX}"))?;
        fabric.ip(&["link", "set", FABRIC_BRIDGE, "mtu", &mtu.to_string()])?;
        fabric.addr(
            FABRIC_BRIDGE,
            &format!("{HOP_NODE_SIDE_IP}/{}", hop_node_net().prefix_len()),
        )?;
        for net in [client_net(), lb_overlay_subnet()] {
            route_via(fabric, net, LB_NODE_IP)?;
        }
        Ok(())
    }

    /// Where the node network's hosts send what is not on their link: the
    /// load balancer, or the router in front of them.
    fn node_gateway(&self) -> Ipv4Addr {
        match self.node_hop {
            None => LB_NODE_IP,
            Some(_) => HOP_NODE_SIDE_IP,
        }
    }

    /// Node `index`: uplink, default route, CNI bridge, pods, and
    /// `flannel.1` if it is a VXLAN node.
    fn add_node(&self, index: u8, encap: Encap, pods: usize) -> Result<Node> {
        let name = format!("node{index}");
        let ns = Netns::create(&name)?;
        let ip = node_ip(index, self.node_hop.is_some());
        ns.sysctl("net/ipv4/ip_forward", "1")?;
        self.join_fabric(&ns, UPLINK_DEV, &name)?;
        let uplink_mtu = self.node_hop.unwrap_or(LINK_MTU);
        if let Some(mtu) = self.node_hop {
            let mtu = mtu.to_string();
            self.fabric.ip(&["link", "set", &name, "mtu", &mtu])?;
            ns.ip(&["link", "set", UPLINK_DEV, "mtu", &mtu])?;
        }
        ns.addr(UPLINK_DEV, &format!("{ip}/{NODE_NET_PREFIX}"))?;
        prepare_host_dev(&ns, UPLINK_DEV)?;
        ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &self.node_gateway().to_string(),
        ])?;

        let pod_cidr = pod_cidr(index);
        let pod_gateway = Ipv4Addr::new(10, 244, index, 1);
        ns.ip(&["link", "add", CNI_BRIDGE, "type", "bridge"])?;
        ns.addr(CNI_BRIDGE, &format!("{pod_gateway}/24"))?;
        let pods = (0..pods)
            .map(|j| self.add_pod(&ns, index, j))
            .collect::<Result<Vec<_>>>()?;
        ns.ip(&["link", "set", CNI_BRIDGE, "mtu", &self.pod_mtu.to_string()])?;

        let vtep = (encap == Encap::Vxlan).then(|| Vtep {
            subnet: pod_cidr,
            public_ip: ip,
            mac: node_vtep_mac(index),
        });
        if let Some(vtep) = &vtep {
            flannel::create(&ns, vtep, UPLINK_DEV, uplink_mtu, vtep.gateway())?;
        }
        Ok(Node {
            decap: None,
            pods,
            ns,
            index,
            name,
            encap,
            ip,
            pod_cidr,
            pod_gateway,
            vtep,
        })
    }

    /// Pod `j` of node `index`, on the node's CNI bridge.
    fn add_pod(&self, node: &Netns, index: u8, j: usize) -> Result<Pod> {
        let name = format!("node{index}-pod{j}");
        let ns = Netns::create(&name)?;
        let ip = Ipv4Addr::new(10, 244, index, u8::try_from(2 + j).context("pod index")?);
        let port = format!("veth{j}");
        let mtu = self.pod_mtu.to_string();
        veth(node, &port, &ns, POD_DEV)?;
        node.ip(&["link", "set", &port, "master", CNI_BRIDGE, "mtu", &mtu])?;
        ns.ip(&["link", "set", POD_DEV, "mtu", &mtu])?;
        ns.addr(POD_DEV, &format!("{ip}/24"))?;
        ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &Ipv4Addr::new(10, 244, index, 1).to_string(),
        ])?;
        prepare_host_dev(&ns, POD_DEV)?;
        Ok(Pod {
            name,
            ip,
            node: index,
            mtu: self.pod_mtu,
            ns,
        })
    }

    /// A node's routes to the other nodes' pods (flannel peers between VXLAN
    /// nodes, plain routes otherwise), the load balancer's VTEP as a peer,
    /// and the client network into the tunnel with [`ClientReturn::Vxlan`].
    fn route_node(&self, node: &Node) -> Result<()> {
        for other in self.nodes.iter().filter(|o| o.index != node.index) {
            match (node.vtep, other.vtep) {
                (Some(_), Some(peer)) => flannel::add_peer(&node.ns, &peer)?,
                _ => route_via(&node.ns, other.pod_cidr, other.ip)?,
            }
        }
        if node.vtep.is_some() {
            flannel::add_peer(&node.ns, &self.lb_vtep)?;
            if self.client_return == ClientReturn::Vxlan {
                flannel::route_via_peer(&node.ns, &client_net().to_string(), &self.lb_vtep)?;
            }
        }
        Ok(())
    }

    /// The load balancer's side of the overlay (see [`LbMode`]).
    fn route_lb(&self, pod_routes: bool) -> Result<()> {
        if self.node_hop.is_some() {
            route_via(&self.lb, hop_node_net(), HOP_LB_SIDE_IP)?;
        }
        match self.lb_mode {
            LbMode::KernelVtep => {
                flannel::create(
                    &self.lb,
                    &self.lb_vtep,
                    LB_NODE_DEV,
                    LINK_MTU,
                    self.lb_overlay_ip,
                )?;
                for node in &self.nodes {
                    match node.vtep {
                        Some(peer) => flannel::add_peer(&self.lb, &peer)?,
                        None => self.route_pods_of(node)?,
                    }
                }
            }
            LbMode::Balancer => {
                self.lb.addr("lo", &format!("{}/32", self.lb_overlay_ip))?;
                if pod_routes {
                    for node in &self.nodes {
                        self.route_pods_of(node)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The load balancer's plain route to `node`'s pods: via the node, or
    /// via the router in front of it (which routes them to the node).
    fn route_pods_of(&self, node: &Node) -> Result<()> {
        match self.node_hop {
            None => route_via(&self.lb, node.pod_cidr, node.ip),
            Some(_) => {
                route_via(&self.fabric, node.pod_cidr, node.ip)?;
                route_via(&self.lb, node.pod_cidr, HOP_LB_SIDE_IP)
            }
        }
    }
}

/// `ip route replace NET via GATEWAY` in `ns`.
fn route_via(ns: &Netns, net: Ipv4Cidr, gateway: Ipv4Addr) -> Result<()> {
    ns.ip(&[
        "route",
        "replace",
        &net.to_string(),
        "via",
        &gateway.to_string(),
    ])
    .map(drop)
}
