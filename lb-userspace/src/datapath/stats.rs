//! Counters read from the per-CPU maps, summed over CPUs.

use std::net::Ipv4Addr;

use lb_common::{Counters, GlobalStat};

use super::{Datapath, DatapathError};
use crate::config::ServiceKey;

/// A backend's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendCounters {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub counters: Counters,
}

/// A service's counters and its backends'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCounters {
    pub service: Counters,
    pub backends: Vec<BackendCounters>,
}

impl Datapath {
    /// Counters of service `key` (None: not installed): its backends' and
    /// those of the backends that left it (the datapath counts per backend
    /// only).
    pub fn service_counters(
        &self,
        key: &ServiceKey,
    ) -> Result<Option<ServiceCounters>, DatapathError> {
        let Some(inst) = self.installed.get(key) else {
            return Ok(None);
        };
        let mut service = self.maps.retired_counters(inst.id)?;
        let backends: Vec<BackendCounters> = inst
            .backends
            .iter()
            .map(|(&(ip, port), h)| {
                Ok(BackendCounters {
                    ip,
                    port,
                    counters: self.maps.backend_counters(h.id)?,
                })
            })
            .collect::<Result<_, DatapathError>>()?;
        for b in &backends {
            service.add(&b.counters);
        }
        Ok(Some(ServiceCounters { service, backends }))
    }

    /// Every `GLOBAL_STATS` counter.
    pub fn global_counters(&self) -> Result<Vec<(GlobalStat, u64)>, DatapathError> {
        let total = self.maps.global_counters()?;
        Ok(GlobalStat::ALL.iter().map(|&s| (s, total.get(s))).collect())
    }
}
