//! What a user sends: loosely typed, so that range and name checks happen in
//! `validate` with messages naming the field, and unknown fields are refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FieldError, ServiceSpec};

/// A service as sent to the API or written in a file. Every field is
/// optional here; `validate` says which are required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<BackendInput>>,
}

/// A backend as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

impl From<&ServiceSpec> for ServiceInput {
    fn from(s: &ServiceSpec) -> Self {
        ServiceInput {
            name: Some(s.name.clone()),
            vip: Some(s.vip.to_string()),
            port: Some(s.port.into()),
            protocol: Some(s.protocol.to_string()),
            mode: Some(s.mode.to_string()),
            select: Some(s.select.to_string()),
            timeout_s: Some(s.timeout_s.into()),
            snat_ip: s.snat_ip.map(|ip| ip.to_string()),
            backends: Some(
                s.backends
                    .iter()
                    .map(|b| BackendInput {
                        ip: Some(b.ip.to_string()),
                        port: Some(b.port.into()),
                        weight: Some(b.weight.into()),
                    })
                    .collect(),
            ),
        }
    }
}

/// Parses JSON text; malformed JSON is an error on `body`.
pub fn parse_value(bytes: &[u8]) -> Result<Value, FieldError> {
    serde_json::from_slice(bytes)
        .map_err(|e| FieldError::new("body", format!("malformed JSON: {e}")))
}

/// Parses and shape-checks a service (see `ServiceInput::from_value`).
pub fn parse_json(bytes: &[u8]) -> Result<ServiceInput, FieldError> {
    ServiceInput::from_value(parse_value(bytes)?)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl ServiceInput {
    /// A service from parsed JSON. Objects are required where the model has
    /// them (serde would also take a struct as an array of its fields); type
    /// errors name the field (`backends[0].port: invalid type: string "80",
    /// expected i64`), or `body` for the whole document.
    pub fn from_value(v: Value) -> Result<Self, FieldError> {
        // A non-object has no "backends": `deserialize_object` rejects it.
        if let Some(Value::Array(items)) = v.get("backends") {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(FieldError::new(
                        format!("backends[{i}]"),
                        format!("expected an object, got {}", kind(item)),
                    ));
                }
            }
        }
        deserialize_object(v)
    }
}

/// Deserializes a JSON object into `T`, type errors naming the field
/// (`backends[0].port: ...`), or `body` for the whole document. Shared by
/// every kind of input the API and the CLI read.
pub(crate) fn deserialize_object<T: serde::de::DeserializeOwned>(
    v: Value,
) -> Result<T, FieldError> {
    if !v.is_object() {
        return Err(FieldError::new(
            "body",
            format!("expected a JSON object, got {}", kind(&v)),
        ));
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            FieldError::new("body", inner.to_string())
        } else {
            FieldError::new(path, inner.to_string())
        }
    })
}
