//! `cargo xtask demo`: a client, ferrolb and three backends in network
//! namespaces; a service configured through the REST API; traffic; how it
//! spread; the CLI's view with counters. Then straight to pods
//! (`tests::demo_overlay`): pods on a VXLAN node and an IPIP node reached
//! encapsulated, in every mode. Cleanup after each part (also on Ctrl-C).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use anyhow::{Context, Result, bail};
use clap::Parser;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tests::api::{service_json, service_path};
use tests::client::{self, Proto};
use tests::daemon::{Daemon, DaemonConfig};
use tests::demo::{indent, print_ctl, step};
use tests::dsr_backends;
use tests::interrupt;
use tests::topology::{CLIENT_IP, HOST_DEV, IO_TIMEOUT, LB_CLIENT_DEV, Topology, VIP};

#[derive(Parser)]
#[command(
    name = "ferrolb-demo",
    about = "ferrolb end to end in network namespaces"
)]
struct Args {
    /// Number of backends.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    backends: u16,
    /// TCP connections to open (one after the other).
    #[arg(long, default_value_t = 30)]
    tcp: usize,
    /// UDP exchanges (each from a new source port).
    #[arg(long, default_value_t = 30)]
    udp: usize,
    /// Service port.
    #[arg(long, default_value_t = 80)]
    port: u16,
    /// Backend selection: rr or hash.
    #[arg(long, default_value = "rr")]
    select: String,
    /// Which parts to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// TCP connections per mode in the overlay part.
    #[arg(long, default_value_t = 12)]
    overlay_connections: usize,
    /// Service mode of the routed part: dnat, or dsr (direct server return: each backend holds
    /// the VIP on its loopback, decapsulates IPIP with `ferrolbd
    /// --node-decap` and answers the client directly).
    #[arg(long, default_value = "dnat", value_parser = ["dnat", "dsr"])]
    mode: String,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Routed: client, load balancer, backends.
    Routed,
    /// Straight to pods over VXLAN and IPIP.
    Overlay,
    All,
}

const BACKEND_PORT: u16 = 8080;

fn main() {
    if let Err(err) = run() {
        eprintln!("demo failed: {err:#}");
        std::process::exit(1);
    }
    println!("\nDone: daemon stopped, namespaces removed.");
}

fn run() -> Result<()> {
    let args = Args::parse();
    interrupt::install()?;
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo creates network namespaces and loads XDP programs: run it as root");
    }
    if args.part != Part::Overlay {
        routed(&args)?;
    }
    if args.part != Part::Routed {
        tests::demo_overlay::run(args.overlay_connections)?;
    }
    Ok(())
}

fn routed(args: &Args) -> Result<()> {
    step(&format!(
        "Creating the topology: client, load balancer, {} backends",
        args.backends
    ))?;
    let mut topo = Topology::new(usize::from(args.backends))?;
    println!("  client   {:<28} {CLIENT_IP}", topo.client.name());
    println!(
        "  lb       {:<28} routes between everything, ferrolb attaches to {:?}",
        topo.lb.name(),
        topo.lb_ifaces()
    );
    for b in &topo.backends {
        println!(
            "  {:<8} {:<28} {}:{} (TCP and UDP test server)",
            b.name,
            b.ns.name(),
            b.ip,
            if args.mode == "dsr" {
                args.port
            } else {
                BACKEND_PORT
            }
        );
    }
    let dsr = args.mode == "dsr";
    let vip = SocketAddrV4::new(VIP, args.port);
    // DSR: the backends serve the VIP's own port (the packet is not
    // rewritten); kept until the end, dropped before the topology.
    let backend_port = if dsr { args.port } else { BACKEND_PORT };
    let _dsr_backends = if dsr {
        println!(
            "  dsr: each backend gets {VIP}/32 on its loopback, `ferrolbd --node-decap {HOST_DEV}` \
             and its test server on {vip}"
        );
        Some(dsr_backends::setup_hosts(
            topo.backends.iter().map(|b| (&b.ns, b.name.as_str())),
            HOST_DEV,
            vip,
        )?)
    } else {
        topo.start_servers(BACKEND_PORT)?;
        None
    };

    if dsr {
        // The first packets to a backend whose neighbour is not resolved go
        // to the kernel encapsulated, from this host's own address.
        topo.lb
            .sysctl(&format!("net/ipv4/conf/{LB_CLIENT_DEV}/accept_local"), "1")?;
    }
    step("Starting ferrolbd in the lb namespace")?;
    let daemon = Daemon::start(&topo.lb, DaemonConfig::new(topo.lb_ifaces()))?;
    println!(
        "  pid {:?}, API {} (inside the lb namespace), state {}, pins {}, log {}",
        daemon.pid(),
        daemon.api_url(),
        daemon.state_dir().display(),
        daemon.bpffs_dir().display(),
        daemon.log_path().display()
    );
    let api = daemon.api();

    let backends = topo.backend_addrs(backend_port);
    for proto in ["tcp", "udp"] {
        step(&format!(
            "Configuring the {proto} service through the REST API"
        ))?;
        let mut body = service_json(
            &format!("demo/web-{proto}"),
            proto,
            vip,
            &args.select,
            &backends,
        );
        body["mode"] = args.mode.clone().into();
        let path = service_path(proto, vip);
        println!(
            "  PUT {path}\n{}",
            indent(&serde_json::to_string_pretty(&body)?)
        );
        let reply = api.put_service(&body)?;
        println!("  -> {}", reply.status);
    }

    step(&format!(
        "Sending {} TCP connections and {} UDP exchanges from the client to {vip}",
        args.tcp, args.udp
    ))?;
    let tcp = topo
        .client
        .run(|| client::hellos(Proto::Tcp, vip, args.tcp, IO_TIMEOUT))??;
    interrupt::check()?;
    let udp = topo
        .client
        .run(|| client::hellos(Proto::Udp, vip, args.udp, IO_TIMEOUT))??;
    client::check_nat(&tcp, vip).context("TCP")?;
    client::check_nat(&udp, vip).context("UDP")?;
    println!("  every reply came from the VIP {vip}; every backend saw the client's own address");
    if dsr {
        println!(
            "  dsr: the replies went from the backends straight to the client \
             (reply counters below stay 0)"
        );
    }
    print_spread(
        &topo,
        backend_port,
        &client::spread(&tcp),
        &client::spread(&udp),
    );

    step(&format!("ferrolbctl service get {vip}/tcp"))?;
    print_ctl(&daemon, &["service", "get", &format!("{vip}/tcp")])?;
    step("ferrolbctl service list")?;
    print_ctl(&daemon, &["service", "list"])?;

    step("GET /metrics (ferrolb lines, excerpt)")?;
    let metrics = api.get("/metrics")?;
    for line in metrics
        .body
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && (l.contains("new_conn") || l.contains("drop") || l.contains("packets"))
        })
        .take(12)
    {
        println!("  {line}");
    }

    step("Cleaning up")?;
    drop(daemon);
    drop(topo);
    Ok(())
}

fn print_spread(
    topo: &Topology,
    port: u16,
    tcp: &BTreeMap<String, usize>,
    udp: &BTreeMap<String, usize>,
) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "backend",
        "address",
        "TCP connections",
        "UDP exchanges",
    ]);
    for b in &topo.backends {
        table.add_row(vec![
            b.name.clone(),
            format!("{}:{port}", b.ip),
            tcp.get(&b.name).copied().unwrap_or(0).to_string(),
            udp.get(&b.name).copied().unwrap_or(0).to_string(),
        ]);
    }
    table.add_row(vec![
        "total".to_string(),
        String::new(),
        tcp.values().sum::<usize>().to_string(),
        udp.values().sum::<usize>().to_string(),
    ]);
    println!("{table}");
}
