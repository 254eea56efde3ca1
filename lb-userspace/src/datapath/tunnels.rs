//! Tunnel routes in the `TUNNELS` LPM trie: pod network prefix → the node
//! behind it, with the load balancer's end of the tunnel resolved
//! (`tunnel_source.rs`); and `TUNNEL_ENDPOINTS`, the (address, encapsulation,
//! VXLAN port and VNI) endpoints where encapsulated replies arrive, kept in
//! step with the routes, with them in `TUNNEL_ENDPOINT_SET` (inline
//! where they fit, `lb_common::tunnel::EndpointSet`).
//! Every change either completes or leaves the maps as they were.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use aya::{
    Pod,
    maps::{
        Array, HashMap, MapData, MapError,
        lpm_trie::{Key, LpmTrie},
    },
};
use lb_common::{
    EndpointSet, Tunnel, TunnelEndpoint,
    limits::MAX_TUNNEL_ENDPOINTS,
    maps as names, proto,
    tunnel::{encap, vni_wire},
};

use super::{
    Datapath, DatapathError,
    maps::{optional, removed},
    tunnel_source::TunnelEndConfig,
};
use crate::config::{Ipv4Cidr, TunnelSpec};

pub(crate) struct Tunnels {
    map: LpmTrie<MapData, u32, Tunnel>,
    endpoints: HashMap<MapData, TunnelEndpoint, u32>,
    /// `TUNNEL_NODES`: the nodes of the encapsulating routes (path MTUs are
    /// learned toward them only).
    nodes: HashMap<MapData, u32, u32>,
    /// `TUNNEL_ENDPOINT_SET`: the endpoints compared inline, and how many
    /// more only `endpoints` holds.
    set: Array<MapData, EndpointSet>,
    end: TunnelEndConfig,
    /// What `map` holds (valid prefixes) and which endpoints `endpoints`
    /// holds: read from the maps once, then kept in step with every write,
    /// so a change costs its own writes, not a walk over both maps.
    routes: BTreeMap<Ipv4Cidr, Tunnel>,
    present: BTreeSet<TunnelEndpoint>,
    /// Which nodes `nodes` holds (kept in step like `present`).
    present_nodes: BTreeSet<u32>,
    /// What `set` holds (kept in step like `present`).
    inline: EndpointSet,
}

fn err(e: MapError) -> DatapathError {
    DatapathError::map(names::TUNNELS)(e)
}

fn ep_err(e: MapError) -> DatapathError {
    DatapathError::map(names::TUNNEL_ENDPOINTS)(e)
}

fn node_err(e: MapError) -> DatapathError {
    DatapathError::map(names::TUNNEL_NODES)(e)
}

fn cidr_of(key: &Key<u32>) -> Option<Ipv4Cidr> {
    let len = u8::try_from(key.prefix_len()).ok()?;
    Ipv4Cidr::new(Ipv4Addr::from(key.data().to_ne_bytes()), len)
}

/// Where the replies of an encapsulated route arrive; `None` for plain
/// routes and routes without a tunnel source.
fn endpoint_of(t: &Tunnel) -> Option<TunnelEndpoint> {
    if t.src_ip == 0 {
        return None;
    }
    let (port, proto, vni) = match t.encap {
        encap::IPIP => (0, proto::IPIP, 0),
        encap::VXLAN => (t.dst_port, proto::UDP, vni_wire(t.vni)),
        _ => return None,
    };
    Some(TunnelEndpoint {
        addr: t.src_ip,
        port,
        proto,
        _pad: 0,
        vni,
    })
}

impl Tunnels {
    pub(crate) fn new(
        map: LpmTrie<MapData, u32, Tunnel>,
        endpoints: HashMap<MapData, TunnelEndpoint, u32>,
        nodes: HashMap<MapData, u32, u32>,
        set: Array<MapData, EndpointSet>,
        end: TunnelEndConfig,
    ) -> Result<Self, DatapathError> {
        let mut t = Self {
            map,
            endpoints,
            nodes,
            set,
            end,
            routes: BTreeMap::new(),
            present: BTreeSet::new(),
            present_nodes: BTreeSet::new(),
            inline: EndpointSet::default(),
        };
        t.routes = t.entries()?.into_iter().collect();
        t.present = t
            .endpoints
            .keys()
            .collect::<Result<_, _>>()
            .map_err(ep_err)?;
        t.present_nodes = t.nodes.keys().collect::<Result<_, _>>().map_err(node_err)?;
        t.inline = t.endpoint_set()?;
        Ok(t)
    }

    /// `spec`'s map value, its local end resolved.
    fn value(&self, spec: &TunnelSpec) -> Result<Tunnel, DatapathError> {
        let end = self.end.resolve(spec)?;
        Ok(spec.datapath_value(end.map(|e| e.source), end.and_then(|e| e.vtep_mac)))
    }

    fn get(&self, cidr: &Ipv4Cidr) -> Option<Tunnel> {
        self.routes.get(cidr).copied()
    }

    fn write(&mut self, cidr: &Ipv4Cidr, value: Option<Tunnel>) -> Result<(), DatapathError> {
        let key = cidr.lpm_key();
        match value {
            Some(v) => {
                self.map.insert(&key, v, 0).map_err(err)?;
                self.routes.insert(*cidr, v);
            }
            None => {
                removed(self.map.remove(&key), names::TUNNELS)?;
                self.routes.remove(cidr);
            }
        }
        Ok(())
    }

    /// Every prefix in the map.
    fn prefixes(&self) -> Result<Vec<Key<u32>>, DatapathError> {
        self.map.keys().collect::<Result<_, _>>().map_err(err)
    }

    /// Every (valid) entry of `TUNNELS`.
    fn entries(&self) -> Result<Vec<(Ipv4Cidr, Tunnel)>, DatapathError> {
        let mut out = Vec::new();
        for key in self.prefixes()? {
            if let Some(cidr) = cidr_of(&key) {
                out.push((cidr, self.map.get(&key, 0).map_err(err)?));
            }
        }
        out.sort_by_key(|(c, _)| *c);
        Ok(out)
    }

    /// Makes `TUNNEL_ENDPOINTS` hold the endpoints of the routes in
    /// `TUNNELS` (value: how many routes use each), new ones first, and
    /// `TUNNEL_ENDPOINT_SET` hold them too, inline where they fit (written
    /// after the new ones and before the removals, in one update that keeps
    /// every remaining endpoint in its slot: the datapath never misses an
    /// endpoint that stays).
    fn sync_endpoints(&mut self) -> Result<(), DatapathError> {
        let wanted = count_by(&self.routes, endpoint_of);
        if wanted.len() > MAX_TUNNEL_ENDPOINTS as usize {
            return Err(DatapathError::Full(format!(
                "the tunnel routes need {} (tunnel source, encapsulation) endpoints, \
                 at most {MAX_TUNNEL_ENDPOINTS}",
                wanted.len()
            )));
        }
        put_counts(
            &mut self.endpoints,
            &mut self.present,
            &wanted,
            names::TUNNEL_ENDPOINTS,
        )?;
        let list: Vec<TunnelEndpoint> = wanted.keys().copied().collect();
        let next = self.inline.with_endpoints(&list);
        if next != self.inline {
            self.set
                .set(0, next, 0)
                .map_err(DatapathError::map(names::TUNNEL_ENDPOINT_SET))?;
            self.inline = next;
        }
        remove_uncounted(
            &mut self.endpoints,
            &mut self.present,
            &wanted,
            names::TUNNEL_ENDPOINTS,
        )?;
        self.sync_nodes()
    }

    /// What `TUNNEL_ENDPOINT_SET` holds.
    fn endpoint_set(&self) -> Result<EndpointSet, DatapathError> {
        self.set
            .get(&0, 0)
            .map_err(DatapathError::map(names::TUNNEL_ENDPOINT_SET))
    }

    /// Makes `TUNNEL_NODES` hold the nodes of the routes that have an
    /// endpoint (encapsulating, tunnel source resolved), new ones first.
    /// At most one per route: it never holds more than `TUNNELS`.
    fn sync_nodes(&mut self) -> Result<(), DatapathError> {
        let wanted = count_by(&self.routes, |t| endpoint_of(t).map(|_| t.node_ip));
        let (map, present) = (&mut self.nodes, &mut self.present_nodes);
        put_counts(map, present, &wanted, names::TUNNEL_NODES)?;
        remove_uncounted(map, present, &wanted, names::TUNNEL_NODES)
    }
}

/// How many of `routes` name each key `key_of` gives.
fn count_by<K: Ord>(
    routes: &BTreeMap<Ipv4Cidr, Tunnel>,
    key_of: impl Fn(&Tunnel) -> Option<K>,
) -> BTreeMap<K, u32> {
    let mut counts = BTreeMap::new();
    for key in routes.values().filter_map(key_of) {
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Writes `counts` into `map` (named `name`), noting the keys in `present`
/// (what the map holds).
fn put_counts<K: Pod + Ord>(
    map: &mut HashMap<MapData, K, u32>,
    present: &mut BTreeSet<K>,
    counts: &BTreeMap<K, u32>,
    name: &'static str,
) -> Result<(), DatapathError> {
    for (key, n) in counts {
        map.insert(key, n, 0).map_err(DatapathError::map(name))?;
        present.insert(*key);
    }
    Ok(())
}

/// Removes from `map` (named `name`) and `present` the keys `counts` does
/// not have.
fn remove_uncounted<K: Pod + Ord>(
    map: &mut HashMap<MapData, K, u32>,
    present: &mut BTreeSet<K>,
    counts: &BTreeMap<K, u32>,
    name: &'static str,
) -> Result<(), DatapathError> {
    let gone: Vec<K> = present
        .iter()
        .filter(|k| !counts.contains_key(k))
        .copied()
        .collect();
    for key in gone {
        removed(map.remove(&key), name)?;
        present.remove(&key);
    }
    Ok(())
}

impl Datapath {
    /// Installs `new`, replacing `old` (the same tunnel's previous
    /// definition): the load balancer's end is resolved first (an error
    /// changes nothing), the new prefix is written, then the old prefix, if
    /// it changed, removed, then the endpoints updated. On failure the maps
    /// are as they were.
    pub fn put_tunnel(
        &mut self,
        old: Option<&TunnelSpec>,
        new: &TunnelSpec,
    ) -> Result<(), DatapathError> {
        let t = &mut self.tunnels;
        let value = t.value(new)?;
        let before = t.get(&new.pod_cidr);
        let old_cidr = old.map(|o| o.pod_cidr).filter(|c| *c != new.pod_cidr);
        let old_before = old_cidr.as_ref().and_then(|c| t.get(c));
        t.write(&new.pod_cidr, Some(value))?;
        let mut result = match &old_cidr {
            Some(c) => t.write(c, None),
            None => Ok(()),
        };
        if result.is_ok() {
            result = t.sync_endpoints();
        }
        if let Err(e) = result {
            let undo = t
                .write(&new.pod_cidr, before)
                .and_then(|()| match &old_cidr {
                    Some(c) => t.write(c, old_before),
                    None => Ok(()),
                })
                .and_then(|()| t.sync_endpoints());
            if let Err(u) = undo {
                tracing::error!(error = %u, "rollback of a TUNNELS write failed");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Removes `spec`'s prefix (and the endpoints only it used).
    pub fn remove_tunnel(&mut self, spec: &TunnelSpec) -> Result<(), DatapathError> {
        self.tunnels.write(&spec.pod_cidr, None)?;
        self.tunnels.sync_endpoints()
    }

    /// Makes `TUNNELS` hold exactly `tunnels` (entries pinned by an earlier
    /// run and no longer configured are removed), and `TUNNEL_ENDPOINTS`
    /// their endpoints. A route whose local end cannot be resolved now (no
    /// route to its node yet) is written without a tunnel source, with a
    /// warning: the datapath drops new connections to it until the route is
    /// put again.
    pub fn restore_tunnels(&mut self, tunnels: &[TunnelSpec]) -> Result<(), DatapathError> {
        let wanted: BTreeSet<Ipv4Cidr> = tunnels.iter().map(|t| t.pod_cidr).collect();
        for key in self.tunnels.prefixes()? {
            if cidr_of(&key).is_some_and(|c| wanted.contains(&c)) {
                continue;
            }
            removed(self.tunnels.map.remove(&key), names::TUNNELS)?;
            if let Some(c) = cidr_of(&key) {
                self.tunnels.routes.remove(&c);
            }
        }
        for t in tunnels {
            let value = match self.tunnels.value(t) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel route restored without a tunnel source");
                    t.datapath_value(None, None)
                }
            };
            self.tunnels.write(&t.pod_cidr, Some(value))?;
        }
        self.tunnels.sync_endpoints()
    }

    /// The tunnel whose prefix is the longest one holding `ip`, as the
    /// datapath will look it up.
    pub fn tunnel_lookup(&self, ip: Ipv4Addr) -> Result<Option<Tunnel>, DatapathError> {
        let key = Key::new(32, u32::from_ne_bytes(ip.octets()));
        optional(self.tunnels.map.get(&key, 0), names::TUNNELS)
    }

    /// Every `TUNNELS` entry, by prefix (a key that is no valid network,
    /// which only another writer could leave, is skipped).
    pub fn tunnel_entries(&self) -> Result<Vec<(Ipv4Cidr, Tunnel)>, DatapathError> {
        self.tunnels.entries()
    }

    /// `TUNNEL_ENDPOINT_SET`: the endpoints the datapath compares inline,
    /// and how many more it looks up.
    pub fn tunnel_endpoint_set(&self) -> Result<EndpointSet, DatapathError> {
        self.tunnels.endpoint_set()
    }

    /// Every `TUNNEL_NODES` entry (node address, number of routes to it).
    pub fn tunnel_nodes(&self) -> Result<Vec<(Ipv4Addr, u32)>, DatapathError> {
        let mut out: Vec<(Ipv4Addr, u32)> = self
            .tunnels
            .nodes
            .iter()
            .map(|r| r.map(|(k, v)| (Ipv4Addr::from(k.to_ne_bytes()), v)))
            .collect::<Result<_, _>>()
            .map_err(node_err)?;
        out.sort();
        Ok(out)
    }

    /// Every `TUNNEL_ENDPOINTS` entry (endpoint, number of routes using it).
    pub fn tunnel_endpoints(&self) -> Result<Vec<(TunnelEndpoint, u32)>, DatapathError> {
        let mut out: Vec<_> = self
            .tunnels
            .endpoints
            .iter()
            .collect::<Result<_, _>>()
            .map_err(ep_err)?;
        out.sort();
        Ok(out)
    }
}
