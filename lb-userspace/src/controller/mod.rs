//! The controller: the configuration, the datapath that carries it out and
//! the state file that keeps it, changed together under one lock. Invalid
//! input is refused before anything changes; a failure midway (datapath or
//! state file) is rolled back so configuration, maps and file agree.

mod tunnels;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use lb_common::{DecapStat, GlobalStat};

use crate::{
    config::{ServiceKey, ServiceSpec, TunnelSpec},
    datapath::{Clock, Conntrack, Datapath, DatapathError, ServiceCounters},
    state::{StateError, StateStore},
};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("service {0} not found")]
    NotFound(ServiceKey),
    #[error("service {0} already exists")]
    Exists(ServiceKey),
    #[error("tunnel {0} not found")]
    TunnelNotFound(String),
    #[error("pod_cidr {pod_cidr} is already tunnel {other}'s")]
    TunnelConflict { pod_cidr: String, other: String },
    #[error("{0}")]
    Full(String),
    /// The load balancer's end of a tunnel could not be resolved.
    #[error("{0}")]
    TunnelSource(DatapathError),
    /// A source-NATing service's source address could not be chosen.
    #[error("{0}")]
    SnatSource(DatapathError),
    #[error("datapath: {0}")]
    Datapath(DatapathError),
    #[error("saving the configuration: {0}")]
    State(#[from] StateError),
    #[error("reading the saved configuration: {0}")]
    Restore(#[source] StateError),
}

impl From<DatapathError> for ControllerError {
    fn from(e: DatapathError) -> Self {
        match e {
            DatapathError::Full(m) => ControllerError::Full(m),
            e @ DatapathError::TunnelSource { .. } => ControllerError::TunnelSource(e),
            e @ DatapathError::SnatSource { .. } => ControllerError::SnatSource(e),
            e => ControllerError::Datapath(e),
        }
    }
}

/// What `Controller::put` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
    /// The same definition was already in place.
    Unchanged,
}

/// A service with its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    pub spec: ServiceSpec,
    pub counters: ServiceCounters,
}

/// Everything `/metrics` shows.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    pub services: Vec<ServiceStatus>,
    pub global: Vec<(GlobalStat, u64)>,
    /// The decapsulation program's counters.
    pub decap: Vec<(DecapStat, u64)>,
    /// Live connection-table entries at the last scan.
    pub conntrack_entries: u64,
}

struct Inner {
    config: BTreeMap<ServiceKey, ServiceSpec>,
    /// Tunnel routes by name (see `tunnels.rs`).
    tunnels: BTreeMap<String, TunnelSpec>,
    datapath: Datapath,
}

pub struct Controller {
    inner: Mutex<Inner>,
    store: Option<StateStore>,
    conntrack: Arc<Conntrack>,
    clock: Arc<Clock>,
}

impl Controller {
    /// Takes over `datapath`, restoring the services and tunnel routes saved
    /// in `store` (and adopting the ids already in the pinned maps). Without
    /// a store nothing is persisted and the maps are emptied.
    pub fn new(mut datapath: Datapath, store: Option<StateStore>) -> Result<Self, ControllerError> {
        let saved = match &store {
            Some(s) => s.load_all().map_err(ControllerError::Restore)?,
            None => Default::default(),
        };
        let services = saved.services;
        // Tunnel routes first: an onearm service's source address depends
        // on them.
        datapath.restore_tunnels(&saved.tunnels)?;
        datapath.restore(&services)?;
        if !services.is_empty() {
            tracing::info!(count = services.len(), "restored services");
        }
        if !saved.tunnels.is_empty() {
            tracing::info!(count = saved.tunnels.len(), "restored tunnel routes");
        }
        let conntrack = datapath.conntrack();
        let clock = datapath.clock();
        Ok(Self {
            inner: Mutex::new(Inner {
                config: services.into_iter().map(|s| (s.key(), s)).collect(),
                tunnels: saved
                    .tunnels
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect(),
                datapath,
            }),
            store,
            conntrack,
            clock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection table (for the scan task).
    pub fn conntrack(&self) -> Arc<Conntrack> {
        Arc::clone(&self.conntrack)
    }

    /// The datapath's clock (for the clock task).
    pub fn clock(&self) -> Arc<Clock> {
        Arc::clone(&self.clock)
    }

    /// Every service, ordered by key.
    pub fn list(&self) -> Vec<ServiceSpec> {
        self.lock().config.values().cloned().collect()
    }

    pub fn get(&self, key: &ServiceKey) -> Result<ServiceSpec, ControllerError> {
        self.lock()
            .config
            .get(key)
            .cloned()
            .ok_or(ControllerError::NotFound(*key))
    }

    /// A service and its counters.
    pub fn status(&self, key: &ServiceKey) -> Result<ServiceStatus, ControllerError> {
        let inner = self.lock();
        let spec = inner
            .config
            .get(key)
            .cloned()
            .ok_or(ControllerError::NotFound(*key))?;
        let counters = inner
            .datapath
            .service_counters(key)?
            .ok_or(ControllerError::NotFound(*key))?;
        Ok(ServiceStatus { spec, counters })
    }

    /// Creates or replaces `spec`.
    pub fn put(&self, spec: ServiceSpec) -> Result<PutOutcome, ControllerError> {
        self.put_locked(&mut self.lock(), spec)
    }

    /// `put` under the lock the caller holds.
    fn put_locked(
        &self,
        inner: &mut Inner,
        spec: ServiceSpec,
    ) -> Result<PutOutcome, ControllerError> {
        let key = spec.key();
        let old = inner.config.get(&key).cloned();
        if old.as_ref() == Some(&spec) {
            return Ok(PutOutcome::Unchanged);
        }
        inner.datapath.apply(&spec)?;
        inner.config.insert(key, spec);
        if let Err(e) = self.persist(inner) {
            // Put back what was there.
            let undo = match &old {
                Some(o) => inner.datapath.apply(o),
                None => inner.datapath.remove(&key).map(drop),
            };
            if let Err(u) = undo {
                tracing::error!(service = %key, error = %u, "rolling back the datapath failed");
            }
            match old {
                Some(o) => inner.config.insert(key, o),
                None => inner.config.remove(&key),
            };
            return Err(e);
        }
        Ok(if old.is_some() {
            PutOutcome::Replaced
        } else {
            PutOutcome::Created
        })
    }

    /// Creates `spec`; `Exists` if its key is taken.
    pub fn create(&self, spec: ServiceSpec) -> Result<(), ControllerError> {
        let mut inner = self.lock();
        let key = spec.key();
        if inner.config.contains_key(&key) {
            return Err(ControllerError::Exists(key));
        }
        self.put_locked(&mut inner, spec).map(drop)
    }

    /// Deletes service `key`, returning what it was.
    pub fn delete(&self, key: &ServiceKey) -> Result<ServiceSpec, ControllerError> {
        let mut inner = self.lock();
        let old = inner
            .config
            .remove(key)
            .ok_or(ControllerError::NotFound(*key))?;
        if let Err(e) = inner.datapath.remove(key) {
            inner.config.insert(*key, old);
            return Err(e.into());
        }
        if let Err(e) = self.persist(&inner) {
            if let Err(u) = inner.datapath.apply(&old) {
                tracing::error!(service = %key, error = %u, "rolling back the datapath failed");
            }
            inner.config.insert(*key, old);
            return Err(e);
        }
        Ok(old)
    }

    fn persist(&self, inner: &Inner) -> Result<(), ControllerError> {
        if let Some(store) = &self.store {
            let services: Vec<ServiceSpec> = inner.config.values().cloned().collect();
            let tunnels: Vec<TunnelSpec> = inner.tunnels.values().cloned().collect();
            store.save(&services, &tunnels)?;
        }
        Ok(())
    }

    /// Everything `/metrics` shows.
    pub fn metrics(&self) -> Result<MetricsSnapshot, ControllerError> {
        let inner = self.lock();
        let mut services = Vec::with_capacity(inner.config.len());
        for (key, spec) in &inner.config {
            if let Some(counters) = inner.datapath.service_counters(key)? {
                services.push(ServiceStatus {
                    spec: spec.clone(),
                    counters,
                });
            }
        }
        Ok(MetricsSnapshot {
            services,
            global: inner.datapath.global_counters()?,
            decap: inner.datapath.decap_counters()?,
            conntrack_entries: self.conntrack.last_entry_count(),
        })
    }

    /// Runs `f` on the datapath (tests inspect the maps through it).
    pub fn with_datapath<R>(&self, f: impl FnOnce(&Datapath) -> R) -> R {
        f(&self.lock().datapath)
    }

    /// Detaches the program from its interfaces; maps stay pinned.
    pub fn detach(&self) -> Result<(), DatapathError> {
        self.lock().datapath.detach()
    }
}
