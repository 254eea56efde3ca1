//! `ferrolbctl` against the real router over a real loaded datapath, served
//! on a socket (root; no interface).

use std::{path::PathBuf, sync::Arc};

use clap::Parser;
use serde_json::Value;

use super::{CliArgs, run};
use crate::{api::router, controller::Controller, state::StateStore, test_support::Dirs};

/// The API on 127.0.0.1, stopped on drop.
struct Served {
    controller: Arc<Controller>,
    base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    dirs: Dirs,
}

impl Served {
    async fn start() -> Self {
        let dirs = Dirs::new();
        let store = StateStore::new(&dirs.state);
        let controller = Arc::new(Controller::new(dirs.load(), Some(store)).unwrap());
        let app = router(Arc::clone(&controller));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            controller,
            base,
            server,
            dirs,
        }
    }

    /// A file next to the state directory holding `text`.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dirs.state.with_extension(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `ferrolbctl --api BASE args...`: its output, or its error.
    async fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["ferrolbctl".to_string(), "--api".into(), self.base.clone()];
        full.extend(args.iter().map(|a| a.to_string()));
        tokio::task::spawn_blocking(move || {
            let args = CliArgs::try_parse_from(full).unwrap();
            let mut out = Vec::new();
            run(&args, &mut out)
                .map(|()| String::from_utf8(out).unwrap())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_talks_to_the_api() {
    let api = Served::start().await;
    let file = api.file(
        "yaml",
        "- name: default/web\n  vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  backends:\n    - {ip: 10.0.2.2, port: 8080, weight: 2}\n",
    );
    let file = file.to_str().unwrap();

    let out = api.ctl(&["service", "apply", "-f", file]).await.unwrap();
    assert_eq!(out, "applied 10.96.0.10:80/tcp\n");
    let out = api
        .ctl(&[
            "service",
            "add",
            "10.96.0.10:53/udp",
            "--backend",
            "10.0.2.2:53,3",
            "--select",
            "hash",
        ])
        .await
        .unwrap();
    assert_eq!(out, "added 10.96.0.10:53/udp\n");
    let err = api
        .ctl(&["service", "add", "10.96.0.10:53/udp"])
        .await
        .unwrap_err();
    assert_eq!(err, "service udp/10.96.0.10/53 already exists (HTTP 409)");

    let out = api.ctl(&["service", "list"]).await.unwrap();
    assert!(
        out.contains("10.96.0.10:80/tcp")
            && out.contains("default/web")
            && out.contains("10.0.2.2:53 (w3)"),
        "{out}"
    );
    let out = api
        .ctl(&["service", "get", "10.96.0.10:80/tcp"])
        .await
        .unwrap();
    assert!(
        out.contains("10.0.2.2:8080") && out.contains("TOTAL"),
        "{out}"
    );
    let out = api
        .ctl(&["-o", "json", "service", "get", "10.96.0.10:53/udp"])
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["select"], "hash");
    assert_eq!(v["backends"][0]["weight"], 3);

    let out = api
        .ctl(&["service", "delete", "10.96.0.10:53/udp"])
        .await
        .unwrap();
    assert_eq!(out, "deleted 10.96.0.10:53/udp\n");
    let err = api
        .ctl(&["service", "get", "10.96.0.10:53/udp"])
        .await
        .unwrap_err();
    assert_eq!(err, "service udp/10.96.0.10/53 not found (HTTP 404)");
    assert_eq!(api.controller.list().len(), 1);
}

/// A file whose second entry is bad is refused before anything is sent: the
/// first entry is not applied either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_sends_nothing_when_an_entry_is_bad() {
    let api = Served::start().await;
    let file = api.file(
        "yaml",
        "- vip: 10.96.0.10\n  port: 80\n  protocol: tcp\n  backends: [{ip: 10.0.2.2, port: 8080}]\n\
         - vip: 10.96.0.11\n  port: 80\n  protocol: tcp\n  backends: [{ip: 10.0.2.2, port: 0}]\n",
    );
    let shown = file.display().to_string();
    let err = api
        .ctl(&["service", "apply", "-f", &shown])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        format!("{shown}: services[1].backends[0].port: must be 1..=65535")
    );
    assert!(api.controller.list().is_empty());

    let dup = api.file(
        "json",
        r#"[{"vip": "10.96.0.10", "port": 80, "protocol": "tcp"},
            {"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "select": "hash"}]"#,
    );
    let err = api
        .ctl(&["service", "apply", "-f", dup.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(
        err.ends_with("services[1]: duplicate of services[0] (10.96.0.10:80/tcp)"),
        "{err}"
    );
    assert!(api.controller.list().is_empty());
}
