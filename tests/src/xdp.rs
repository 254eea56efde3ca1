//! Runs the datapath's XDP programs through `BPF_PROG_TEST_RUN` (aya's
//! `TestRun`), with the maps programmed directly as docs/datapath.md
//! specifies: the packet fixtures test the datapath against that contract,
//! independently of the daemon.

use std::{net::SocketAddrV4, path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{
        Array, DevMap, HashMap, MapData, PerCpuArray, PerCpuValues,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{TestRun, TestRunOptions, Xdp},
};
use lb_common::{
    Backend, BackendTunnel, Clock, Counters, DecapStat, EndpointSet, Flow, FlowBucket, FlowKey,
    GlobalCounters, GlobalStat, IcmpLimit, PathMtu, Service, Tunnel, TunnelEndpoint, VipKey,
    flow_table::{BucketHash, FLOW_WAYS, bucket_index, buckets_for, tag},
    limits::RING_SIZE,
    maps as names,
    service::{BACKEND_ACTIVE, mode},
};

/// The datapath clock's value when a harness is loaded (an arbitrary,
/// non-zero monotonic time).
pub const START_CLOCK_NS: u64 = 1_000 * 1_000_000_000;

/// The connection table's bucket hash in fixtures (the daemon draws its
/// multiplier at random), at the object's default size.
pub const FLOW_HASH: BucketHash = BucketHash::new(
    0x5eed_f10e_9e37_79b9,
    buckets_for(lb_common::limits::CONNTRACK_ENTRIES),
);

/// A read-only view of one of the connection table's maps.
type TableMap<'a, V> = Array<&'a MapData, V>;

/// Network byte order value of an address, as the maps store it.
pub fn ip_be(addr: std::net::Ipv4Addr) -> u32 {
    u32::from_ne_bytes(addr.octets())
}

/// One service as the fixtures program it.
pub struct TestService {
    pub id: u32,
    pub vip: SocketAddrV4,
    pub proto: u8,
    pub select: u8,
    pub timeout_s: u32,
    pub backends: Vec<SocketAddrV4>,
}

/// Result of one program run.
#[derive(Debug)]
pub struct Run {
    pub action: u32,
    pub output: Vec<u8>,
    /// The kernel's measurement of the run.
    pub duration: Duration,
}

/// A loaded copy of the datapath with its own maps (pinned in a directory of
/// its own, removed on drop).
pub struct Harness {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    next_backend_id: u32,
}

/// The eBPF object loaded (no program in the kernel yet) with its maps
/// pinned in a new directory of its own (`role` in its name), for test
/// code that loads programs itself; the caller removes the directory.
pub fn load_object(role: &str) -> Result<(Ebpf, PathBuf)> {
    // Named like every test resource (pid first), so a run that was
    // killed leaves nothing behind for long: the next run removes it.
    crate::daemon::cleanup_stale_pins();
    let pin_dir = PathBuf::from("/sys/fs/bpf").join(crate::netns::unique_name(role));
    std::fs::create_dir_all(&pin_dir).with_context(|| format!("creating {}", pin_dir.display()))?;
    let ebpf = EbpfLoader::new()
        .default_map_pin_directory(&pin_dir)
        .load(lb_userspace::EBPF_OBJECT)
        .context("loading the eBPF object")?;
    Ok((ebpf, pin_dir))
}

impl Harness {
    pub fn load() -> Result<Harness> {
        let (mut ebpf, pin_dir) = load_object("fx-pins")?;
        lb_userspace::datapath::load_balancer(&mut ebpf).context("loading the balancer")?;
        for name in [names::PROG_DROP, names::PROG_DECAP] {
            let prog: &mut Xdp = ebpf
                .program_mut(name)
                .ok_or_else(|| anyhow!("program {name} missing"))?
                .try_into()?;
            lb_userspace::datapath::load_program(prog)
                .with_context(|| format!("verifier rejected {name}"))?;
        }
        let mut harness = Harness {
            ebpf,
            pin_dir,
            next_backend_id: 1,
        };
        harness.set_clock(START_CLOCK_NS)?;
        Ok(harness)
    }

    /// Sets the datapath's clock (the daemon ticks it; fixtures move it),
    /// with the connection table's bucket hash (`FLOW_HASH`).
    pub fn set_clock(&mut self, now_ns: u64) -> Result<()> {
        let mut clock: Array<&mut MapData, Clock> = Array::try_from(self.map(names::CLOCK)?)?;
        let value = Clock {
            now_ns,
            bucket_hash: FLOW_HASH,
        };
        clock.set(0, value, 0)?;
        Ok(())
    }

    fn map(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("map {name} missing"))
    }

    /// Map `name`, to read.
    fn map_ref(&self, name: &str) -> Result<&aya::maps::Map> {
        self.ebpf
            .map(name)
            .ok_or_else(|| anyhow!("map {name} missing"))
    }

    /// Programs a service with its backends, each in one ring slot, in order.
    /// Returns the backend ids.
    pub fn add_service(&mut self, svc: &TestService) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for b in &svc.backends {
            let id = self.next_backend_id;
            self.next_backend_id += 1;
            let mut backends: Array<&mut MapData, Backend> =
                Array::try_from(self.map(names::BACKENDS)?)?;
            backends.set(
                id,
                Backend {
                    ip: ip_be(*b.ip()),
                    port: b.port().to_be(),
                    flags: BACKEND_ACTIVE,
                    generation: 1,
                    service_id: svc.id,
                    snat_ip: 0,
                },
                0,
            )?;
            let mut rings: Array<&mut MapData, u32> = Array::try_from(self.map(names::RINGS)?)?;
            rings.set(svc.id * RING_SIZE + ids.len() as u32, id, 0)?;
            ids.push(id);
        }
        let key = vip_key(svc.vip, svc.proto);
        let mut services: HashMap<&mut MapData, VipKey, Service> =
            HashMap::try_from(self.map(names::SERVICES)?)?;
        services.insert(
            key,
            Service {
                id: svc.id,
                slot_count: ids.len() as u32,
                timeout_s: svc.timeout_s,
                mode: mode::DNAT,
                select: svc.select,
                _pad: 0,
            },
            0,
        )?;
        let mut vips: HashMap<&mut MapData, u32, u32> = HashMap::try_from(self.map(names::VIPS)?)?;
        let n = vips.get(&key.ip, 0).unwrap_or(0);
        vips.insert(key.ip, n + 1, 0)?;
        Ok(ids)
    }

    /// Rewrites the ring of the service at (`vip`, `proto`) to `backend_ids`,
    /// one slot each, as userspace does when the backend list changes.
    pub fn set_ring(&mut self, vip: SocketAddrV4, proto: u8, backend_ids: &[u32]) -> Result<()> {
        let key = vip_key(vip, proto);
        let services: HashMap<&mut MapData, VipKey, Service> =
            HashMap::try_from(self.map(names::SERVICES)?)?;
        let mut svc = services.get(&key, 0)?;
        let id = svc.id;
        let mut rings: Array<&mut MapData, u32> = Array::try_from(self.map(names::RINGS)?)?;
        for (slot, backend) in backend_ids.iter().enumerate() {
            rings.set(id * RING_SIZE + slot as u32, *backend, 0)?;
        }
        svc.slot_count = backend_ids.len() as u32;
        let mut services: HashMap<&mut MapData, VipKey, Service> =
            HashMap::try_from(self.map(names::SERVICES)?)?;
        services.insert(key, svc, 0)?;
        Ok(())
    }

    /// Sets the `mode` (`service::mode::*`) of the service at (`vip`,
    /// `proto`).
    pub fn set_service_mode(&mut self, vip: SocketAddrV4, proto: u8, mode: u8) -> Result<()> {
        let key = vip_key(vip, proto);
        let mut services: HashMap<&mut MapData, VipKey, Service> =
            HashMap::try_from(self.map(names::SERVICES)?)?;
        let mut svc = services.get(&key, 0)?;
        svc.mode = mode;
        services.insert(key, svc, 0)?;
        Ok(())
    }

    /// Changes backend `id`'s entry with `change`.
    pub fn update_backend(&mut self, id: u32, change: impl FnOnce(&mut Backend)) -> Result<()> {
        let mut backends: Array<&mut MapData, Backend> =
            Array::try_from(self.map(names::BACKENDS)?)?;
        let mut b = backends.get(&id, 0)?;
        change(&mut b);
        backends.set(id, b, 0)?;
        Ok(())
    }

    /// Gives backend `id` a source address (`Backend::snat_ip`), as userspace
    /// does for the backends of `onearm` and `fullnat` services.
    pub fn set_backend_snat(&mut self, id: u32, snat: std::net::Ipv4Addr) -> Result<()> {
        self.update_backend(id, |b| b.snat_ip = ip_be(snat))
    }

    /// Marks a backend as taking traffic or not.
    pub fn set_backend_active(&mut self, id: u32, active: bool) -> Result<()> {
        self.update_backend(id, |b| b.flags = if active { BACKEND_ACTIVE } else { 0 })
    }

    /// Makes `addr` a decapsulation address (`DECAP_ADDRS`), as
    /// `ferrolbd --node-decap` does for its interfaces' addresses.
    pub fn add_decap_addr(&mut self, addr: std::net::Ipv4Addr) -> Result<()> {
        let mut addrs: HashMap<&mut MapData, u32, u32> =
            HashMap::try_from(self.map(names::DECAP_ADDRS)?)?;
        addrs.insert(ip_be(addr), 0, 0)?;
        Ok(())
    }

    /// Adds a tunnel route (`TUNNELS`): `pod_net`/`prefix_len` → `tunnel`,
    /// as userspace programs it (local end resolved).
    pub fn add_tunnel(
        &mut self,
        pod_net: std::net::Ipv4Addr,
        prefix_len: u32,
        tunnel: Tunnel,
    ) -> Result<()> {
        let mut map: LpmTrie<&mut MapData, u32, Tunnel> =
            LpmTrie::try_from(self.map(names::TUNNELS)?)?;
        map.insert(&Key::new(prefix_len, ip_be(pod_net)), tunnel, 0)?;
        // Its node, if it has an endpoint (encapsulating, tunnel source
        // resolved), in `TUNNEL_NODES`.
        let encapsulating = tunnel.encap == lb_common::tunnel::encap::IPIP
            || tunnel.encap == lb_common::tunnel::encap::VXLAN;
        if encapsulating && tunnel.src_ip != 0 {
            let mut nodes: HashMap<&mut MapData, u32, u32> =
                HashMap::try_from(self.map(names::TUNNEL_NODES)?)?;
            nodes.insert(tunnel.node_ip, 1, 0)?;
        }
        Ok(())
    }

    /// Removes the tunnel route `pod_net`/`prefix_len`.
    pub fn remove_tunnel(&mut self, pod_net: std::net::Ipv4Addr, prefix_len: u32) -> Result<()> {
        let mut map: LpmTrie<&mut MapData, u32, Tunnel> =
            LpmTrie::try_from(self.map(names::TUNNELS)?)?;
        map.remove(&Key::new(prefix_len, ip_be(pod_net)))?;
        Ok(())
    }

    /// Makes `ep` a tunnel endpoint of the load balancer (`TUNNEL_ENDPOINTS`,
    /// and `TUNNEL_ENDPOINT_SET`, as userspace does).
    pub fn add_tunnel_endpoint(&mut self, ep: TunnelEndpoint) -> Result<()> {
        let mut map: HashMap<&mut MapData, TunnelEndpoint, u32> =
            HashMap::try_from(self.map(names::TUNNEL_ENDPOINTS)?)?;
        map.insert(ep, 1, 0)?;
        let all = map.keys().collect::<Result<Vec<_>, _>>()?;
        let set = self.tunnel_endpoint_set()?.with_endpoints(&all);
        self.set_tunnel_endpoint_set(set)
    }

    /// What `TUNNEL_ENDPOINT_SET` holds.
    pub fn tunnel_endpoint_set(&mut self) -> Result<EndpointSet> {
        let set: Array<&mut MapData, EndpointSet> =
            Array::try_from(self.map(names::TUNNEL_ENDPOINT_SET)?)?;
        Ok(set.get(&0, 0)?)
    }

    /// Writes `TUNNEL_ENDPOINT_SET` (tests also set it out of step with
    /// `TUNNEL_ENDPOINTS`).
    pub fn set_tunnel_endpoint_set(&mut self, value: EndpointSet) -> Result<()> {
        let mut set: Array<&mut MapData, EndpointSet> =
            Array::try_from(self.map(names::TUNNEL_ENDPOINT_SET)?)?;
        set.set(0, value, 0)?;
        Ok(())
    }

    /// A `DECAP_STATS` counter, summed over CPUs.
    pub fn decap_stat(&self, stat: DecapStat) -> Result<u64> {
        let map: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.map_ref(names::DECAP_STATS)?)?;
        Ok(map.get(&(stat as u32), 0)?.iter().sum())
    }

    /// Writes the rate limit of ICMP fragmentation-needed answers
    /// (`ICMP_LIMIT`), as the daemon does at start; unwritten (all zero),
    /// the datapath uses the defaults.
    pub fn set_icmp_limit(&mut self, rate_per_s: u32, burst: u32) -> Result<()> {
        let mut map: Array<&mut MapData, IcmpLimit> =
            Array::try_from(self.map(names::ICMP_LIMIT)?)?;
        map.set(0, IcmpLimit { rate_per_s, burst }, 0)?;
        Ok(())
    }

    /// Writes `value` into backend `id`'s tunnel-route cache slot on every
    /// CPU (`BACKEND_TUNNEL`, which only the datapath fills otherwise).
    pub fn set_backend_tunnel(&mut self, id: u32, value: BackendTunnel) -> Result<()> {
        let mut map: PerCpuArray<&mut MapData, BackendTunnel> =
            PerCpuArray::try_from(self.map(names::BACKEND_TUNNEL)?)?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        map.set(id, PerCpuValues::try_from(vec![value; cpus])?, 0)?;
        Ok(())
    }

    /// Lets the datapath redirect to `ifindex` (must exist in the calling
    /// thread's network namespace).
    pub fn add_tx_port(&mut self, ifindex: u32) -> Result<()> {
        let mut ports: DevMap<&mut MapData> = DevMap::try_from(self.map(names::TX_PORTS)?)?;
        ports.set(ifindex, ifindex, None, 0)?;
        Ok(())
    }

    /// Runs program `prog` once on `frame`, as if received on
    /// `ingress_ifindex` (in the calling thread's network namespace).
    pub fn run_prog(&self, prog: &str, frame: &[u8], ingress_ifindex: u32) -> Result<Run> {
        let program: &Xdp = self
            .ebpf
            .program(prog)
            .ok_or_else(|| anyhow!("program {prog} missing"))?
            .try_into()?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let md: [u32; 6] = [0, frame.len() as u32, 0, ingress_ifindex, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut out = vec![0u8; frame.len() + 512];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.data_out = Some(&mut out);
        opts.ctx_in = Some(&ctx);
        let result = program.test_run(opts).context("BPF_PROG_TEST_RUN")?;
        out.truncate(result.data_size_out as usize);
        Ok(Run {
            action: result.return_value,
            output: out,
            duration: result.duration,
        })
    }

    /// Runs the balancer program.
    pub fn run(&self, frame: &[u8], ingress_ifindex: u32) -> Result<Run> {
        self.run_prog(names::PROG_BALANCER, frame, ingress_ifindex)
    }

    /// The path MTU the datapath learned toward `node` (`PATH_MTU`), if any.
    pub fn path_mtu(&self, node: std::net::Ipv4Addr) -> Result<Option<PathMtu>> {
        let map: aya::maps::HashMap<&MapData, u32, PathMtu> =
            aya::maps::HashMap::try_from(self.map_ref(names::PATH_MTU)?)?;
        match map.get(&ip_be(node), 0) {
            Ok(v) => Ok(Some(v)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn global(&self, stat: GlobalStat) -> Result<u64> {
        let map: PerCpuArray<&MapData, GlobalCounters> =
            PerCpuArray::try_from(self.map_ref(names::GLOBAL_STATS)?)?;
        Ok(map.get(&0, 0)?.iter().map(|c| c.get(stat)).sum())
    }

    fn counters(&self, map_name: &str, id: u32) -> Result<Counters> {
        let map: PerCpuArray<&MapData, Counters> = PerCpuArray::try_from(self.map_ref(map_name)?)?;
        let mut total = Counters::default();
        for c in map.get(&id, 0)?.iter() {
            total.add(c);
        }
        Ok(total)
    }

    /// Service `id`'s counters as the daemon derives them: those of the
    /// backends that left it (`RETIRED_STATS`) plus those of every backend
    /// of `BACKENDS` that belongs to it.
    pub fn service_counters(&self, id: u32) -> Result<Counters> {
        let mut total = self.counters(names::RETIRED_STATS, id)?;
        let backends: Array<&MapData, Backend> = Array::try_from(self.map_ref(names::BACKENDS)?)?;
        // The ids this harness gave out (0 never is).
        for backend_id in 1..self.next_backend_id {
            if backends.get(&backend_id, 0)?.service_id == id {
                total.add(&self.counters(names::BACKEND_STATS, backend_id)?);
            }
        }
        Ok(total)
    }

    pub fn backend_counters(&self, id: u32) -> Result<Counters> {
        self.counters(names::BACKEND_STATS, id)
    }

    /// All connection-table entries (used slots, live or not).
    pub fn conntrack(&self) -> Result<Vec<(FlowKey, Flow)>> {
        let (buckets, tags) = self.conntrack_maps()?;
        let mut out = Vec::new();
        for (b, t) in buckets.iter().zip(tags.iter()) {
            out.extend(b?.entries(t?));
        }
        Ok(out)
    }

    /// The entries (used slots) of connection-table bucket `index`.
    pub fn conntrack_bucket(&self, index: u32) -> Result<Vec<(FlowKey, Flow)>> {
        let (buckets, tags) = self.conntrack_maps()?;
        Ok(buckets
            .get(&index, 0)?
            .entries(tags.get(&index, 0)?)
            .collect())
    }

    /// The connection table's buckets and their tag words.
    fn conntrack_maps(&self) -> Result<(TableMap<'_, FlowBucket>, TableMap<'_, u64>)> {
        Ok((
            Array::try_from(self.map_ref(names::CONNTRACK)?)?,
            Array::try_from(self.map_ref(names::CONNTRACK_TAGS)?)?,
        ))
    }

    /// Connection-table bucket `index` as stored, and its tag word.
    pub fn bucket_raw(&self, index: u32) -> Result<(FlowBucket, u64)> {
        let (buckets, tags) = self.conntrack_maps()?;
        Ok((buckets.get(&index, 0)?, tags.get(&index, 0)?))
    }

    /// Overwrites the tag word of connection-table bucket `index`.
    pub fn set_bucket_tags(&mut self, index: u32, word: u64) -> Result<()> {
        let mut tags: Array<&mut MapData, u64> = Array::try_from(self.map(names::CONNTRACK_TAGS)?)?;
        tags.set(index, word, 0)?;
        Ok(())
    }

    /// Claims every slot of connection-table bucket `index` (their tags
    /// set to `CLAIMED`), as if other CPUs were writing them all
    /// (`claimed`), or gives them back: a slot holding an entry gets its
    /// key's tag again, an empty one is free.
    pub fn set_bucket_claimed(&mut self, index: u32, claimed: bool) -> Result<()> {
        let (b, _) = self.bucket_raw(index)?;
        let word = (0..FLOW_WAYS).fold(0, |word, way| {
            let key = &b.keys[way];
            let t = if claimed {
                tag::CLAIMED
            } else if key.proto != 0 {
                tag::of(key)
            } else {
                tag::FREE
            };
            tag::with(word, way, t)
        });
        self.set_bucket_tags(index, word)
    }

    /// The connection-table bucket a client end (address, port, protocol)
    /// hashes to in the harness's table.
    pub fn client_bucket(client: SocketAddrV4, proto: u8) -> u32 {
        bucket_index(
            ip_be(*client.ip()),
            client.port().to_be(),
            proto,
            &FLOW_HASH,
        )
    }
}

/// Keeps the calling thread on the CPU it is on, so the per-CPU state the
/// runs share (token buckets, next-hop caches) is one CPU's: each
/// `BPF_PROG_TEST_RUN` runs on the caller's CPU.
pub fn stay_on_this_cpu() -> Result<()> {
    // SAFETY: plain syscalls on this thread; `set` is a valid cpu_set_t.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getcpu");
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
        }
    }
    Ok(())
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

pub fn vip_key(vip: SocketAddrV4, proto: u8) -> VipKey {
    VipKey {
        ip: ip_be(*vip.ip()),
        port: vip.port().to_be(),
        proto,
        _pad: 0,
    }
}
