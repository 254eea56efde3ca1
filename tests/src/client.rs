//! Client side of the test protocol (see [`crate::server`]). These functions
//! use plain std sockets in the caller's network namespace: call them inside
//! [`crate::netns::Netns::run`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// What one exchange with a test server showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Name of the backend that answered.
    pub backend: String,
    /// Client address as the backend saw it.
    pub seen_client: SocketAddr,
    /// Our own address.
    pub local: SocketAddr,
    /// Who answered, as the client sees it (UDP: source of the reply).
    pub peer: SocketAddr,
    /// TCP: the MSS the backend's accepted socket sends with
    /// (`TCP_MAXSEG`); UDP: `None`.
    pub mss: Option<u32>,
}

/// `NAME PEER` and, in a TCP greeting, ` MSS`.
fn parse_reply(text: &str) -> Result<(String, SocketAddr, Option<u32>)> {
    let mut words = text.split_whitespace();
    let name = words.next().ok_or_else(|| anyhow!("empty reply"))?;
    let peer = words
        .next()
        .ok_or_else(|| anyhow!("reply {text:?} lacks the peer address"))?
        .parse()
        .with_context(|| format!("reply {text:?}: bad peer address"))?;
    let mss = words
        .next()
        .map(|w| w.parse())
        .transpose()
        .with_context(|| format!("reply {text:?}: bad MSS"))?;
    Ok((name.to_string(), peer, mss))
}

/// An open TCP connection to a test server.
#[derive(Debug)]
pub struct TcpSession {
    reader: BufReader<TcpStream>,
    pub hello: Hello,
}

impl TcpSession {
    /// Connect, read the greeting. Every wait is bounded by `timeout`.
    pub fn connect(addr: SocketAddrV4, timeout: Duration) -> Result<TcpSession> {
        let stream = TcpStream::connect_timeout(&addr.into(), timeout)
            .with_context(|| format!("TCP connect to {addr}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let local = stream.local_addr()?;
        let peer = stream.peer_addr()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .with_context(|| format!("reading the greeting from {addr}"))?;
        let (backend, seen_client, mss) = parse_reply(&line)?;
        Ok(TcpSession {
            reader,
            hello: Hello {
                backend,
                seen_client,
                local,
                peer,
                mss,
            },
        })
    }

    /// Send `message` and read the same bytes back.
    pub fn echo(&mut self, message: &str) -> Result<String> {
        self.reader.get_mut().write_all(message.as_bytes())?;
        let mut buf = vec![0u8; message.len()];
        self.reader
            .read_exact(&mut buf)
            .context("reading the echo")?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Connect, then send `len` bytes and read them back while sending (a
/// writer thread, so neither side stalls on full buffers); error unless the
/// echo is byte for byte what was sent. Each read and write is bounded by
/// `timeout`. Returns the greeting.
pub fn echo_bulk(addr: SocketAddrV4, len: usize, timeout: Duration) -> Result<Hello> {
    let mut session = TcpSession::connect(addr, timeout)?;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut writer = session.reader.get_ref().try_clone()?;
    let mut echoed = vec![0u8; len];
    let (written, read) = std::thread::scope(|scope| {
        let send = scope.spawn(|| writer.write_all(&data));
        let read = session.reader.read_exact(&mut echoed);
        (send.join(), read)
    });
    written
        .map_err(|_| anyhow!("writer thread panicked"))?
        .with_context(|| format!("sending {len} bytes to {addr}"))?;
    read.with_context(|| format!("reading {len} echoed bytes from {addr}"))?;
    if let Some(at) = data.iter().zip(&echoed).position(|(a, b)| a != b) {
        bail!("the echo from {addr} differs from what was sent at byte {at}");
    }
    Ok(session.hello)
}

/// One TCP connection: connect, read the greeting, close.
pub fn tcp_hello(addr: SocketAddrV4, timeout: Duration) -> Result<Hello> {
    Ok(TcpSession::connect(addr, timeout)?.hello)
}

/// One UDP exchange from a fresh socket (so a fresh source port): send, wait
/// for the reply, report who it came from.
pub fn udp_hello(addr: SocketAddrV4, timeout: Duration) -> Result<Hello> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(timeout))?;
    socket
        .send_to(b"hello", addr)
        .with_context(|| format!("UDP send to {addr}"))?;
    let mut buf = [0u8; 512];
    let (n, from) = socket
        .recv_from(&mut buf)
        .with_context(|| format!("no UDP reply from {addr} within {timeout:?}"))?;
    let (backend, seen_client, mss) = parse_reply(&String::from_utf8_lossy(&buf[..n]))?;
    let local = socket.local_addr()?;
    Ok(Hello {
        backend,
        seen_client,
        local,
        peer: from,
        mss,
    })
}

/// Which protocol a batch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// `count` separate exchanges (new connection / new source port each);
/// returns every reply. Fails on the first exchange that fails.
pub fn hellos(
    proto: Proto,
    addr: SocketAddrV4,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Hello>> {
    (0..count)
        .map(|i| {
            match proto {
                Proto::Tcp => tcp_hello(addr, timeout),
                Proto::Udp => udp_hello(addr, timeout),
            }
            .with_context(|| format!("exchange {i} of {count}"))
        })
        .collect()
}

/// How many replies came from each backend.
pub fn spread(hellos: &[Hello]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for hello in hellos {
        *counts.entry(hello.backend.clone()).or_insert(0) += 1;
    }
    counts
}

/// Check what every exchange must show through a DNAT load balancer: the
/// reply came from `vip` and the backend saw the client's own address and
/// port (source kept).
pub fn check_nat(hellos: &[Hello], vip: SocketAddrV4) -> Result<()> {
    for hello in hellos {
        if hello.peer != SocketAddr::V4(vip) {
            bail!(
                "reply came from {}, expected the VIP {vip}: {hello:?}",
                hello.peer
            );
        }
        // An unconnected UDP socket reports 0.0.0.0 as its own address:
        // compare the port then.
        let same_ip =
            hello.local.ip().is_unspecified() || hello.local.ip() == hello.seen_client.ip();
        if !same_ip || hello.local.port() != hello.seen_client.port() {
            bail!(
                "backend {} saw the client as {}, but the client is {}",
                hello.backend,
                hello.seen_client,
                hello.local
            );
        }
    }
    Ok(())
}
