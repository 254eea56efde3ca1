//! Programming one service into the maps: id allocation, write order,
//! rollback, backend deactivation (the datapath ends a deactivated backend's
//! connections at their next packet).

use std::{collections::BTreeMap, net::Ipv4Addr};

use lb_common::{Backend, Service, limits::RING_SIZE};

use super::{Datapath, DatapathError, journal::Journal, ring::build_ring};
use crate::config::{ServiceKey, ServiceSpec};

/// A backend's id in `BACKENDS` and the generation it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendHandle {
    pub id: u32,
    pub generation: u32,
}

/// What the maps hold for one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstalledService {
    pub id: u32,
    /// By backend address.
    pub backends: BTreeMap<(Ipv4Addr, u16), BackendHandle>,
}

/// Ids taken during a change, given back if it fails.
#[derive(Default)]
struct Taken {
    service: Option<u32>,
    backends: Vec<u32>,
}

impl Datapath {
    /// Creates or replaces `spec` in the maps. A replaced service keeps its
    /// id; a backend present before and after keeps its id and generation
    /// (its connections continue); removed backends are deactivated (their
    /// connections end at their next packet). On error the maps are left as they were.
    pub fn apply(&mut self, spec: &ServiceSpec) -> Result<(), DatapathError> {
        let key = spec.key();
        let mut journal = Journal::default();
        let mut taken = Taken::default();
        match self.apply_writes(spec, &mut journal, &mut taken) {
            Ok((installed, removed)) => {
                for h in &removed {
                    self.retire_counters(installed.id, h.id);
                    self.backend_ids.release(h.id);
                }
                self.installed.insert(key, installed);
                Ok(())
            }
            Err(e) => {
                journal.rollback(&mut self.maps);
                if let Some(id) = taken.service {
                    self.service_ids.release(id);
                }
                for id in taken.backends {
                    self.backend_ids.release(id);
                }
                Err(e)
            }
        }
    }

    fn apply_writes(
        &mut self,
        spec: &ServiceSpec,
        j: &mut Journal,
        taken: &mut Taken,
    ) -> Result<(InstalledService, Vec<BackendHandle>), DatapathError> {
        let key = spec.key();
        let prior = self.installed.get(&key).cloned();
        let service_id = match &prior {
            Some(p) => p.id,
            None => {
                let id = self.service_ids.allocate().ok_or_else(|| {
                    DatapathError::Full(format!(
                        "no room for another service (at most {})",
                        self.service_ids.capacity()
                    ))
                })?;
                taken.service = Some(id);
                self.maps.reset_service_state(id)?;
                id
            }
        };
        let mut old_backends = prior.map(|p| p.backends).unwrap_or_default();
        // Source addresses first: a service whose source cannot be chosen
        // changes nothing.
        let snat: Vec<u32> = spec
            .backends
            .iter()
            .map(|b| self.snat_source(spec, b.ip))
            .collect::<Result<_, _>>()?;

        // 1. Backends.
        let mut installed = InstalledService {
            id: service_id,
            backends: BTreeMap::new(),
        };
        let mut ids = Vec::with_capacity(spec.backends.len());
        for (b, &snat_ip) in spec.backends.iter().zip(&snat) {
            let addr = (b.ip, b.port);
            let handle = match old_backends.remove(&addr) {
                Some(h) => {
                    // Kept (its connections go on); new connections take a
                    // changed source address.
                    let mut value = self.maps.backend(h.id)?;
                    if value.snat_ip != snat_ip {
                        value.snat_ip = snat_ip;
                        self.maps.set_backend(j, h.id, value)?;
                    }
                    h
                }
                None => {
                    let id = self.backend_ids.allocate().ok_or_else(|| {
                        DatapathError::Full(format!(
                            "no room for another backend (at most {} over all services)",
                            self.backend_ids.capacity()
                        ))
                    })?;
                    taken.backends.push(id);
                    let generation = self.maps.backend(id)?.generation.wrapping_add(1);
                    self.maps.reset_backend_stats(id)?;
                    self.maps.set_backend(
                        j,
                        id,
                        Backend {
                            ip: u32::from_ne_bytes(b.ip.octets()),
                            port: b.port.to_be(),
                            flags: lb_common::service::BACKEND_ACTIVE,
                            generation,
                            service_id,
                            snat_ip,
                        },
                    )?;
                    BackendHandle { id, generation }
                }
            };
            ids.push(handle.id);
            installed.backends.insert(addr, handle);
        }

        // 2. Ring slots, 3. the service (never pointing past what is written).
        let weights: Vec<u32> = spec.backends.iter().map(|b| b.weight).collect();
        let ring = build_ring(&weights);
        for (slot, &index) in ring.iter().enumerate() {
            self.maps
                .set_ring_slot(j, service_id * RING_SIZE + slot as u32, ids[index])?;
        }
        let vip_key = key.vip_key();
        self.maps.set_service(
            j,
            vip_key,
            Some(Service {
                id: service_id,
                slot_count: ring.len() as u32,
                timeout_s: spec.timeout_s,
                mode: spec.mode.datapath_value(),
                select: spec.select.datapath_value(),
                _pad: 0,
            }),
        )?;

        // 4. VIPS.
        if taken.service.is_some() {
            let count = self.maps.vip_count(vip_key.ip)?.unwrap_or(0);
            self.maps
                .set_vip_count(j, vip_key.ip, Some(count.saturating_add(1)))?;
        }

        // 5. Backends no longer in the list: out of the ring now, deactivate.
        let removed: Vec<BackendHandle> = old_backends.into_values().collect();
        for h in &removed {
            self.deactivate(j, h.id)?;
        }
        Ok((installed, removed))
    }

    /// Folds the counters of backend `backend`, which left service
    /// `service`, into the service's (`RETIRED_STATS`), before its id is
    /// reused. Counters are not configuration: a failure is logged, the
    /// change stands.
    fn retire_counters(&mut self, service: u32, backend: u32) {
        if let Err(e) = self.maps.retire_backend_counters(service, backend) {
            tracing::warn!(service, backend, error = %e, "counters of a removed backend lost");
        }
    }

    fn deactivate(&mut self, j: &mut Journal, id: u32) -> Result<(), DatapathError> {
        let mut b = self.maps.backend(id)?;
        b.flags &= !lb_common::service::BACKEND_ACTIVE;
        self.maps.set_backend(j, id, b)
    }

    /// Removes service `key`: its `SERVICES` entry, its share of `VIPS`, its
    /// backends (deactivated, their connections end). Returns false if it was
    /// not installed.
    pub fn remove(&mut self, key: &ServiceKey) -> Result<bool, DatapathError> {
        let Some(inst) = self.installed.get(key).cloned() else {
            return Ok(false);
        };
        let mut journal = Journal::default();
        match self.remove_writes(key, &inst, &mut journal) {
            Ok(()) => {
                self.installed.remove(key);
                self.service_ids.release(inst.id);
                for h in inst.backends.values() {
                    self.backend_ids.release(h.id);
                }
                Ok(true)
            }
            Err(e) => {
                journal.rollback(&mut self.maps);
                Err(e)
            }
        }
    }

    fn remove_writes(
        &mut self,
        key: &ServiceKey,
        inst: &InstalledService,
        j: &mut Journal,
    ) -> Result<(), DatapathError> {
        let vip_key = key.vip_key();
        self.maps.set_service(j, vip_key, None)?;
        let count = self.maps.vip_count(vip_key.ip)?.unwrap_or(0);
        self.maps
            .set_vip_count(j, vip_key.ip, count.checked_sub(1).filter(|&c| c > 0))?;
        for h in inst.backends.values() {
            self.deactivate(j, h.id)?;
        }
        Ok(())
    }
}
