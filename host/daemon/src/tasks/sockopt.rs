//! Session protections at the socket, which no portable crate offers: the Generalized
//! TTL Security Mechanism (RFC 5082) and TCP-MD5 signatures (RFC 2385). Linux only.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// GTSM for a peer at most `hops` away: send with TTL 255 and drop segments that arrive
/// with a TTL (hop limit) below 256 - hops.
pub fn set_ttl_security(socket: &impl AsRawFd, ipv6: bool, hops: u8) -> io::Result<()> {
    let min = 256 - hops.max(1) as libc::c_int;
    let (level, ttl_opt, min_opt) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            libc::IPV6_MINHOPCOUNT,
        )
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_MINTTL)
    };
    for (opt, value) in [(ttl_opt, 255 as libc::c_int), (min_opt, min)] {
        // SAFETY: a valid fd and an int option value.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                opt,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Keeps the SYN of each connection a listening socket accepts, so that its TTL can be
/// checked before anything the peer sent is read: on an accepted socket a minimum TTL
/// comes too late for the segments already queued (GTSM for peers that connect).
pub fn save_syn(listener: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and an int option value.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVE_SYN,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The TTL (IPv4) or hop limit (IPv6) the SYN of an accepted connection arrived with,
/// if its listener kept it ([`save_syn`]). Readable once.
pub fn syn_ttl(stream: &impl AsRawFd) -> io::Result<Option<u8>> {
    let mut buf = [0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVED_SYN,
            buf.as_mut_ptr() as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let header = &buf[..(len as usize).min(buf.len())];
    Ok(match header.first().map(|b| b >> 4) {
        Some(4) => header.get(8).copied(),
        Some(6) => header.get(7).copied(),
        _ => None,
    })
}

/// `struct tcp_md5sig` of `<linux/tcp.h>`.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; libc::TCP_MD5SIG_MAXKEYLEN],
}

/// TCP-MD5 for segments to and from `peer`: signed and checked with `key`, or no longer
/// (`None`). On a listening socket it applies to the connections it accepts from
/// `peer`; on a socket about to connect, to that connection. An IPv4 peer on an IPv6
/// socket is given as its IPv4-mapped address, as the kernel sees it there.
pub fn set_md5(socket: &impl AsRawFd, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or_default();
    if key.len() > libc::TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 key longer than 80 bytes",
        ));
    }
    let fd = socket.as_raw_fd();
    // SAFETY: zeroed plain-old-data structs, filled field by field below.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let ipv6_socket = socket_family(fd)? == libc::AF_INET6;
    match (peer, ipv6_socket) {
        (IpAddr::V4(v4), false) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut sig.addr as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(v4).to_be();
        }
        (peer, true) => {
            let v6 = match peer {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut sig.addr as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.octets();
        }
        (IpAddr::V6(_), false) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an IPv6 peer on an IPv4 socket",
            ));
        }
    }
    sig.key_len = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: a valid fd and a complete tcp_md5sig.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            &sig as *const TcpMd5Sig as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        // Removing a key that is not there is what we wanted.
        if key.is_empty() && e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

fn socket_family(fd: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: getsockname into a zeroed sockaddr_storage of the given length.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe { libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(libc::c_int::from(addr.ss_family))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On loopback every SYN arrives with the sender's TTL: 64 by default, 255 with GTSM.
    #[test]
    fn the_ttl_of_an_accepted_syn_is_read() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        save_syn(&l).unwrap();
        let addr = l.local_addr().unwrap();
        let plain = std::net::TcpStream::connect(addr).unwrap();
        let (a, _) = l.accept().unwrap();
        assert_eq!(syn_ttl(&a).unwrap(), Some(64));
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // Only the TTL: a minimum TTL here would drop the listener's SYN-ACK (TTL 64).
        socket.set_ttl_v4(255).unwrap();
        socket.connect(&addr.into()).unwrap();
        let (b, _) = l.accept().unwrap();
        assert_eq!(syn_ttl(&b).unwrap(), Some(255));
        drop(plain);
    }

    #[test]
    fn md5_keys_are_set_and_removed_on_real_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        set_md5(&l, peer, Some(b"secret")).unwrap();
        set_md5(&l, peer, None).unwrap();
        set_md5(&l, peer, None).unwrap();
        assert!(set_md5(&l, "::1".parse().unwrap(), Some(b"k")).is_err());
        let l6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        set_md5(&l6, peer, Some(b"secret")).unwrap();
        set_md5(&l6, "::2".parse().unwrap(), Some(&[7u8; 80])).unwrap();
        assert!(set_md5(&l6, peer, Some(&[7u8; 81])).is_err());
    }

    #[test]
    fn ttl_security_applies_to_a_real_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_ttl_security(&l, false, 1).unwrap();
    }
}
