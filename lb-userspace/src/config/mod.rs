//! The service model: what a user asks for (`ServiceInput`), how it is
//! checked (`validate`), and the checked result (`ServiceSpec`).

mod error;
mod input;
mod model;
mod names;
mod tunnel;
mod validate;

pub use error::{FieldError, ValidationError};
pub use input::{BackendInput, ServiceInput, parse_json, parse_value};
pub use model::{BackendSpec, Mode, Protocol, Select, ServiceKey, ServiceSpec};
pub use tunnel::{
    DEFAULT_VNI, DEFAULT_VXLAN_PORT, Encap, Ipv4Cidr, MacAddr, TunnelInput, TunnelSpec,
    check_tunnel_name, validate_tunnel,
};
pub use validate::{MAX_NAME_LEN, check_name, check_port, parse_ip, validate};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;
