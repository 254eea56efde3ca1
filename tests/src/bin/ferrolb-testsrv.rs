//! Test backend: answers TCP (greets with its name and the client address it
//! sees, then echoes) and UDP (replies with its name and the client address)
//! on one address. See `tests::server` for the protocol.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tests::server::{READY, format_greeting, format_reply};

#[derive(Parser)]
#[command(
    name = "ferrolb-testsrv",
    about = "ferrolb test backend (TCP greet+echo, UDP reply)"
)]
struct Args {
    /// Name this backend answers with.
    #[arg(long)]
    name: String,
    /// Address to listen on (TCP and UDP).
    #[arg(long)]
    listen: SocketAddr,
    /// Only TCP.
    #[arg(long, conflicts_with = "udp_only")]
    tcp_only: bool,
    /// Only UDP.
    #[arg(long)]
    udp_only: bool,
    /// TCP: greet and close at once, in the accepting thread (no echo, no
    /// thread per connection). For connection-rate benchmarks: a thread
    /// started per connection costs the server more than the balancer being
    /// measured costs the connection.
    #[arg(long, conflicts_with = "udp_only")]
    greet_only: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tcp = if args.udp_only {
        None
    } else {
        Some(
            TcpListener::bind(args.listen)
                .with_context(|| format!("binding TCP {}", args.listen))?,
        )
    };
    let udp = if args.tcp_only {
        None
    } else {
        Some(UdpSocket::bind(args.listen).with_context(|| format!("binding UDP {}", args.listen))?)
    };
    println!("{READY}");
    std::io::stdout().flush()?;

    let udp_thread = udp.map(|socket| {
        let name = args.name.clone();
        thread::spawn(move || serve_udp(&socket, &name))
    });
    if let Some(listener) = tcp {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) if args.greet_only => {
                    let _ = greet(&stream, &args.name);
                }
                Ok(stream) => {
                    let name = args.name.clone();
                    thread::spawn(move || {
                        let _ = serve_tcp(stream, &name);
                    });
                }
                Err(err) => eprintln!("{}: accept: {err}", args.name),
            }
        }
    }
    if let Some(handle) = udp_thread {
        let _ = handle.join();
    }
    Ok(())
}

/// Writes the greeting (`NAME PEER MSS`) to a newly accepted connection.
fn greet(mut stream: &TcpStream, name: &str) -> std::io::Result<()> {
    let peer = stream.peer_addr()?;
    let mss = tcp_maxseg(stream)?;
    stream.write_all(format!("{}\n", format_greeting(name, peer, mss)).as_bytes())
}

fn serve_tcp(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    greet(&stream, name)?;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// `TCP_MAXSEG` of a connected socket: the MSS it sends with (the smaller
/// of its path MTU's and the peer's SYN's, less TCP options in use).
fn tcp_maxseg(stream: &TcpStream) -> std::io::Result<u32> {
    let mut mss: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `mss` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&raw mut mss).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(mss as u32)
}

fn serve_udp(socket: &UdpSocket, name: &str) {
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((_, peer)) => {
                let _ = socket.send_to(format_reply(name, peer).as_bytes(), peer);
            }
            Err(err) => eprintln!("{name}: udp recv: {err}"),
        }
    }
}
