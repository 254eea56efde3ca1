//! Source addresses of source-NATing services (`snat_source.rs`) against a
//! real loaded datapath (root; no interface): what `Backend::snat_ip` each
//! mode gets, refusals that change nothing, and onearm services following
//! tunnel route changes.

use std::net::Ipv4Addr;

use super::*;
use crate::{
    config::{TunnelInput, validate_tunnel},
    controller::{Controller, ControllerError},
    test_support::{Dirs, TEST_TUNNEL_SOURCE, spec},
};

fn be(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn service(mode: &str, extra: &str, backend: &str) -> crate::config::ServiceSpec {
    spec(&format!(
        r#"{{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "mode": "{mode}"{extra},
        "backends": [{{"ip": "{backend}", "port": 8080}}]}}"#
    ))
}

/// `Backend::snat_ip` of the service's only backend.
fn snat_of(dp: &Datapath, s: &crate::config::ServiceSpec) -> u32 {
    let b = s.backends[0];
    let h = dp.installed(&s.key()).unwrap().backends[&(b.ip, b.port)];
    dp.maps.backend(h.id).unwrap().snat_ip
}

#[test]
fn fullnat_takes_snat_ip_else_the_overlay_ip_else_is_refused() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let given = service("fullnat", r#", "snat_ip": "10.244.0.7""#, "10.244.1.2");
    dp.apply(&given).unwrap();
    assert_eq!(snat_of(&dp, &given), be(Ipv4Addr::new(10, 244, 0, 7)));

    // No snat_ip and no --overlay-ip: refused, naming the service and both
    // ways to fix it, and nothing changed.
    let dnat = service("dnat", "", "10.244.1.2");
    let bare = service("fullnat", "", "10.244.1.2");
    dp.apply(&dnat).unwrap();
    let before = dp.installed(&dnat.key()).cloned();
    let err = dp.apply(&bare).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tcp/10.96.0.10/80")
            && text.contains("snat_ip")
            && text.contains("--overlay-ip"),
        "{text}"
    );
    assert_eq!(
        crate::api::ApiError::from(ControllerError::from(err)).status,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(dp.installed(&dnat.key()).cloned(), before);
    assert_eq!(snat_of(&dp, &dnat), 0, "dnat keeps the client's address");

    let mut opts = dirs.options();
    opts.bpffs_dir = dirs.pin.join("overlay");
    opts.overlay_ip = Some(Ipv4Addr::new(10, 244, 0, 5));
    let mut dp = Datapath::load(&opts).unwrap();
    dp.apply(&bare).unwrap();
    assert_eq!(snat_of(&dp, &bare), be(Ipv4Addr::new(10, 244, 0, 5)));
}

#[test]
fn a_kept_backend_takes_the_new_mode_and_keeps_its_connections() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let dnat = service("dnat", "", "10.244.1.2");
    dp.apply(&dnat).unwrap();
    let b = dnat.backends[0];
    let before = dp.installed(&dnat.key()).unwrap().backends[&(b.ip, b.port)];
    let full = service("fullnat", r#", "snat_ip": "10.244.0.7""#, "10.244.1.2");
    dp.apply(&full).unwrap();
    let after = dp.installed(&full.key()).unwrap().backends[&(b.ip, b.port)];
    assert_eq!(before, after, "same id and generation");
    assert_eq!(snat_of(&dp, &full), be(Ipv4Addr::new(10, 244, 0, 7)));
    dp.apply(&dnat).unwrap();
    assert_eq!(snat_of(&dp, &dnat), 0);
}

#[test]
fn onearm_takes_the_route_source_or_the_tunnel_source_and_follows_tunnels() {
    let dirs = Dirs::new();
    let controller = Controller::new(dirs.load(), None).unwrap();
    // No tunnel route: the kernel's route source toward the backend (a
    // loopback address here).
    let s = service("onearm", "", "127.0.0.9");
    controller.put(s.clone()).unwrap();
    assert_eq!(
        controller.with_datapath(|dp| snat_of(dp, &s)),
        be(Ipv4Addr::LOCALHOST)
    );

    // A tunnel route over the backend: its tunnel source (the test
    // datapath's fixed one), without putting the service again.
    let route = validate_tunnel(
        &TunnelInput {
            name: Some("lo".into()),
            pod_cidr: Some("127.0.0.0/24".into()),
            node_ip: Some("192.0.2.10".into()),
            encap: Some("ipip".into()),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    controller.put_tunnel(route).unwrap();
    assert_eq!(
        controller.with_datapath(|dp| snat_of(dp, &s)),
        be(TEST_TUNNEL_SOURCE)
    );
    controller.delete_tunnel("lo").unwrap();
    assert_eq!(
        controller.with_datapath(|dp| snat_of(dp, &s)),
        be(Ipv4Addr::LOCALHOST)
    );
}
