//! Service files for `ferrolbctl service apply -f`: JSON or YAML, one
//! service or a list.

use std::path::Path;

use serde_json::Value;

use crate::config::{ServiceInput, ServiceKey};

/// Reads `path` into (key, service) pairs. JSON for `.json`, YAML for
/// `.yaml`/`.yml`, otherwise JSON then YAML. Errors name the file and the
/// entry (`web.yaml: [1].vip: required`). The API checks everything else.
pub fn parse_services_file(path: &Path) -> Result<Vec<(ServiceKey, ServiceInput)>, String> {
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
                "{shown}: expected a service (mapping) or a list of services"
            ));
        }
    };
    if items.is_empty() {
        return Err(format!("{shown}: no service in the file"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = if listed {
                format!("[{i}]")
            } else {
                String::new()
            };
            let input = ServiceInput::from_value(item).map_err(|e| {
                if at.is_empty() {
                    format!("{shown}: {e}")
                } else {
                    format!("{shown}: {at}.{e}")
                }
            })?;
            let field = |f: &str| {
                if at.is_empty() {
                    f.to_string()
                } else {
                    format!("{at}.{f}")
                }
            };
            let protocol = input
                .protocol
                .as_deref()
                .ok_or_else(|| format!("{shown}: {}: required", field("protocol")))?;
            let vip = input
                .vip
                .as_deref()
                .ok_or_else(|| format!("{shown}: {}: required", field("vip")))?;
            let port = input
                .port
                .ok_or_else(|| format!("{shown}: {}: required", field("port")))?;
            let key = ServiceKey::parse_parts(protocol, vip, &port.to_string()).map_err(|e| {
                let fields: Vec<String> = e
                    .errors
                    .iter()
                    .map(|fe| format!("{}: {}", field(&fe.field), fe.message))
                    .collect();
                format!("{shown}: {}", fields.join("; "))
            })?;
            Ok((key, input))
        })
        .collect()
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
        assert!(err.ends_with("bad.yaml: [0].port: required"), "{err}");

        let p = write(
            "bad2.yaml",
            "- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  colour: red\n",
        );
        let err = parse_services_file(&p).unwrap_err();
        assert!(err.contains("[0].colour: unknown field `colour`"), "{err}");

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
}
