//! The REST API (JSON), described by `lb-userspace/openapi.yaml`.

mod blocking;
mod error;
mod extract;
mod health;
mod metrics;
mod routes;
mod services;
mod tunnels;
pub mod views;

pub use error::ApiError;
pub use metrics::render_metrics;
pub use routes::router;

#[cfg(test)]
mod test_api;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;
