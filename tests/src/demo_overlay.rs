//! The "straight to pods" part of `cargo xtask demo`: the overlay topology
//! ([`crate::overlay_topology`]) with a flannel-style VXLAN node and an IPIP
//! node (decapsulated by `ferrolbd --node-decap`), two pods each, and a load
//! balancer with no plain route to any pod network. Tunnel routes and
//! services are set up with `ferrolbctl`; TCP connections in every mode
//! (`dnat`, `onearm`, `fullnat`) reach every pod, and the table shows where
//! they went and which source address each pod saw.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddrV4};

use anyhow::{Context, Result, ensure};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use lb_userspace::config::Encap;

use crate::{
    client::{self, Hello, Proto},
    demo::{indent, print_ctl, step},
    overlay_topology::{ClientReturn, LB_NODE_IP, OverlayBuilder, OverlayTopology},
    topology::{IO_TIMEOUT, VIP},
};

const POD_PORT: u16 = 8080;

/// The modes shown, each on its own VIP port.
const MODES: [(&str, u16); 3] = [("dnat", 80), ("onearm", 81), ("fullnat", 82)];

/// Runs the part: `connections` TCP connections per mode.
pub fn run(connections: usize) -> Result<()> {
    step("Straight to pods: a VXLAN node and an IPIP node, two pods each")?;
    let mut topo = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan, Encap::Ipip])
        .pods_per_node(2)
        .lb_pod_routes(false)
        .client_return(ClientReturn::Vxlan)
        .build()?;
    describe(&topo);
    topo.start_servers(POD_PORT)?;

    step("Starting ferrolbd in the lb namespace (no route to the pod networks)")?;
    let daemon = crate::overlay_lb::start_without_tunnels(&topo)?;
    println!(
        "  ferrolbd --tunnel-source {LB_NODE_IP} --vtep-mac {} --overlay-ip {}",
        topo.lb_vtep.mac, topo.lb_overlay_ip
    );

    step("Tunnel routes: each node's pod network, as flannel or Calico know it")?;
    for node in &topo.nodes {
        let spec = node.tunnel_spec();
        let mut args = vec![
            "tunnel".to_string(),
            "add".into(),
            spec.name.clone(),
            "--pod-cidr".into(),
            spec.pod_cidr.to_string(),
            "--node-ip".into(),
            spec.node_ip.to_string(),
            "--encap".into(),
            spec.encap.to_string(),
        ];
        if let Some(mac) = spec.vtep_mac {
            args.extend(["--vtep-mac".into(), mac.to_string()]);
        }
        print_ctl(
            &daemon,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
    }

    step("One TCP service per mode, every pod a backend")?;
    let pods = topo.pod_addrs(POD_PORT);
    for (mode, port) in MODES {
        let mut args = vec![
            "service".to_string(),
            "add".into(),
            format!("{VIP}:{port}/tcp"),
            "--mode".into(),
            mode.into(),
            "--name".into(),
            format!("demo/{mode}"),
        ];
        for p in &pods {
            args.extend(["--backend".into(), p.to_string()]);
        }
        print_ctl(
            &daemon,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
    }

    let mut by_mode = Vec::new();
    for (mode, port) in MODES {
        let vip = SocketAddrV4::new(VIP, port);
        step(&format!("{connections} TCP connections to {vip} ({mode})"))?;
        let hellos = topo
            .client
            .run(|| client::hellos(Proto::Tcp, vip, connections, IO_TIMEOUT))?
            .with_context(|| format!("mode {mode}\n{}", daemon.log()))?;
        ensure!(
            hellos.iter().all(|h| h.peer == vip.into()),
            "a reply did not come from the VIP {vip}"
        );
        println!("  every reply came from the VIP {vip}");
        by_mode.push((mode, hellos));
    }
    print_table(&topo, &by_mode);

    step("Datapath counters")?;
    let metrics = daemon.api().get("/metrics")?;
    let wanted = [
        "encap_vxlan",
        "encap_ipip",
        "decapsulated",
        "tx\"",
        "redirect",
    ];
    let lines: String = metrics
        .body
        .lines()
        .filter(|l| l.starts_with("ferrolb_datapath_packets_total"))
        .filter(|l| wanted.iter().any(|w| l.contains(w)))
        .map(|l| format!("{l}\n"))
        .collect();
    print!("{}", indent(&lines));

    step("Cleaning up the overlay")?;
    drop(daemon);
    drop(topo);
    Ok(())
}

fn describe(topo: &OverlayTopology) {
    println!(
        "  client {} -> lb (ferrolbd; node network {LB_NODE_IP}, overlay {})",
        topo.client_ip(),
        topo.lb_overlay_ip
    );
    for node in &topo.nodes {
        let pods: Vec<String> = node.pods.iter().map(|p| p.ip.to_string()).collect();
        println!(
            "  {:<6} {:<14} {:<6} pods {} ({})",
            node.name,
            node.ip.to_string(),
            node.encap.to_string(),
            node.pod_cidr,
            pods.join(", ")
        );
    }
}

/// Connections per pod and mode, and the sources each pod saw per mode.
fn print_table(topo: &OverlayTopology, by_mode: &[(&str, Vec<Hello>)]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["pod".to_string(), "node".into(), "encap".into()];
    for (mode, _) in by_mode {
        header.push(format!("{mode}: conns (source seen)"));
    }
    table.set_header(header);
    for node in &topo.nodes {
        for pod in &node.pods {
            let mut row = vec![
                format!("{} {}", pod.name, pod.ip),
                node.name.clone(),
                node.encap.to_string(),
            ];
            for (_, hellos) in by_mode {
                let mine: Vec<&Hello> = hellos.iter().filter(|h| h.backend == pod.name).collect();
                let mut sources: BTreeMap<IpAddr, usize> = BTreeMap::new();
                for h in &mine {
                    *sources.entry(h.seen_client.ip()).or_default() += 1;
                }
                let seen: Vec<String> = sources.keys().map(IpAddr::to_string).collect();
                row.push(format!("{} ({})", mine.len(), seen.join(", ")));
            }
            table.add_row(row);
        }
    }
    println!("{table}");
    println!(
        "  dnat: the pod sees the client; onearm: the load balancer's node address; \
         fullnat: its overlay address."
    );
}
