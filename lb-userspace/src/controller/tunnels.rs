//! The controller's tunnel routes: configuration, `TUNNELS` map and state
//! file changed together, rolled back on failure.

use lb_common::limits::MAX_TUNNELS;

use super::{Controller, ControllerError, Inner, PutOutcome};
use crate::config::{Mode, TunnelSpec};

impl Controller {
    /// Every tunnel route, ordered by name.
    pub fn list_tunnels(&self) -> Vec<TunnelSpec> {
        self.lock().tunnels.values().cloned().collect()
    }

    pub fn get_tunnel(&self, name: &str) -> Result<TunnelSpec, ControllerError> {
        self.lock()
            .tunnels
            .get(name)
            .cloned()
            .ok_or_else(|| ControllerError::TunnelNotFound(name.to_string()))
    }

    /// Creates or replaces tunnel `spec.name`. Its `pod_cidr` must not be
    /// another tunnel's (`TunnelConflict`).
    pub fn put_tunnel(&self, spec: TunnelSpec) -> Result<PutOutcome, ControllerError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let old = inner.tunnels.get(&spec.name).cloned();
        if old.as_ref() == Some(&spec) {
            return Ok(PutOutcome::Unchanged);
        }
        if let Some(other) = inner
            .tunnels
            .values()
            .find(|t| t.name != spec.name && t.pod_cidr == spec.pod_cidr)
        {
            return Err(ControllerError::TunnelConflict {
                pod_cidr: spec.pod_cidr.to_string(),
                other: other.name.clone(),
            });
        }
        if old.is_none() && inner.tunnels.len() >= MAX_TUNNELS as usize {
            return Err(ControllerError::Full(format!(
                "{MAX_TUNNELS} tunnel routes already, the most the datapath holds"
            )));
        }
        inner.datapath.put_tunnel(old.as_ref(), &spec)?;
        inner.tunnels.insert(spec.name.clone(), spec.clone());
        if let Err(e) = self.persist(inner) {
            let undo = match &old {
                Some(o) => inner.datapath.put_tunnel(Some(&spec), o),
                None => inner.datapath.remove_tunnel(&spec),
            };
            if let Err(u) = undo {
                tracing::error!(tunnel = %spec.name, error = %u, "rolling back the datapath failed");
            }
            match old {
                Some(o) => inner.tunnels.insert(o.name.clone(), o),
                None => inner.tunnels.remove(&spec.name),
            };
            return Err(e);
        }
        inner.refresh_onearm();
        Ok(if old.is_some() {
            PutOutcome::Replaced
        } else {
            PutOutcome::Created
        })
    }

    /// Deletes tunnel `name`, returning what it was.
    pub fn delete_tunnel(&self, name: &str) -> Result<TunnelSpec, ControllerError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let old = inner
            .tunnels
            .remove(name)
            .ok_or_else(|| ControllerError::TunnelNotFound(name.to_string()))?;
        if let Err(e) = inner.datapath.remove_tunnel(&old) {
            inner.tunnels.insert(old.name.clone(), old);
            return Err(e.into());
        }
        if let Err(e) = self.persist(inner) {
            if let Err(u) = inner.datapath.put_tunnel(None, &old) {
                tracing::error!(tunnel = %name, error = %u, "rolling back the datapath failed");
            }
            inner.tunnels.insert(old.name.clone(), old);
            return Err(e);
        }
        inner.refresh_onearm();
        Ok(old)
    }
}

impl Inner {
    /// Re-programs `onearm` services after a tunnel route changed: their
    /// source address toward a backend is the tunnel source of the route the
    /// backend is behind (`datapath::snat_source`). Failures are logged (the
    /// tunnel change itself stands; the service keeps its earlier source).
    fn refresh_onearm(&mut self) {
        for spec in self.config.values().filter(|s| s.mode == Mode::Onearm) {
            if let Err(e) = self.datapath.refresh_snat(spec) {
                tracing::error!(service = %spec.key(), error = %e, "updating the onearm source address failed");
            }
        }
    }
}
