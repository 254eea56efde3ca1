//! The node-side IPIP decapsulation program (`ferrolb_decap`): attached to
//! the `--node-decap` interfaces, decapsulating IPIP addressed to their IPv4
//! addresses (`DECAP_ADDRS`), and its counters (`DECAP_STATS`).

use std::{collections::BTreeSet, net::Ipv4Addr};

use aya::{
    Ebpf,
    maps::{HashMap, MapData, PerCpuArray},
};
use lb_common::{DecapStat, limits::MAX_DECAP_ADDRS, maps as names};

use super::{
    DatapathError, XdpModeArg,
    attach::{self, Attachments},
    ifaddrs,
    maps::{removed, take},
    prog_load::load_program,
};

pub(crate) struct Decap {
    addrs: HashMap<MapData, u32, u32>,
    stats: PerCpuArray<MapData, u64>,
    attached: Attachments,
}

impl Decap {
    /// Fills `DECAP_ADDRS` with exactly the IPv4 addresses of `ifaces`
    /// (entries left pinned by an earlier run are removed), then attaches the
    /// program to each of them. An interface without an IPv4 address is an
    /// error: nothing could be decapsulated there.
    pub(crate) fn load(
        ebpf: &mut Ebpf,
        ifaces: &[String],
        mode: XdpModeArg,
    ) -> Result<Self, DatapathError> {
        let mut wanted = BTreeSet::new();
        for iface in ifaces {
            attach::ifindex(iface)?;
            let addrs = ifaddrs::ipv4_addrs(iface)?;
            if addrs.is_empty() {
                return Err(DatapathError::NoIpv4(iface.clone()));
            }
            wanted.extend(addrs);
        }
        if wanted.len() > MAX_DECAP_ADDRS as usize {
            return Err(DatapathError::Full(format!(
                "--node-decap interfaces have {} IPv4 addresses, at most {MAX_DECAP_ADDRS}",
                wanted.len()
            )));
        }
        let mut decap = Decap {
            addrs: take(ebpf, names::DECAP_ADDRS)?,
            stats: take(ebpf, names::DECAP_STATS)?,
            attached: Attachments::default(),
        };
        // Addresses first: the program decapsulates from its first packet.
        decap.sync_addrs(&wanted)?;
        if ifaces.is_empty() {
            return Ok(decap);
        }
        let prog = attach::program(ebpf, names::PROG_DECAP)?;
        load_program(prog).map_err(DatapathError::program)?;
        decap.attached = Attachments::attach_all(prog, ifaces, mode)?;
        for a in &decap.attached.ifaces {
            tracing::info!(iface = %a.name, addrs = ?wanted, "decapsulating IPIP");
        }
        Ok(decap)
    }

    fn sync_addrs(&mut self, wanted: &BTreeSet<Ipv4Addr>) -> Result<(), DatapathError> {
        for old in self.addrs()? {
            if !wanted.contains(&old) {
                removed(
                    self.addrs.remove(&u32::from_ne_bytes(old.octets())),
                    names::DECAP_ADDRS,
                )?;
            }
        }
        for addr in wanted {
            self.addrs
                .insert(u32::from_ne_bytes(addr.octets()), 0, 0)
                .map_err(DatapathError::map(names::DECAP_ADDRS))?;
        }
        Ok(())
    }

    /// The addresses in `DECAP_ADDRS`.
    pub(crate) fn addrs(&self) -> Result<BTreeSet<Ipv4Addr>, DatapathError> {
        self.addrs
            .keys()
            .map(|k| k.map(|k| Ipv4Addr::from(k.to_ne_bytes())))
            .collect::<Result<_, _>>()
            .map_err(DatapathError::map(names::DECAP_ADDRS))
    }

    /// Every `DECAP_STATS` counter, summed over CPUs.
    pub(crate) fn counters(&self) -> Result<Vec<(DecapStat, u64)>, DatapathError> {
        DecapStat::ALL
            .iter()
            .map(|&s| {
                self.stats
                    .get(&(s as u32), 0)
                    .map(|v| (s, v.iter().fold(0u64, |a, b| a.wrapping_add(*b))))
                    .map_err(DatapathError::map(names::DECAP_STATS))
            })
            .collect()
    }

    /// Detaches the program from every interface.
    pub(crate) fn detach(&mut self, ebpf: &mut Ebpf) -> Result<(), DatapathError> {
        if self.attached.ifaces.is_empty() {
            return Ok(());
        }
        let prog = attach::program(ebpf, names::PROG_DECAP)?;
        self.attached.detach(prog, "decapsulation detached")
    }
}

#[cfg(test)]
mod tests {
    use aya::maps::Map;

    use super::*;
    use crate::{datapath::Datapath, test_support::Dirs};

    /// Attaching needs an interface of a namespace the test owns (the
    /// end-to-end tests do that); here: what is refused before anything is
    /// attached, and the pinned address table being reset.
    #[test]
    fn refuses_unknown_and_doubly_used_interfaces() {
        let dirs = Dirs::new();
        let mut opts = dirs.options();
        opts.decap_ifaces = vec!["ferrolb-nope0".into()];
        let err = Datapath::load(&opts).err().expect("unknown interface");
        assert!(
            err.to_string().contains("\"ferrolb-nope0\" does not exist"),
            "{err}"
        );

        opts.ifaces = vec!["lo".into()];
        opts.decap_ifaces = vec!["lo".into()];
        let err = Datapath::load(&opts).err().expect("same interface twice");
        assert!(
            err.to_string()
                .contains("\"lo\" is given to both --iface and --node-decap"),
            "{err}"
        );
    }

    #[test]
    fn stale_pinned_addresses_are_removed_at_load() {
        let dirs = Dirs::new();
        drop(dirs.load());
        let stale = Ipv4Addr::new(172, 16, 1, 14);
        {
            let data = MapData::from_pin(dirs.pin.join(names::DECAP_ADDRS)).unwrap();
            let mut map: HashMap<MapData, u32, u32> =
                HashMap::try_from(Map::HashMap(data)).unwrap();
            map.insert(u32::from_ne_bytes(stale.octets()), 0, 0)
                .unwrap();
        }
        let dp = dirs.load();
        assert!(dp.decap_addrs().unwrap().is_empty());
        assert!(dp.decap_counters().unwrap().iter().all(|&(_, n)| n == 0));
        assert_eq!(
            dp.decap_counters().unwrap().len(),
            DecapStat::COUNT as usize
        );
    }
}
