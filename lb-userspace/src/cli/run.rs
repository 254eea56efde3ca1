//! Carrying out a `ferrolbctl` command.

use std::io::Write;

use serde_json::Value;

use super::{
    ApiClient, CliArgs, CliError, Command, Output, ServiceCommand, file::parse_services_file, table,
};
use crate::{
    api::views::ServiceView,
    config::{BackendInput, ServiceInput, ServiceSpec},
};

/// Runs `args` against the API, writing what it shows to `out`.
pub fn run(args: &CliArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = ApiClient::new(&args.api);
    let json = args.output == Output::Json;
    let cmd = match &args.command {
        Command::Service(cmd) => cmd,
        Command::Tunnel(cmd) => {
            let text = super::tunnel::run(&client, cmd, json)?;
            return out
                .write_all(text.as_bytes())
                .map_err(|e| CliError::Input(format!("writing output: {e}")));
        }
    };
    let text = match cmd {
        ServiceCommand::List => {
            let v = client.list()?;
            if json {
                pretty(&v)
            } else {
                let list: Vec<ServiceSpec> = decode(v)?;
                table::services(&list)
            }
        }
        ServiceCommand::Get { service } => {
            let v = client.get(service)?;
            if json {
                pretty(&v)
            } else {
                table::service(&decode::<ServiceView>(v)?)
            }
        }
        ServiceCommand::Delete { service } => {
            client.delete(service)?;
            if json {
                pretty(&serde_json::json!({ "deleted": service.to_string() }))
            } else {
                format!("deleted {}\n", service.display_addr())
            }
        }
        ServiceCommand::Apply { file } => {
            let services = parse_services_file(file).map_err(CliError::Input)?;
            let mut applied = Vec::new();
            for (key, input) in &services {
                let v = client.put(key, input).map_err(|e| match e {
                    CliError::Api { status, message } => CliError::Api {
                        status,
                        message: format!("{}: {message}", key.display_addr()),
                    },
                    e => e,
                })?;
                applied.push(v);
            }
            if json {
                pretty(&Value::Array(applied))
            } else {
                services
                    .iter()
                    .map(|(k, _)| format!("applied {}\n", k.display_addr()))
                    .collect()
            }
        }
        ServiceCommand::Add {
            service,
            backends,
            mode,
            snat_ip,
            select,
            timeout,
            name,
        } => {
            let input = ServiceInput {
                name: name.clone(),
                vip: Some(service.vip.to_string()),
                port: Some(service.port.into()),
                protocol: Some(service.protocol.to_string()),
                mode: mode.map(|m| m.to_string()),
                select: select.map(|s| s.to_string()),
                timeout_s: timeout.map(i64::from),
                snat_ip: snat_ip.map(|ip| ip.to_string()),
                backends: Some(
                    backends
                        .iter()
                        .map(|b| BackendInput {
                            ip: Some(b.ip.to_string()),
                            port: Some(b.port.into()),
                            weight: b.weight.map(i64::from),
                        })
                        .collect(),
                ),
            };
            let v = client.create(&input)?;
            if json {
                pretty(&v)
            } else {
                let spec: ServiceSpec = decode(v)?;
                format!("added {}\n", spec.key().display_addr())
            }
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Input(format!("writing output: {e}")))
}

pub(super) fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, CliError> {
    serde_json::from_value(v).map_err(|e| CliError::Decode(e.to_string()))
}
