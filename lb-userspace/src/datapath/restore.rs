//! Taking over the services already in the pinned maps at start, so a
//! restarted daemon keeps the service and backend ids (and thus the
//! connections) of the previous run.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use lb_common::{limits, service::BACKEND_ACTIVE};

use super::{BackendHandle, Datapath, DatapathError, InstalledService};
use crate::config::{ServiceKey, ServiceSpec};

impl Datapath {
    /// Makes the maps hold exactly `services`, reusing the ids found in the
    /// pinned maps: a service already there keeps its id, a backend already
    /// there keeps its id and generation. Whatever the maps hold beyond
    /// `services` is removed (its connections end at their next packet). A
    /// service whose SNAT source cannot be chosen now is left as the maps
    /// hold it (logged).
    pub fn restore(&mut self, services: &[ServiceSpec]) -> Result<(), DatapathError> {
        self.adopt()?;
        for spec in services {
            match self.apply(spec) {
                // The route an onearm service's source comes from may be
                // missing at start: the daemon starts anyway, the service is
                // programmed when a tunnel route changes or it is put again.
                Err(e @ DatapathError::SnatSource { .. }) => {
                    tracing::error!(service = %spec.key(), error = %e, "service not restored");
                }
                r => r?,
            }
        }
        let wanted: BTreeSet<ServiceKey> = services.iter().map(ServiceSpec::key).collect();
        let stale: Vec<ServiceKey> = self
            .installed
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            tracing::info!(service = %key, "removing a service left in the maps");
            self.remove(&key)?;
        }
        self.rebuild_vips()
    }

    /// Reads `SERVICES` and `BACKENDS` into `installed` and the allocators.
    /// Entries that cannot be adopted are removed.
    fn adopt(&mut self) -> Result<(), DatapathError> {
        let mut by_id: BTreeMap<u32, ServiceKey> = BTreeMap::new();
        for (vip_key, svc) in self.maps.service_entries()? {
            let key = ServiceKey::from_vip_key(&vip_key);
            match key {
                Some(key) if self.service_ids.reserve(svc.id) => {
                    by_id.insert(svc.id, key);
                    self.installed.insert(
                        key,
                        InstalledService {
                            id: svc.id,
                            backends: BTreeMap::new(),
                        },
                    );
                }
                _ => {
                    tracing::warn!(
                        ?vip_key,
                        id = svc.id,
                        "dropping a SERVICES entry that cannot be adopted"
                    );
                    self.maps.write_service(vip_key, None)?;
                }
            }
        }
        let mut orphans = Vec::new();
        for id in 1..limits::MAX_BACKENDS {
            let b = self.maps.backend(id)?;
            if b.flags & BACKEND_ACTIVE == 0 {
                continue;
            }
            let owner = by_id
                .get(&b.service_id)
                .and_then(|k| self.installed.get_mut(k));
            let addr = (Ipv4Addr::from(b.ip.to_ne_bytes()), u16::from_be(b.port));
            match owner {
                Some(inst)
                    if !inst.backends.contains_key(&addr) && self.backend_ids.reserve(id) =>
                {
                    inst.backends.insert(
                        addr,
                        BackendHandle {
                            id,
                            generation: b.generation,
                        },
                    );
                }
                _ => {
                    let mut off = b;
                    off.flags &= !BACKEND_ACTIVE;
                    self.maps.write_backend(id, off)?;
                    orphans.push(BackendHandle {
                        id,
                        generation: b.generation,
                    });
                }
            }
        }
        if !orphans.is_empty() {
            tracing::info!(
                count = orphans.len(),
                "deactivated backends without a service"
            );
        }
        if !self.installed.is_empty() {
            tracing::info!(
                services = self.installed.len(),
                "adopted services from the pinned maps"
            );
        }
        Ok(())
    }

    /// Sets `VIPS` from the installed services, removing other entries.
    fn rebuild_vips(&mut self) -> Result<(), DatapathError> {
        let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
        for key in self.installed.keys() {
            *counts.entry(key.vip_key().ip).or_default() += 1;
        }
        for vip in self.maps.vip_entries()? {
            if !counts.contains_key(&vip) {
                self.maps.write_vip_count(vip, None)?;
            }
        }
        for (vip, count) in counts {
            self.maps.write_vip_count(vip, Some(count))?;
        }
        Ok(())
    }
}
