//! `ferrolb-agent`: the Kubernetes side of ferrolb (not implemented yet).
//!
//! It will watch Services of type LoadBalancer whose
//! `spec.loadBalancerClass` is ours, assign VIPs, and drive ferrolbd's REST
//! API with the Services' endpoints (kube-rs controller, like controller-rs).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "ferrolb-agent",
    version,
    about = "ferrolb Kubernetes agent (not implemented yet)"
)]
struct Args {
    /// Services with this `spec.loadBalancerClass` are handled by ferrolb.
    #[arg(
        long,
        env = "FERROLB_LOAD_BALANCER_CLASS",
        default_value = "ferrolb.io/lb"
    )]
    load_balancer_class: String,
    /// Base URL of ferrolbd's REST API.
    #[arg(
        long,
        env = "FERROLB_DAEMON_API",
        default_value = "http://127.0.0.1:7701"
    )]
    daemon_api: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!(
        "ferrolb-agent: not implemented yet (would handle loadBalancerClass {:?} through {})",
        args.load_balancer_class, args.daemon_api
    );
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_have_their_defaults_and_can_be_set() {
        let args = Args::try_parse_from(["ferrolb-agent"]).unwrap();
        assert_eq!(args.load_balancer_class, "ferrolb.io/lb");
        assert_eq!(args.daemon_api, "http://127.0.0.1:7701");
        let args = Args::try_parse_from([
            "ferrolb-agent",
            "--load-balancer-class",
            "example.com/lb",
            "--daemon-api",
            "http://10.0.0.1:7701",
        ])
        .unwrap();
        assert_eq!(args.load_balancer_class, "example.com/lb");
        assert_eq!(args.daemon_api, "http://10.0.0.1:7701");
    }
}
