//! Persistence of the configuration: `<state-dir>/services.json`, written
//! atomically (temporary file, fsync, rename) after every change and read at
//! start.

use std::{
    collections::BTreeSet,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::config::{ServiceInput, ServiceSpec, parse_value, validate};

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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    version: u32,
    services: Vec<serde_json::Value>,
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

    /// The saved services; none when the file does not exist yet. Every
    /// service is validated again; a bad file is an error naming the entry.
    pub fn load(&self) -> Result<Vec<ServiceSpec>, StateError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
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
        Ok(out)
    }

    /// Replaces the file with `services`, atomically.
    pub fn save(&self, services: &[ServiceSpec]) -> Result<(), StateError> {
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
        store.save(&services).unwrap();
        assert_eq!(store.load().unwrap(), services);
        // Overwriting replaces, and leaves no temporary file behind.
        store.save(&services[..1]).unwrap();
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
}
