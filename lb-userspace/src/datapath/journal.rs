//! Undo log of map writes, so a service change that fails midway leaves the
//! maps as they were.

use lb_common::{Backend, Service, VipKey};

use super::maps::Maps;

/// The value a write replaced.
pub(crate) enum Undo {
    Backend(u32, Backend),
    Ring(u32, u32),
    Service(VipKey, Option<Service>),
    Vip(u32, Option<u32>),
}

#[derive(Default)]
pub(crate) struct Journal(Vec<Undo>);

impl Journal {
    pub(crate) fn push(&mut self, u: Undo) {
        self.0.push(u);
    }

    /// Restores every replaced value, newest first (the reverse of the
    /// datapath-safe write order).
    pub(crate) fn rollback(self, maps: &mut Maps) {
        for undo in self.0.into_iter().rev() {
            let r = match undo {
                Undo::Backend(id, old) => maps.write_backend(id, old),
                Undo::Ring(index, old) => maps.write_ring_slot(index, old),
                Undo::Service(key, old) => maps.write_service(key, old),
                Undo::Vip(vip, old) => maps.write_vip_count(vip, old),
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "rollback of a map write failed");
            }
        }
    }
}
