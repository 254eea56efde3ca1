//! Interface addresses (getifaddrs(3), through nix): the IPv4 addresses of
//! an interface, the MAC of the interface holding an address.

use std::{collections::BTreeSet, net::Ipv4Addr};

use super::DatapathError;

/// Every IPv4 address assigned to interface `name`, in the calling thread's
/// network namespace.
pub(crate) fn ipv4_addrs(name: &str) -> Result<BTreeSet<Ipv4Addr>, DatapathError> {
    Ok(all()?
        .filter(|a| a.interface_name == name)
        .filter_map(|a| a.address?.as_sockaddr_in().map(|sin| sin.ip()))
        .collect())
}

fn all() -> Result<nix::ifaddrs::InterfaceAddressIterator, DatapathError> {
    nix::ifaddrs::getifaddrs().map_err(DatapathError::IfAddrs)
}

/// The MAC of the interface that holds `addr`, in the calling thread's
/// network namespace (getifaddrs(3)).
pub(crate) fn mac_holding(addr: Ipv4Addr) -> Result<Option<[u8; 6]>, DatapathError> {
    let all: Vec<_> = all()?.collect();
    let Some(iface) = all
        .iter()
        .find(|a| {
            a.address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .is_some_and(|sin| sin.ip() == addr)
        })
        .map(|a| a.interface_name.clone())
    else {
        return Ok(None);
    };
    Ok(all
        .iter()
        .filter(|a| a.interface_name == iface)
        .find_map(|a| a.address.as_ref()?.as_link_addr()?.addr())
        .filter(|m| *m != [0; 6]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_127_0_0_1_and_unknown_has_none() {
        assert!(ipv4_addrs("lo").unwrap().contains(&Ipv4Addr::LOCALHOST));
        assert!(ipv4_addrs("ferrolb-nope0").unwrap().is_empty());
    }

    #[test]
    fn loopback_has_no_mac_and_unknown_addresses_no_interface() {
        // lo's link address is all zero: no VTEP MAC.
        assert_eq!(mac_holding(Ipv4Addr::LOCALHOST).unwrap(), None);
        assert_eq!(mac_holding(Ipv4Addr::new(192, 0, 2, 77)).unwrap(), None);
    }
}
