//! The README's main command runs: `ferrolb-demo` (what `cargo xtask demo`
//! runs) goes through both parts with small counts, succeeds, and shows
//! what it promises: traffic spread over the backends, and pods on a VXLAN
//! and an IPIP node reached in every mode with the source each mode
//! promises.

use std::process::Command;

use tests::bins::bin_path;

#[test]
fn demo_runs_both_parts_and_shows_every_mode_reaching_pods() {
    let out = Command::new(bin_path("ferrolb-demo").unwrap())
        .args(["--tcp", "6", "--udp", "6", "--overlay-connections", "8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "every backend saw the client's own address",
        "every reply came from the VIP 10.96.0.10:80",
        "every reply came from the VIP 10.96.0.10:81",
        "every reply came from the VIP 10.96.0.10:82",
        "Done: daemon stopped, namespaces removed.",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    // Every pod row: the client's address (dnat), the node-network address
    // (onearm) and the overlay address (fullnat), and no pod left out.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("│ node")).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    for row in rows {
        assert!(
            row.contains("(10.0.1.2)")
                && row.contains("(172.16.1.1)")
                && row.contains("(10.244.0.0)"),
            "{row}"
        );
        assert!(!row.contains(" 0 ("), "a pod got no connection: {row}");
    }
}
