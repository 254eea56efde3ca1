//! Tunnel routes in the `TUNNELS` LPM trie: pod network prefix → the node
//! behind it. Every change either completes or leaves the map as it was.

use std::{collections::BTreeSet, net::Ipv4Addr};

use aya::maps::{
    MapData, MapError,
    lpm_trie::{Key, LpmTrie},
};
use lb_common::{Tunnel, maps as names};

use super::{Datapath, DatapathError};
use crate::config::{Ipv4Cidr, TunnelSpec};

pub(crate) struct Tunnels {
    map: LpmTrie<MapData, u32, Tunnel>,
}

fn err(e: MapError) -> DatapathError {
    DatapathError::map(names::TUNNELS)(e)
}

fn cidr_of(key: &Key<u32>) -> Option<Ipv4Cidr> {
    let len = u8::try_from(key.prefix_len()).ok()?;
    Ipv4Cidr::new(Ipv4Addr::from(key.data().to_ne_bytes()), len)
}

impl Tunnels {
    pub(crate) fn new(map: LpmTrie<MapData, u32, Tunnel>) -> Self {
        Self { map }
    }

    fn get(&self, cidr: &Ipv4Cidr) -> Result<Option<Tunnel>, DatapathError> {
        match self.map.get(&cidr.lpm_key(), 0) {
            Ok(v) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    fn write(&mut self, cidr: &Ipv4Cidr, value: Option<Tunnel>) -> Result<(), DatapathError> {
        let key = cidr.lpm_key();
        match value {
            Some(v) => self.map.insert(&key, v, 0).map_err(err),
            None => match self.map.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
                Err(e) => Err(err(e)),
            },
        }
    }

    /// Every prefix in the map.
    fn prefixes(&self) -> Result<Vec<Key<u32>>, DatapathError> {
        self.map.keys().collect::<Result<_, _>>().map_err(err)
    }
}

impl Datapath {
    /// Installs `new`, replacing `old` (the same tunnel's previous
    /// definition): the new prefix is written first, then the old prefix, if
    /// it changed, removed. On failure the map is as it was.
    pub fn put_tunnel(
        &mut self,
        old: Option<&TunnelSpec>,
        new: &TunnelSpec,
    ) -> Result<(), DatapathError> {
        let t = &mut self.tunnels;
        let before = t.get(&new.pod_cidr)?;
        t.write(&new.pod_cidr, Some(new.datapath_value()))?;
        if let Some(old) = old.filter(|o| o.pod_cidr != new.pod_cidr)
            && let Err(e) = t.write(&old.pod_cidr, None)
        {
            if let Err(u) = t.write(&new.pod_cidr, before) {
                tracing::error!(error = %u, "rollback of a TUNNELS write failed");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Removes `spec`'s prefix.
    pub fn remove_tunnel(&mut self, spec: &TunnelSpec) -> Result<(), DatapathError> {
        self.tunnels.write(&spec.pod_cidr, None)
    }

    /// Makes `TUNNELS` hold exactly `tunnels` (entries pinned by an earlier
    /// run and no longer configured are removed).
    pub fn restore_tunnels(&mut self, tunnels: &[TunnelSpec]) -> Result<(), DatapathError> {
        let wanted: BTreeSet<Ipv4Cidr> = tunnels.iter().map(|t| t.pod_cidr).collect();
        for key in self.tunnels.prefixes()? {
            if cidr_of(&key).is_some_and(|c| wanted.contains(&c)) {
                continue;
            }
            match self.tunnels.map.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(err(e)),
            }
        }
        for t in tunnels {
            self.tunnels.write(&t.pod_cidr, Some(t.datapath_value()))?;
        }
        Ok(())
    }

    /// The tunnel whose prefix is the longest one holding `ip`, as the
    /// datapath will look it up.
    pub fn tunnel_lookup(&self, ip: Ipv4Addr) -> Result<Option<Tunnel>, DatapathError> {
        match self
            .tunnels
            .map
            .get(&Key::new(32, u32::from_ne_bytes(ip.octets())), 0)
        {
            Ok(v) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Every `TUNNELS` entry, by prefix (a key that is no valid network,
    /// which only another writer could leave, is skipped).
    pub fn tunnel_entries(&self) -> Result<Vec<(Ipv4Cidr, Tunnel)>, DatapathError> {
        let mut out = Vec::new();
        for key in self.tunnels.prefixes()? {
            if let Some(cidr) = cidr_of(&key) {
                out.push((cidr, self.tunnels.map.get(&key, 0).map_err(err)?));
            }
        }
        out.sort_by_key(|(c, _)| *c);
        Ok(out)
    }
}
