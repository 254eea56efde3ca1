//! Tunnel files for `ferrolbctl tunnel apply -f`: JSON or YAML, one tunnel
//! route or a list, each with its `name`.

use std::{collections::HashMap, path::Path};

use crate::config::{Ipv4Cidr, TunnelInput, validate_tunnel};

use super::file::{Entries, read_document};

/// Reads `path` into (name, tunnel) pairs, every entry validated as the API
/// would, names and pod networks unique, so a bad file is refused before
/// anything is sent. Errors name the file and the entry
/// (`nodes.yaml: tunnels[1].vni: must be 1..=16777215`).
pub fn parse_tunnels_file(path: &Path) -> Result<Vec<(String, TunnelInput)>, String> {
    let (items, listed) = read_document(path, "tunnel route")?;
    let entries = Entries {
        shown: path.display(),
        listed,
        list: "tunnels",
    };
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut cidrs: HashMap<Ipv4Cidr, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let input = TunnelInput::from_value(item).map_err(|e| entries.parse_error(i, &e))?;
        let spec = validate_tunnel(&input, None).map_err(|e| entries.invalid(i, &e))?;
        if let Some(first) = names.insert(spec.name.clone(), i) {
            return Err(entries.duplicate(i, first, format!("name {}", spec.name)));
        }
        if let Some(first) = cidrs.insert(spec.pod_cidr, i) {
            return Err(format!(
                "{}: {}: pod_cidr {} is also {}'s",
                entries.shown,
                entries.entry(i),
                spec.pod_cidr,
                entries.entry(first)
            ));
        }
        out.push((spec.name, input));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrolbctl-tunnels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn yaml_list_and_errors_naming_the_entry() {
        let p = write(
            "ok.yaml",
            "- name: node-1\n  pod_cidr: 192.168.140.64/26\n  node_ip: 172.16.1.14\n  encap: vxlan\n  vtep_mac: ab:12:cd:34:ef:56\n- {name: node-2, pod_cidr: 192.168.140.128/26, node_ip: 172.16.1.15, encap: ipip}\n",
        );
        let got = parse_tunnels_file(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, "node-2");

        for (text, says) in [
            (
                "- {name: a, pod_cidr: 10.1.0.0/16, node_ip: 172.16.1.1, encap: ipip}\n- {name: b, pod_cidr: 10.2.0.0/16, node_ip: 172.16.1.2, encap: vxlan, vtep_mac: ab:12:cd:34:ef:56, vni: 0}\n",
                "tunnels[1].vni: must be 1..=16777215",
            ),
            (
                "- {name: a, pod_cidr: 10.1.0.0/16, node_ip: 172.16.1.1, encap: ipip}\n- {name: b, pod_cidr: 10.1.0.0/16, node_ip: 172.16.1.2, encap: ipip}\n",
                "tunnels[1]: pod_cidr 10.1.0.0/16 is also tunnels[0]'s",
            ),
            (
                "{pod_cidr: 10.1.0.0/16, node_ip: 172.16.1.1, encap: ipip}\n",
                "name: required",
            ),
        ] {
            let p = write("bad.yaml", text);
            let err = parse_tunnels_file(&p).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
