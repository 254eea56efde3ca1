//! HTTP client of the REST API.

use std::time::Duration;

use serde_json::Value;

use crate::config::{ServiceInput, ServiceKey};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API refused: its status and `error` message.
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    #[error("cannot reach the API at {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("unexpected answer from the API: {0}")]
    Decode(String),
    /// Bad input file or argument.
    #[error("{0}")]
    Input(String),
}

/// The API at one base URL.
pub struct ApiClient {
    base: String,
    agent: ureq::Agent,
}

impl ApiClient {
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn service_path(key: &ServiceKey) -> String {
        format!("/v1/services/{key}")
    }

    /// Turns a response into its JSON body, or the API's error.
    fn finish(
        &self,
        url: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Option<Value>, CliError> {
        let mut resp = r.map_err(|e| CliError::Transport {
            url: url.to_string(),
            source: Box::new(e),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| CliError::Decode(e.to_string()))?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return Err(CliError::Api { status, message });
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CliError::Decode(e.to_string()))
    }

    fn body(v: Option<Value>) -> Result<Value, CliError> {
        v.ok_or_else(|| CliError::Decode("empty body".into()))
    }

    /// `GET /v1/services`.
    pub fn list(&self) -> Result<Value, CliError> {
        self.get_path("/v1/services")
    }

    /// `GET /v1/services/{key}` (with counters).
    pub fn get(&self, key: &ServiceKey) -> Result<Value, CliError> {
        self.get_path(&Self::service_path(key))
    }

    /// `DELETE /v1/services/{key}`.
    pub fn delete(&self, key: &ServiceKey) -> Result<(), CliError> {
        self.delete_path(&Self::service_path(key))
    }

    /// `PUT /v1/services/{key}`: create or replace.
    pub fn put(&self, key: &ServiceKey, service: &ServiceInput) -> Result<Value, CliError> {
        self.put_path(&Self::service_path(key), service)
    }

    /// `POST /v1/services`: create.
    pub fn create(&self, service: &ServiceInput) -> Result<Value, CliError> {
        let url = self.url("/v1/services");
        Self::body(self.finish(&url, self.agent.post(&url).send_json(service))?)
    }

    /// `GET path`.
    pub fn get_path(&self, path: &str) -> Result<Value, CliError> {
        let url = self.url(path);
        Self::body(self.finish(&url, self.agent.get(&url).call())?)
    }

    /// `PUT path` with `body` as JSON.
    pub fn put_path(&self, path: &str, body: &impl serde::Serialize) -> Result<Value, CliError> {
        let url = self.url(path);
        Self::body(self.finish(&url, self.agent.put(&url).send_json(body))?)
    }

    /// `DELETE path`.
    pub fn delete_path(&self, path: &str) -> Result<(), CliError> {
        let url = self.url(path);
        self.finish(&url, self.agent.delete(&url).call())?;
        Ok(())
    }
}
