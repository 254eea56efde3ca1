//! The API test harness: the real router over a real loaded datapath
//! (root; no interface), and requests through it.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode, header::CONTENT_TYPE},
};
use serde_json::Value;
use tower::ServiceExt;

use super::router;
use crate::{controller::Controller, state::StateStore, test_support::Dirs};

pub(super) struct Api {
    pub(super) app: Router,
    pub(super) controller: Arc<Controller>,
    pub(super) store: StateStore,
    pub(super) dirs: Dirs,
}

impl Api {
    pub(super) fn new() -> Self {
        Self::on(Dirs::new())
    }

    pub(super) fn on(dirs: Dirs) -> Self {
        let store = StateStore::new(&dirs.state);
        let controller = Arc::new(Controller::new(dirs.load(), Some(store.clone())).unwrap());
        Self {
            app: router(Arc::clone(&controller)),
            controller,
            store,
            dirs,
        }
    }

    /// The same directories, a new datapath and controller: a restart.
    pub(super) fn restart(self) -> Self {
        let Api { dirs, .. } = self;
        Self::on(dirs)
    }

    pub(super) async fn raw(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            // Not JSON (an extractor's own rejection): the text.
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        match body {
            Some(b) => {
                self.raw(method, path, Some("application/json"), &b.to_string())
                    .await
            }
            None => self.raw(method, path, None, "").await,
        }
    }
}
