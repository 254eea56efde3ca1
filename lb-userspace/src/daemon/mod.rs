//! `ferrolbd`: loads the datapath, restores the configuration, serves the
//! API and runs the connection-table GC until told to stop.

mod args;
mod gc;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

pub use args::DaemonArgs;
pub use gc::run_gc;
use tokio::net::TcpListener;

use crate::{
    api,
    controller::{Controller, ControllerError},
    datapath::{Datapath, DatapathError, DatapathOptions},
    state::StateStore,
};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("loading the datapath: {0}")]
    Datapath(#[from] DatapathError),
    #[error("restoring the configuration: {0}")]
    Controller(#[from] ControllerError),
    #[error("API address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("API server: {0}")]
    Serve(#[source] std::io::Error),
    #[error("startup task failed: {0}")]
    Task(String),
}

/// A started daemon: datapath loaded and attached, configuration restored,
/// API socket bound. `serve` runs it.
pub struct Daemon {
    controller: Arc<Controller>,
    listener: TcpListener,
    gc_interval: Duration,
}

impl Daemon {
    /// Loads and attaches the datapath, restores the saved services and binds
    /// the API address.
    pub async fn start(args: &DaemonArgs) -> Result<Self, DaemonError> {
        let opts = DatapathOptions {
            bpffs_dir: args.bpffs_dir.clone(),
            ifaces: args.ifaces.clone(),
            xdp_mode: args.xdp_mode,
            conntrack_size: args.conntrack_size,
        };
        let store = StateStore::new(&args.state_dir);
        let controller = tokio::task::spawn_blocking(move || {
            let datapath = Datapath::load(&opts)?;
            Ok::<_, DaemonError>(Controller::new(datapath, Some(store))?)
        })
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))??;
        let listener =
            TcpListener::bind(args.api_addr)
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: args.api_addr,
                    source,
                })?;
        Ok(Self {
            controller: Arc::new(controller),
            listener,
            gc_interval: Duration::from_secs(args.gc_interval_s),
        })
    }

    /// The bound API address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, std::io::Error> {
        self.listener.local_addr()
    }

    pub fn controller(&self) -> Arc<Controller> {
        Arc::clone(&self.controller)
    }

    /// Serves the API and runs the GC until `shutdown` completes, then
    /// detaches the program. The maps stay pinned, so established
    /// connections survive a restart.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DaemonError> {
        let addr = self.listener.local_addr().map_err(DaemonError::Serve)?;
        tracing::info!(%addr, "API listening");
        let gc = tokio::spawn(run_gc(self.controller.conntrack(), self.gc_interval));
        let app = api::router(Arc::clone(&self.controller));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(DaemonError::Serve);
        gc.abort();
        let controller = self.controller;
        let detached = tokio::task::spawn_blocking(move || controller.detach())
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))?;
        served?;
        detached?;
        tracing::info!("stopped; maps stay pinned");
        Ok(())
    }
}
