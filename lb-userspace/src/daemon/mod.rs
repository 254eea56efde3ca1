//! `ferrolbd`: loads the datapath, restores the configuration, serves the
//! API and runs the connection-table scan until told to stop. It warns when
//! IPv4 forwarding is off for the interfaces it attaches to, and when
//! `accept_local` is off there while tunnel routes encapsulate.

mod accept_local;
mod args;
mod clock;
mod conntrack_scan;
mod forwarding;
mod sysctl;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

pub use args::DaemonArgs;
pub use clock::run_clock;
pub use conntrack_scan::run_scan;
use tokio::net::TcpListener;

use crate::{
    api,
    controller::{Controller, ControllerError},
    datapath::{Datapath, DatapathError, DatapathOptions, TunnelEndConfig},
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
    scan_interval: Duration,
}

impl Daemon {
    /// Loads and attaches the datapath, restores the saved services and binds
    /// the API address.
    pub async fn start(args: &DaemonArgs) -> Result<Self, DaemonError> {
        let opts = DatapathOptions {
            bpffs_dir: args.bpffs_dir.clone(),
            ifaces: args.ifaces.clone(),
            decap_ifaces: args.node_decap.clone(),
            xdp_mode: args.xdp_mode,
            conntrack_size: args.conntrack_size,
            tunnel_end: TunnelEndConfig {
                source: args.tunnel_source,
                vtep_mac: args.vtep_mac,
            },
            overlay_ip: args.overlay_ip,
            icmp_limit: lb_common::IcmpLimit {
                rate_per_s: args.icmp_rate,
                burst: args.icmp_burst,
            },
        };
        let store = StateStore::new(&args.state_dir);
        let controller = tokio::task::spawn_blocking(move || {
            let datapath = Datapath::load(&opts)?;
            Ok::<_, DaemonError>(Controller::new(datapath, Some(store))?)
        })
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))??;
        forwarding::warn_if_forwarding_off(&args.ifaces);
        // DSR services encapsulate whatever their backends' routes are.
        let encapsulates = controller
            .list_tunnels()
            .iter()
            .any(|t| t.encap != crate::config::Encap::None)
            || controller
                .list()
                .iter()
                .any(|s| s.mode == crate::config::Mode::Dsr);
        accept_local::warn_if_accept_local_off(&args.ifaces, encapsulates);
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
            scan_interval: Duration::from_secs(args.conntrack_scan_interval_s),
        })
    }

    /// The bound API address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, std::io::Error> {
        self.listener.local_addr()
    }

    pub fn controller(&self) -> Arc<Controller> {
        Arc::clone(&self.controller)
    }

    /// Serves the API and runs the table scan until `shutdown` completes, then
    /// detaches the program. The maps stay pinned, so established
    /// connections survive a restart.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DaemonError> {
        let addr = self.listener.local_addr().map_err(DaemonError::Serve)?;
        tracing::info!(%addr, "API listening");
        let clock = tokio::spawn(run_clock(self.controller.clock()));
        let scan = tokio::spawn(run_scan(self.controller.conntrack(), self.scan_interval));
        let app = api::router(Arc::clone(&self.controller));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(DaemonError::Serve);
        scan.abort();
        clock.abort();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Dirs;
    use clap::Parser;

    fn args(dirs: &Dirs) -> DaemonArgs {
        DaemonArgs::try_parse_from([
            "ferrolbd",
            "--api-addr",
            "127.0.0.1:0",
            "--state-dir",
            dirs.state.to_str().unwrap(),
            "--bpffs-dir",
            dirs.pin.to_str().unwrap(),
            "--conntrack-size",
            "4096",
        ])
        .unwrap()
    }

    /// Starts, serves until told to stop, and comes back with the same
    /// services (and ids) after a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_stops_and_restores() {
        let dirs = Dirs::new();
        let web = crate::test_support::spec(
            r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "backends": [{"ip": "10.0.2.2", "port": 8080}]}"#,
        );
        let key = web.key();

        let daemon = Daemon::start(&args(&dirs)).await.unwrap();
        let addr = daemon.local_addr().unwrap();
        let controller = daemon.controller();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(daemon.serve(async {
            let _ = stopped.await;
        }));
        let health = tokio::task::spawn_blocking(move || {
            ureq::get(format!("http://{addr}/healthz"))
                .call()
                .map(|r| r.status().as_u16())
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(health, 200);
        controller.put(web.clone()).unwrap();
        let before = controller.with_datapath(|dp| dp.installed(&key).cloned());
        drop(controller);
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();

        let daemon = Daemon::start(&args(&dirs)).await.unwrap();
        let controller = daemon.controller();
        assert_eq!(controller.list(), vec![web]);
        assert_eq!(
            controller.with_datapath(|dp| dp.installed(&key).cloned()),
            before
        );
        assert!(
            controller
                .with_datapath(|dp| dp.service_entry(&key).unwrap())
                .is_some()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_errors_name_the_problem() {
        let dirs = Dirs::new();
        let mut a = args(&dirs);
        a.ifaces = vec!["ferrolb-nope0".into()];
        let err = Daemon::start(&a).await.err().expect("no such interface");
        assert!(
            err.to_string().contains("\"ferrolb-nope0\" does not exist"),
            "{err}"
        );

        std::fs::create_dir_all(&dirs.state).unwrap();
        std::fs::write(dirs.state.join("services.json"), "{").unwrap();
        let err = Daemon::start(&args(&dirs))
            .await
            .err()
            .expect("bad state file");
        assert!(
            err.to_string()
                .contains("services.json: body: malformed JSON"),
            "{err}"
        );
    }
}
