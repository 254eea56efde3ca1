//! Sending IPIP from a namespace: a raw `IPPROTO_IPIP` socket, for which the
//! kernel builds the outer IPv4 header (protocol 4, source chosen by the
//! route) around the inner IPv4 packet written to it. Needs no ipip module.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};

use crate::ipip::inner_packet;
use crate::netns::Netns;
use crate::packets::Frame;

pub struct IpipSocket {
    fd: OwnedFd,
}

impl IpipSocket {
    /// A raw IPIP socket in `ns`.
    pub fn open(ns: &Netns) -> Result<IpipSocket> {
        let fd = ns.run(|| {
            // SAFETY: socket(2) with constant arguments.
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_IPIP) }
        })?;
        if fd < 0 {
            bail!(
                "socket(AF_INET, SOCK_RAW, IPPROTO_IPIP): {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: a fresh descriptor owned by nothing else.
        Ok(IpipSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends `inner` (a whole IPv4 packet) encapsulated to `outer_dst`.
    pub fn send(&self, outer_dst: Ipv4Addr, inner: &[u8]) -> Result<()> {
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(outer_dst.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: `inner` and `addr` are valid for the call's duration.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                inner.as_ptr().cast(),
                inner.len(),
                0,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            bail!("sendto {outer_dst}: {}", std::io::Error::last_os_error());
        }
        if n as usize != inner.len() {
            bail!("sendto {outer_dst}: sent {n} of {} bytes", inner.len());
        }
        Ok(())
    }
}

/// What [`udp_exchange`] got back.
#[derive(Debug, Clone)]
pub struct UdpReply {
    pub text: String,
    /// The reply's source.
    pub from: SocketAddr,
    /// Datagrams sent until a reply came.
    pub sent: u64,
}

/// Sends a UDP datagram from `client` (bound to a specific address, with a
/// read timeout) to `dst`, IPIP-encapsulated by `tunnel` to `outer_dst`, and
/// waits for the reply on `client` (the reply comes back unencapsulated);
/// retries up to `tries` times.
pub fn udp_exchange(
    tunnel: &IpipSocket,
    outer_dst: Ipv4Addr,
    client: &UdpSocket,
    dst: SocketAddrV4,
    tries: u64,
) -> Result<UdpReply> {
    let SocketAddr::V4(src) = client.local_addr()? else {
        bail!("the client socket is not IPv4");
    };
    anyhow::ensure!(
        !src.ip().is_unspecified(),
        "bind the client socket to its address: the inner packet carries it"
    );
    let inner = inner_packet(&Frame::udp([0; 6], [0; 6], src, dst));
    let mut buf = [0u8; 1500];
    for sent in 1..=tries {
        tunnel
            .send(outer_dst, &inner)
            .with_context(|| format!("IPIP to {outer_dst}"))?;
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            return Ok(UdpReply {
                text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                from,
                sent,
            });
        }
    }
    bail!("no reply from {dst} (IPIP via {outer_dst}) after {tries} tries")
}
