//! Controller calls off the async threads.

use std::sync::Arc;

use super::ApiError;
use crate::controller::Controller;

/// Runs `f` on the controller off the async threads (map syscalls block).
pub(super) async fn blocking<R: Send + 'static>(
    c: &Arc<Controller>,
    f: impl FnOnce(&Controller) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let c = Arc::clone(c);
    tokio::task::spawn_blocking(move || f(&c))
        .await
        .map_err(|e| ApiError::internal(format!("request task failed: {e}")))
}
