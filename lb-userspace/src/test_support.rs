//! Test helpers: a real datapath loaded with its own pin directory and no
//! interface, removed afterwards.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use crate::datapath::{Datapath, DatapathOptions, XdpModeArg};

static N: AtomicU32 = AtomicU32::new(0);

/// A unique pin directory under /sys/fs/bpf and a state directory, both
/// removed on drop.
pub struct Dirs {
    pub pin: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    pub fn new() -> Self {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let pin = PathBuf::from(format!("/sys/fs/bpf/ferrolb-unit-{pid}-{n}"));
        let state = std::env::temp_dir().join(format!("ferrolb-unit-state-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&pin);
        let _ = std::fs::remove_dir_all(&state);
        Self { pin, state }
    }

    /// Options of a test datapath: small tables, the tunnel end fixed to
    /// `TEST_TUNNEL_SOURCE` / `TEST_VTEP_MAC`.
    pub fn options(&self) -> DatapathOptions {
        DatapathOptions {
            bpffs_dir: self.pin.clone(),
            ifaces: Vec::new(),
            decap_ifaces: Vec::new(),
            xdp_mode: XdpModeArg::Auto,
            // Small: many tests load a datapath at once.
            conntrack_size: Some(4096),
            // Fixed: the tests must not depend on this host's routes.
            tunnel_end: crate::datapath::TunnelEndConfig {
                source: Some(TEST_TUNNEL_SOURCE),
                vtep_mac: Some(crate::config::MacAddr(TEST_VTEP_MAC)),
            },
            ..Default::default()
        }
    }

    pub fn load(&self) -> Datapath {
        Datapath::load(&self.options()).expect("loading the datapath (run as root)")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pin);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// The tunnel source of test datapaths.
pub const TEST_TUNNEL_SOURCE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 200);
/// The VTEP MAC of test datapaths.
pub const TEST_VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc8];

/// A service JSON body's `ServiceSpec`.
pub fn spec(json: &str) -> crate::config::ServiceSpec {
    let input = crate::config::parse_json(json.as_bytes()).expect("test JSON");
    crate::config::validate(&input, None).expect("valid test service")
}

/// Checks OpenMetrics text line by line: `# ...` comments, `# EOF` last,
/// and samples `name{label="value",...} number` whose label values hold no
/// raw quote or newline and only the escapes `\\`, `\"` and `\n`.
pub fn check_openmetrics(text: &str) -> Result<(), String> {
    if !text.ends_with("# EOF\n") {
        return Err("does not end with \"# EOF\\n\"".into());
    }
    for line in text.lines().filter(|l| !l.starts_with("# ")) {
        check_sample(line).map_err(|e| format!("{line:?}: {e}"))?;
    }
    Ok(())
}

fn check_sample(line: &str) -> Result<(), String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let name_len = line.find(|c| !is_name(c)).ok_or("no value")?;
    if name_len == 0 {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_len..];
    if let Some(mut labels) = rest.strip_prefix('{') {
        loop {
            let (name, after) = labels.split_once("=\"").ok_or("label without =\"")?;
            if name.is_empty() || !name.chars().all(is_name) {
                return Err(format!("bad label name {name:?}"));
            }
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (_, '\\') => match chars.next() {
                        Some((_, '\\' | '"' | 'n')) => {}
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    (_, '\n') => return Err("newline in label value".into()),
                    (i, '"') => break i,
                    _ => {}
                }
            };
            let after = &after[close + 1..];
            if let Some(next) = after.strip_prefix(',') {
                labels = next;
            } else if let Some(end) = after.strip_prefix('}') {
                rest = end;
                break;
            } else {
                return Err(format!("{after:?} after a label value"));
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    value
        .parse::<f64>()
        .map(|_| ())
        .map_err(|_| format!("value {value:?} is not a number"))
}

#[test]
fn check_openmetrics_refuses_unescaped_values() {
    let ok = "# TYPE a counter\na_total{x=\"q\\\"\\\\\\n\",y=\"\"} 1\nb 2\n# EOF\n";
    check_openmetrics(ok).unwrap();
    for bad in [
        "a_total{x=\"q\"\"} 1\n# EOF\n",
        "a_total{x=\"q\nr\"} 1\n# EOF\n",
        "a_total{x=\"q\\t\"} 1\n# EOF\n",
        "a_total{x=\"q\"} one\n# EOF\n",
        "a_total 1\n",
    ] {
        assert!(check_openmetrics(bad).is_err(), "{bad:?}");
    }
}
