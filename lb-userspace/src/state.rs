//! Persistence of the configuration: `<state-dir>/services.json` (services
//! and tunnel routes), written atomically (temporary file, fsync, rename)
//! after every change and read at start. `tunnels` is left out while there is
//! none, and a file without it (written before tunnels existed) reads as no
//! tunnel.

use std::{
    collections::BTreeSet,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::config::{
    ServiceInput, ServiceSpec, TunnelInput, TunnelSpec, parse_value, validate, validate_tunnel,
};

/// Version of the file layout.
const VERSION: u32 = 1;
/// Name of the file in the state directory.
pub const STATE_FILE: &str = "services.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    services: &'a [ServiceSpec],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tunnels: &'a [TunnelSpec],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    version: u32,
    services: Vec<serde_json::Value>,
    #[serde(default)]
    tunnels: Vec<serde_json::Value>,
}

/// Everything the state file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub services: Vec<ServiceSpec>,
    pub tunnels: Vec<TunnelSpec>,
}

/// The state file of one state directory.
#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `<state-dir>/services.json`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The saved services.
    pub fn load(&self) -> Result<Vec<ServiceSpec>, StateError> {
        self.load_all().map(|s| s.services)
    }

    /// The saved services and tunnels; none when the file does not exist
    /// yet. Every entry is validated again; a bad file is an error naming
    /// the entry.
    pub fn load_all(&self) -> Result<Saved, StateError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let invalid = |message: String| StateError::Invalid {
            path: path.clone(),
            message,
        };
        let value = parse_value(&bytes).map_err(|e| invalid(e.to_string()))?;
        if !value.is_object() {
            return Err(invalid("expected a JSON object".into()));
        }
        let file: FileIn = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if file.version != VERSION {
            return Err(invalid(format!(
                "version: {} is not supported (expected {VERSION})",
                file.version
            )));
        }
        let mut keys = BTreeSet::new();
        let mut out = Vec::with_capacity(file.services.len());
        for (i, value) in file.services.into_iter().enumerate() {
            let input = ServiceInput::from_value(value)
                .map_err(|e| invalid(format!("services[{i}]: {e}")))?;
            let spec =
                validate(&input, None).map_err(|e| invalid(format!("services[{i}]: {e}")))?;
            if !keys.insert(spec.key()) {
                return Err(invalid(format!(
                    "services[{i}]: {} appears twice",
                    spec.key()
                )));
            }
            out.push(spec);
        }
        let mut names = BTreeSet::new();
        let mut cidrs = std::collections::BTreeMap::new();
        let mut tunnels = Vec::with_capacity(file.tunnels.len());
        for (i, value) in file.tunnels.into_iter().enumerate() {
            let entry = format!("tunnels[{i}]");
            let input =
                TunnelInput::from_value(value).map_err(|e| invalid(format!("{entry}: {e}")))?;
            let spec =
                validate_tunnel(&input, None).map_err(|e| invalid(format!("{entry}: {e}")))?;
            if !names.insert(spec.name.clone()) {
                return Err(invalid(format!("{entry}: {} appears twice", spec.name)));
            }
            if let Some(other) = cidrs.insert(spec.pod_cidr, spec.name.clone()) {
                return Err(invalid(format!(
                    "{entry}: pod_cidr {} is also tunnel {other}'s",
                    spec.pod_cidr
                )));
            }
            tunnels.push(spec);
        }
        Ok(Saved {
            services: out,
            tunnels,
        })
    }

    /// Replaces the file with `services` and `tunnels`, atomically.
    pub fn save(&self, services: &[ServiceSpec], tunnels: &[TunnelSpec]) -> Result<(), StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path();
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let mut json = serde_json::to_vec_pretty(&FileOut {
            version: VERSION,
            services,
            tunnels,
        })
        .map_err(|e| StateError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        json.push(b'\n');
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&json).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        // Make the rename itself durable.
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendSpec, Mode, Protocol, Select};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrolb-state-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn spec(port: u16) -> ServiceSpec {
        ServiceSpec {
            name: "default/web".into(),
            vip: "10.96.0.10".parse().unwrap(),
            port,
            protocol: Protocol::Udp,
            mode: Mode::Dnat,
            select: Select::Hash,
            timeout_s: 30,
            snat_ip: None,
            backends: vec![
                BackendSpec {
                    ip: "10.0.2.2".parse().unwrap(),
                    port: 8080,
                    weight: 3,
                },
                BackendSpec {
                    ip: "10.0.2.3".parse().unwrap(),
                    port: 8081,
                    weight: 1,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let dir = temp_dir();
        let store = StateStore::new(dir.join("nested"));
        assert_eq!(store.load().unwrap(), Vec::new(), "no file yet");
        let services = vec![spec(80), spec(53)];
        store.save(&services, &[]).unwrap();
        assert_eq!(store.load().unwrap(), services);
        // Overwriting replaces, and leaves no temporary file behind.
        store.save(&services[..1], &[]).unwrap();
        assert_eq!(store.load().unwrap(), services[..1]);
        let names: Vec<_> = fs::read_dir(dir.join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_file_names_the_entry() {
        let dir = temp_dir();
        fs::create_dir_all(&dir).unwrap();
        let store = StateStore::new(&dir);
        fs::write(
            store.path(),
            r#"{"version":1,"services":[{"vip":"10.0.0.1","port":80,"protocol":"tcp"},{"vip":"10.0.0.1","port":0,"protocol":"tcp"}]}"#,
        )
        .unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(
            err.contains("services[1]: port: must be 1..=65535"),
            "{err}"
        );

        fs::write(
            store.path(),
            r#"{"version":1,"services":[{"vip":"10.0.0.1","port":80,"protocol":"tcp"},{"vip":"10.0.0.1","port":80,"protocol":"tcp"}]}"#,
        )
        .unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(
            err.contains("services[1]: tcp/10.0.0.1/80 appears twice"),
            "{err}"
        );

        fs::write(store.path(), r#"{"version":2,"services":[]}"#).unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("version: 2 is not supported"), "{err}");

        fs::write(store.path(), "{not json").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("malformed JSON"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    fn tunnel(name: &str, cidr: &str) -> TunnelSpec {
        let input = TunnelInput::from_value(serde_json::json!({
            "name": name, "pod_cidr": cidr, "node_ip": "172.16.1.14",
            "encap": "vxlan", "vtep_mac": "ab:12:cd:34:ef:56", "vni": 7
        }))
        .unwrap();
        validate_tunnel(&input, None).unwrap()
    }

    #[test]
    fn tunnels_round_trip_and_old_files_read_as_none() {
        let dir = temp_dir();
        let store = StateStore::new(&dir);
        let tunnels = vec![
            tunnel("node-1", "192.168.140.64/26"),
            tunnel("node-2", "192.168.140.128/26"),
        ];
        store.save(&[spec(80)], &tunnels).unwrap();
        let saved = store.load_all().unwrap();
        assert_eq!(saved.services, vec![spec(80)]);
        assert_eq!(saved.tunnels, tunnels);

        // Without tunnels the file has no `tunnels` key: the layout of the
        // files written before tunnels existed, which still read fine.
        store.save(&[spec(80)], &[]).unwrap();
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("tunnels"), "{text}");
        fs::write(
            store.path(),
            r#"{"version":1,"services":[{"vip":"10.0.0.1","port":80,"protocol":"tcp"}]}"#,
        )
        .unwrap();
        let saved = store.load_all().unwrap();
        assert_eq!(saved.services.len(), 1);
        assert!(saved.tunnels.is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_tunnel_entries_are_named() {
        let dir = temp_dir();
        fs::create_dir_all(&dir).unwrap();
        let store = StateStore::new(&dir);
        for (tunnels, says) in [
            (
                r#"[{"name":"a","pod_cidr":"10.1.0.1/16","node_ip":"172.16.1.1","encap":"ipip"}]"#,
                "tunnels[0]: pod_cidr: \"10.1.0.1/16\" has host bits set",
            ),
            (
                r#"[{"name":"a","pod_cidr":"10.1.0.0/16","node_ip":"172.16.1.1","encap":"ipip"},
                    {"name":"b","pod_cidr":"10.1.0.0/16","node_ip":"172.16.1.2","encap":"ipip"}]"#,
                "tunnels[1]: pod_cidr 10.1.0.0/16 is also tunnel a's",
            ),
            (
                r#"[{"name":"a","pod_cidr":"10.1.0.0/16","node_ip":"172.16.1.1","encap":"ipip"},
                    {"name":"a","pod_cidr":"10.2.0.0/16","node_ip":"172.16.1.2","encap":"ipip"}]"#,
                "tunnels[1]: a appears twice",
            ),
        ] {
            fs::write(
                store.path(),
                format!(r#"{{"version":1,"services":[],"tunnels":{tunnels}}}"#),
            )
            .unwrap();
            let err = store.load_all().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
