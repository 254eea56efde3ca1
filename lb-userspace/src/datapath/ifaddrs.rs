//! The IPv4 addresses of an interface (getifaddrs(3), through nix).

use std::{collections::BTreeSet, net::Ipv4Addr};

use super::DatapathError;

/// Every IPv4 address assigned to interface `name`, in the calling thread's
/// network namespace.
pub(crate) fn ipv4_addrs(name: &str) -> Result<BTreeSet<Ipv4Addr>, DatapathError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(DatapathError::IfAddrs)?;
    Ok(addrs
        .filter(|a| a.interface_name == name)
        .filter_map(|a| a.address?.as_sockaddr_in().map(|sin| sin.ip()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_127_0_0_1_and_unknown_has_none() {
        assert!(ipv4_addrs("lo").unwrap().contains(&Ipv4Addr::LOCALHOST));
        assert!(ipv4_addrs("ferrolb-nope0").unwrap().is_empty());
    }
}
