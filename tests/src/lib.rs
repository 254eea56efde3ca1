//! ferrolb's test support.
//!
//! - Packet fixtures through `BPF_PROG_TEST_RUN`: [`xdp`], [`packets`],
//!   [`ipip`], [`fixture_net`]; [`encap_fixture`] and [`encap_expect`] for
//!   encapsulated delivery.
//! - End-to-end in network namespaces: [`netns`] (namespaces, veths),
//!   [`topology`] (client, load balancer, backends), [`server`] and
//!   [`client`] (the test protocol), [`daemon`] and [`api`] (ferrolbd and its
//!   REST API), [`nft`] (nftables DNAT for comparison), [`traffic`]
//!   (connection-rate and iperf3 runs for the benchmark);
//!   [`overlay_topology`] (nodes with pod subnets over flannel-style VXLAN
//!   ([`flannel`]), IPIP decapsulated by ferrolbd, or plain routes),
//!   [`overlay_lb`] (ferrolbd as its encapsulating load balancer),
//!   [`dsr_backends`] (its pods as direct-server-return backends),
//!   [`ipip_socket`] (sending IPIP to a node) and [`nft_counters`] (which way
//!   packets went); [`bench_overlay`] (the benchmark on it).

pub mod api;
pub mod bench_e2e;
pub mod bench_host;
pub mod bench_overlay;
pub mod bench_packet;
pub mod bins;
pub mod client;
pub mod daemon;
pub mod demo;
pub mod demo_overlay;
pub mod dnat_fixture;
pub mod dsr_backends;
pub mod encap_expect;
pub mod encap_fixture;
pub mod fixture_net;
pub mod flannel;
pub mod frag_needed_expect;
pub mod interrupt;
pub mod ipip;
pub mod ipip_socket;
pub mod lab;
pub mod netns;
pub mod nft;
pub mod nft_counters;
pub mod overlay_lb;
pub mod overlay_topology;
pub mod packets;
pub mod process;
pub mod server;
pub mod tempdir;
pub mod topology;
pub mod traffic;
pub mod veth_pass;
pub mod vxlan;
pub mod xdp;
