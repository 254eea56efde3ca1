//! ferrolbd restarts: it restores its services from the state directory and
//! re-attaches; connections tracked before the restart go on.

use tests::api::service_path;
use tests::client::{self, Proto, TcpSession};
use tests::lab::Lab;
use tests::topology::IO_TIMEOUT;

#[test]
fn restart_restores_services_and_traffic() {
    let mut lab = Lab::start(2).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    lab.serve_all("udp", "hash").unwrap();
    let vip = lab.vip();
    let before = lab.api().get("/v1/services").unwrap().json().unwrap();
    assert_eq!(before.as_array().map(Vec::len), Some(2), "{before}");

    lab.daemon.restart().unwrap();

    // Same configuration after the restart.
    let after = lab.api().get("/v1/services").unwrap().json().unwrap();
    assert_eq!(after, before, "services restored from the state directory");
    let tcp = lab.api().get(&service_path("tcp", vip)).unwrap();
    assert_eq!(tcp.status, 200, "{tcp:?}");
    assert_eq!(tcp.json().unwrap()["select"], "rr");

    // Traffic flows again, over both backends.
    for proto in [Proto::Tcp, Proto::Udp] {
        let hellos = lab
            .topo
            .client
            .run(|| client::hellos(proto, vip, 16, IO_TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("{proto:?} after restart: {e:#}\n{}", lab.daemon.log()));
        client::check_nat(&hellos, vip).unwrap();
        assert_eq!(
            client::spread(&hellos).len(),
            2,
            "{proto:?}: {:?}",
            client::spread(&hellos)
        );
    }
}

#[test]
fn established_connection_survives_a_restart() {
    let mut lab = Lab::start(2).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    let vip = lab.vip();
    let mut session = lab
        .topo
        .client
        .run(|| TcpSession::connect(vip, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert_eq!(session.echo("one\n").unwrap(), "one\n");
    // ferrolbd detaches on SIGTERM, so for the fraction of a second between
    // the two daemons the kernel routes packets itself: a segment in flight
    // then (the client's delayed ACK, or the backend's retransmission when
    // that ACK is lost) would cross un-NATed and the connection be reset.
    // What is under test is that the pinned connection table and backend
    // identities carry a connection over, so restart while it is quiet.
    std::thread::sleep(std::time::Duration::from_millis(500));

    lab.daemon.restart().unwrap();

    // The connection table is pinned and the backends keep their identity,
    // so the connection goes on, on the same backend.
    for i in 0..3 {
        let msg = format!("after restart {i}\n");
        let echoed = session.echo(&msg).unwrap_or_else(|e| {
            panic!(
                "connection on {} broke across the restart: {e:#}",
                session.hello.backend
            )
        });
        assert_eq!(echoed, msg);
    }
}
