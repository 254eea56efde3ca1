//! Service files for `ferrolbctl service apply -f`: JSON or YAML, one
//! service or a list.

use std::{collections::HashMap, path::Path};

use serde_json::Value;

use crate::config::{FieldError, ServiceInput, ServiceKey, ValidationError, validate};

/// Reads a JSON or YAML document holding one `what` (a mapping) or a list
/// of them: the items, and whether they were a list.
pub(crate) fn read_document(path: &Path, what: &str) -> Result<(Vec<Value>, bool), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let value: Value = match ext.as_str() {
        "json" => serde_json::from_str(&text).map_err(|e| format!("{shown}: invalid JSON: {e}"))?,
        "yaml" | "yml" => {
            serde_norway::from_str(&text).map_err(|e| format!("{shown}: invalid YAML: {e}"))?
        }
        _ => match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => serde_norway::from_str(&text)
                .map_err(|e| format!("{shown}: neither JSON nor YAML: {e}"))?,
        },
    };
    let (items, listed) = match value {
        Value::Array(items) => (items, true),
        v @ Value::Object(_) => (vec![v], false),
        _ => {
            return Err(format!(
                "{shown}: expected a {what} (mapping) or a list of {what}s"
            ));
        }
    };
    if items.is_empty() {
        return Err(format!("{shown}: no {what} in the file"));
    }
    Ok((items, listed))
}

/// Names a file's entries in error messages: `services[1].backends[0].port`
/// in a list, `backends[0].port` for a lone entry, after the file's name.
pub(crate) struct Entries<'a> {
    pub(crate) shown: std::path::Display<'a>,
    pub(crate) listed: bool,
    /// The list's name in messages (`services`, `tunnels`).
    pub(crate) list: &'static str,
}

impl Entries<'_> {
    pub(crate) fn entry(&self, i: usize) -> String {
        format!("{}[{i}]", self.list)
    }

    fn field(&self, i: usize, field: &str) -> String {
        if self.listed {
            format!("{}.{field}", self.entry(i))
        } else {
            field.to_string()
        }
    }

    /// An entry that does not parse.
    pub(crate) fn parse_error(&self, i: usize, e: &FieldError) -> String {
        format!("{}: {}: {}", self.shown, self.field(i, &e.field), e.message)
    }

    /// An entry the API would refuse.
    pub(crate) fn invalid(&self, i: usize, e: &ValidationError) -> String {
        let fields: Vec<String> = e
            .errors
            .iter()
            .map(|fe| format!("{}: {}", self.field(i, &fe.field), fe.message))
            .collect();
        format!("{}: {}", self.shown, fields.join("; "))
    }

    /// Entry `i` repeats entry `first` (`what` says in what).
    pub(crate) fn duplicate(&self, i: usize, first: usize, what: impl std::fmt::Display) -> String {
        format!(
            "{}: {}: duplicate of {} ({what})",
            self.shown,
            self.entry(i),
            self.entry(first)
        )
    }
}

/// Reads `path` into (key, service) pairs. JSON for `.json`, YAML for
/// `.yaml`/`.yml`, otherwise JSON then YAML. Every entry is validated as the
/// API would, and keys must be unique, so that a bad file is refused before
/// anything is sent. Errors name the file and the entry
/// (`web.yaml: services[1].backends[0].port: must be 1..=65535`).
pub fn parse_services_file(path: &Path) -> Result<Vec<(ServiceKey, ServiceInput)>, String> {
    let (items, listed) = read_document(path, "service")?;
    let entries = Entries {
        shown: path.display(),
        listed,
        list: "services",
    };
    let mut seen: HashMap<ServiceKey, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let input = ServiceInput::from_value(item).map_err(|e| entries.parse_error(i, &e))?;
        let spec = validate(&input, None).map_err(|e| entries.invalid(i, &e))?;
        let key = spec.key();
        if let Some(first) = seen.insert(key, i) {
            return Err(entries.duplicate(i, first, key.display_addr()));
        }
        out.push((key, input));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrolbctl-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn yaml_list_and_json_object() {
        let p = write(
            "list.yaml",
            "- name: default/web\n  vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  backends:\n    - {ip: 10.0.2.2, port: 8080, weight: 2}\n- vip: 10.96.0.10\n  port: 53\n  protocol: udp\n",
        );
        let got = parse_services_file(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.to_string(), "tcp/10.96.0.10/80");
        assert_eq!(got[0].1.backends.as_ref().unwrap()[0].weight, Some(2));
        assert_eq!(got[1].0.to_string(), "udp/10.96.0.10/53");

        let p = write(
            "one.json",
            r#"{"vip": "10.96.0.11", "port": 443, "protocol": "tcp", "select": "hash"}"#,
        );
        let got = parse_services_file(&p).unwrap();
        assert_eq!(got[0].1.select.as_deref(), Some("hash"));
    }

    #[test]
    fn errors_name_file_and_entry() {
        let p = write("bad.yaml", "- vip: 10.96.0.10\n  protocol: tcp\n");
        let err = parse_services_file(&p).unwrap_err();
        assert!(
            err.ends_with("bad.yaml: services[0].port: required"),
            "{err}"
        );

        let p = write(
            "bad2.yaml",
            "- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  colour: red\n",
        );
        let err = parse_services_file(&p).unwrap_err();
        assert!(
            err.contains("services[0].colour: unknown field `colour`"),
            "{err}"
        );

        let p = write(
            "bad3.json",
            r#"{"vip": "10.96.0.10", "port": 80, "protocol": "icmp"}"#,
        );
        let err = parse_services_file(&p).unwrap_err();
        assert!(
            err.contains("bad3.json: protocol: unknown protocol \"icmp\""),
            "{err}"
        );

        let p = write("bad4.json", "{");
        assert!(
            parse_services_file(&p)
                .unwrap_err()
                .contains("invalid JSON")
        );
        let p = write("bad5.json", "42");
        assert!(
            parse_services_file(&p)
                .unwrap_err()
                .contains("expected a service")
        );
    }

    #[test]
    fn a_bad_later_entry_refuses_the_whole_file() {
        let p = write(
            "half.yaml",
            "- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  backends:\n    - {ip: 10.0.2.2, port: 8080}\n- vip: 10.96.0.11\n  port: 80\n  protocol: tcp\n  backends:\n    - {ip: 10.0.2.2, port: 0}\n",
        );
        let err = parse_services_file(&p).unwrap_err();
        assert!(
            err.ends_with("half.yaml: services[1].backends[0].port: must be 1..=65535"),
            "{err}"
        );

        let p = write(
            "timeout.yaml",
            "- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n- vip: 10.96.0.11\n  port: 80\n  protocol: tcp\n  timeout_s: 0\n",
        );
        let err = parse_services_file(&p).unwrap_err();
        assert!(
            err.ends_with("services[1].timeout_s: must be 1..=4294967295"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let p = write(
            "dup.yaml",
            "- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n- vip: 10.96.0.10\n  port: 53\n  protocol: udp\n- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  select: hash\n",
        );
        let err = parse_services_file(&p).unwrap_err();
        assert!(
            err.ends_with("dup.yaml: services[2]: duplicate of services[0] (10.96.0.10:80/tcp)"),
            "{err}"
        );
    }
}
