//! Typed handles on the datapath's maps, and the writes userspace makes.
//! Every write that changes a service goes through a `Journal` so it can be
//! undone.

use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuValues, xdp::DevMap},
};
use lb_common::{Backend, Counters, GlobalCounters, Service, VipKey, maps as names};

use super::{
    DatapathError,
    journal::{Journal, Undo},
};

/// Takes map `name` out of `ebpf` as `T`.
pub(crate) fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, DatapathError>
where
    T: TryFrom<Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(DatapathError::MissingMap(name))?;
    T::try_from(map).map_err(DatapathError::map(name))
}

pub(crate) struct Maps {
    pub(crate) services: HashMap<MapData, VipKey, Service>,
    pub(crate) vips: HashMap<MapData, u32, u32>,
    pub(crate) rings: Array<MapData, u32>,
    pub(crate) backends: Array<MapData, Backend>,
    pub(crate) rr_state: PerCpuArray<MapData, u32>,
    pub(crate) retired_stats: PerCpuArray<MapData, Counters>,
    pub(crate) backend_stats: PerCpuArray<MapData, Counters>,
    pub(crate) global_stats: PerCpuArray<MapData, GlobalCounters>,
    pub(crate) tx_ports: DevMap<MapData>,
    nr_cpus: usize,
}

/// A missing key is `None`, not an error.
pub(crate) fn optional<V>(
    r: Result<V, MapError>,
    name: &'static str,
) -> Result<Option<V>, DatapathError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(e) => Err(DatapathError::map(name)(e)),
    }
}

/// A removal: a key already missing is fine.
pub(crate) fn removed(r: Result<(), MapError>, name: &'static str) -> Result<(), DatapathError> {
    optional(r, name).map(|_| ())
}

impl Maps {
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, DatapathError> {
        let nr_cpus = aya::util::nr_cpus().map_err(|(_, e)| DatapathError::Io(e))?;
        Ok(Self {
            services: take(ebpf, names::SERVICES)?,
            vips: take(ebpf, names::VIPS)?,
            rings: take(ebpf, names::RINGS)?,
            backends: take(ebpf, names::BACKENDS)?,
            rr_state: take(ebpf, names::RR_STATE)?,
            retired_stats: take(ebpf, names::RETIRED_STATS)?,
            backend_stats: take(ebpf, names::BACKEND_STATS)?,
            global_stats: take(ebpf, names::GLOBAL_STATS)?,
            tx_ports: take(ebpf, names::TX_PORTS)?,
            nr_cpus,
        })
    }

    // ---- reads ----

    pub(crate) fn service(&self, key: &VipKey) -> Result<Option<Service>, DatapathError> {
        optional(self.services.get(key, 0), names::SERVICES)
    }

    pub(crate) fn service_entries(&self) -> Result<Vec<(VipKey, Service)>, DatapathError> {
        self.services
            .iter()
            .collect::<Result<_, _>>()
            .map_err(DatapathError::map(names::SERVICES))
    }

    pub(crate) fn vip_count(&self, vip: u32) -> Result<Option<u32>, DatapathError> {
        optional(self.vips.get(&vip, 0), names::VIPS)
    }

    pub(crate) fn vip_entries(&self) -> Result<Vec<u32>, DatapathError> {
        self.vips
            .keys()
            .collect::<Result<_, _>>()
            .map_err(DatapathError::map(names::VIPS))
    }

    pub(crate) fn backend(&self, id: u32) -> Result<Backend, DatapathError> {
        self.backends
            .get(&id, 0)
            .map_err(DatapathError::map(names::BACKENDS))
    }

    pub(crate) fn ring_slot(&self, index: u32) -> Result<u32, DatapathError> {
        self.rings
            .get(&index, 0)
            .map_err(DatapathError::map(names::RINGS))
    }

    fn sum(values: &PerCpuValues<Counters>) -> Counters {
        let mut total = Counters::default();
        for v in values.iter() {
            total.add(v);
        }
        total
    }

    /// Slot `id` of the per-CPU counter map `map` (named `name`), every
    /// CPU's.
    fn per_cpu(
        map: &PerCpuArray<MapData, Counters>,
        name: &'static str,
        id: u32,
    ) -> Result<PerCpuValues<Counters>, DatapathError> {
        map.get(&id, 0).map_err(DatapathError::map(name))
    }

    /// Slot `id` of the per-CPU counter map `map` (named `name`), summed.
    fn summed(
        map: &PerCpuArray<MapData, Counters>,
        name: &'static str,
        id: u32,
    ) -> Result<Counters, DatapathError> {
        Ok(Self::sum(&Self::per_cpu(map, name, id)?))
    }

    /// The counters of the backends that left service `id`.
    pub(crate) fn retired_counters(&self, id: u32) -> Result<Counters, DatapathError> {
        Self::summed(&self.retired_stats, names::RETIRED_STATS, id)
    }

    /// Adds backend `backend`'s counters to those of the backends that left
    /// service `service` (the backend is leaving it), CPU by CPU. Only
    /// userspace writes `RETIRED_STATS`, so nothing races the write.
    pub(crate) fn retire_backend_counters(
        &mut self,
        service: u32,
        backend: u32,
    ) -> Result<(), DatapathError> {
        let from = Self::per_cpu(&self.backend_stats, names::BACKEND_STATS, backend)?;
        let into = Self::per_cpu(&self.retired_stats, names::RETIRED_STATS, service)?;
        let sum: Vec<Counters> = into
            .iter()
            .zip(from.iter())
            .map(|(a, b)| {
                let mut total = *a;
                total.add(b);
                total
            })
            .collect();
        self.retired_stats
            .set(service, PerCpuValues::try_from(sum)?, 0)
            .map_err(DatapathError::map(names::RETIRED_STATS))
    }

    pub(crate) fn backend_counters(&self, id: u32) -> Result<Counters, DatapathError> {
        Self::summed(&self.backend_stats, names::BACKEND_STATS, id)
    }

    /// Every CPU's global counters, summed.
    pub(crate) fn global_counters(&self) -> Result<GlobalCounters, DatapathError> {
        let per_cpu = self
            .global_stats
            .get(&0, 0)
            .map_err(DatapathError::map(names::GLOBAL_STATS))?;
        let mut total = GlobalCounters::default();
        for cpu in per_cpu.iter() {
            for (t, c) in total.counts.iter_mut().zip(cpu.counts) {
                *t = t.wrapping_add(c);
            }
        }
        Ok(total)
    }

    // ---- writes outside a transaction (ids just allocated) ----

    /// Zeroes the per-service state of a service id being (re)used.
    pub(crate) fn reset_service_state(&mut self, id: u32) -> Result<(), DatapathError> {
        let zero_stats = PerCpuValues::try_from(vec![Counters::default(); self.nr_cpus])?;
        self.retired_stats
            .set(id, zero_stats, 0)
            .map_err(DatapathError::map(names::RETIRED_STATS))?;
        let zero_rr = PerCpuValues::try_from(vec![0u32; self.nr_cpus])?;
        self.rr_state
            .set(id, zero_rr, 0)
            .map_err(DatapathError::map(names::RR_STATE))
    }

    /// Zeroes the counters of a backend id being (re)used.
    pub(crate) fn reset_backend_stats(&mut self, id: u32) -> Result<(), DatapathError> {
        let zero = PerCpuValues::try_from(vec![Counters::default(); self.nr_cpus])?;
        self.backend_stats
            .set(id, zero, 0)
            .map_err(DatapathError::map(names::BACKEND_STATS))
    }

    /// Lists `ifindexes` in `TX_PORTS` (a fresh map at every load, sized
    /// for them: see `load`).
    pub(crate) fn set_tx_ports(
        &mut self,
        ifindexes: impl IntoIterator<Item = u32>,
    ) -> Result<(), DatapathError> {
        for i in ifindexes {
            self.tx_ports
                .set(i, i, None, 0)
                .map_err(|e| DatapathError::DevMap {
                    name: names::TX_PORTS,
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    // ---- journaled writes ----

    pub(crate) fn set_backend(
        &mut self,
        j: &mut Journal,
        id: u32,
        value: Backend,
    ) -> Result<(), DatapathError> {
        let old = self.backend(id)?;
        self.write_backend(id, value)?;
        j.push(Undo::Backend(id, old));
        Ok(())
    }

    pub(crate) fn set_ring_slot(
        &mut self,
        j: &mut Journal,
        index: u32,
        backend_id: u32,
    ) -> Result<(), DatapathError> {
        let old = self.ring_slot(index)?;
        if old == backend_id {
            return Ok(());
        }
        self.write_ring_slot(index, backend_id)?;
        j.push(Undo::Ring(index, old));
        Ok(())
    }

    pub(crate) fn set_service(
        &mut self,
        j: &mut Journal,
        key: VipKey,
        value: Option<Service>,
    ) -> Result<(), DatapathError> {
        let old = self.service(&key)?;
        self.write_service(key, value)?;
        j.push(Undo::Service(key, old));
        Ok(())
    }

    pub(crate) fn write_service(
        &mut self,
        key: VipKey,
        value: Option<Service>,
    ) -> Result<(), DatapathError> {
        match value {
            Some(v) => self
                .services
                .insert(key, v, 0)
                .map_err(DatapathError::map(names::SERVICES)),
            None => removed(self.services.remove(&key), names::SERVICES),
        }
    }

    pub(crate) fn set_vip_count(
        &mut self,
        j: &mut Journal,
        vip: u32,
        count: Option<u32>,
    ) -> Result<(), DatapathError> {
        let old = self.vip_count(vip)?;
        self.write_vip_count(vip, count)?;
        j.push(Undo::Vip(vip, old));
        Ok(())
    }

    pub(crate) fn write_vip_count(
        &mut self,
        vip: u32,
        count: Option<u32>,
    ) -> Result<(), DatapathError> {
        match count {
            Some(c) if c > 0 => self
                .vips
                .insert(vip, c, 0)
                .map_err(DatapathError::map(names::VIPS)),
            _ => removed(self.vips.remove(&vip), names::VIPS),
        }
    }

    pub(crate) fn write_backend(&mut self, id: u32, value: Backend) -> Result<(), DatapathError> {
        self.backends
            .set(id, value, 0)
            .map_err(DatapathError::map(names::BACKENDS))
    }

    pub(crate) fn write_ring_slot(&mut self, index: u32, value: u32) -> Result<(), DatapathError> {
        self.rings
            .set(index, value, 0)
            .map_err(DatapathError::map(names::RINGS))
    }
}
