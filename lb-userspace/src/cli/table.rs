//! Readable tables of the API's answers.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use crate::{
    api::views::ServiceView,
    config::{ServiceSpec, TunnelSpec},
};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    t
}

/// `service list`.
pub fn services(list: &[ServiceSpec]) -> String {
    if list.is_empty() {
        return "no services\n".to_string();
    }
    let mut t = table(&["SERVICE", "NAME", "MODE", "SELECT", "TIMEOUT", "BACKENDS"]);
    for s in list {
        let backends: Vec<String> = s
            .backends
            .iter()
            .map(|b| {
                if b.weight == 1 {
                    format!("{}:{}", b.ip, b.port)
                } else {
                    format!("{}:{} (w{})", b.ip, b.port, b.weight)
                }
            })
            .collect();
        t.add_row(vec![
            s.key().display_addr(),
            s.name.clone(),
            s.mode.to_string(),
            s.select.to_string(),
            format!("{}s", s.timeout_s),
            if backends.is_empty() {
                "-".to_string()
            } else {
                backends.join("\n")
            },
        ]);
    }
    format!("{t}\n")
}

/// `service get`: the service, then its backends with counters.
pub fn service(view: &ServiceView) -> String {
    let s = &view.spec;
    let mut head = table(&["SERVICE", "NAME", "MODE", "SELECT", "TIMEOUT"]);
    head.add_row(vec![
        s.key().display_addr(),
        s.name.clone(),
        s.mode.to_string(),
        s.select.to_string(),
        format!("{}s", s.timeout_s),
    ]);
    let mut t = table(&[
        "BACKEND",
        "WEIGHT",
        "PACKETS",
        "BYTES",
        "NEW CONNS",
        "REPLY PACKETS",
        "REPLY BYTES",
    ]);
    for b in &s.backends {
        t.add_row(vec![
            format!("{}:{}", b.backend.ip, b.backend.port),
            b.backend.weight.to_string(),
            b.stats.packets.to_string(),
            b.stats.bytes.to_string(),
            b.stats.new_connections.to_string(),
            b.stats.reply_packets.to_string(),
            b.stats.reply_bytes.to_string(),
        ]);
    }
    t.add_row(vec![
        "TOTAL".to_string(),
        String::new(),
        view.stats.packets.to_string(),
        view.stats.bytes.to_string(),
        view.stats.new_connections.to_string(),
        view.stats.reply_packets.to_string(),
        view.stats.reply_bytes.to_string(),
    ]);
    format!("{head}\n{t}\n")
}

/// `tunnel list` / `tunnel get`.
pub fn tunnels(list: &[TunnelSpec]) -> String {
    if list.is_empty() {
        return "no tunnels\n".to_string();
    }
    let mut t = table(&[
        "NAME", "POD CIDR", "NODE", "ENCAP", "VNI", "VTEP MAC", "PORT",
    ]);
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for s in list {
        t.add_row(vec![
            s.name.clone(),
            s.pod_cidr.to_string(),
            s.node_ip.to_string(),
            s.encap.to_string(),
            or_dash(s.vni.map(|v| v.to_string())),
            or_dash(s.vtep_mac.map(|m| m.to_string())),
            or_dash(s.dst_port.map(|p| p.to_string())),
        ]);
    }
    format!("{t}\n")
}
