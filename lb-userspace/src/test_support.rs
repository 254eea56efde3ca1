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

    pub fn options(&self) -> DatapathOptions {
        DatapathOptions {
            bpffs_dir: self.pin.clone(),
            ifaces: Vec::new(),
            xdp_mode: XdpModeArg::Auto,
            // Small: many tests load a datapath at once.
            conntrack_size: Some(4096),
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

/// A service JSON body's `ServiceSpec`.
pub fn spec(json: &str) -> crate::config::ServiceSpec {
    let input = crate::config::parse_json(json.as_bytes()).expect("test JSON");
    crate::config::validate(&input, None).expect("valid test service")
}
