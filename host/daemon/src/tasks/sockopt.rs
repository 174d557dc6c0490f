//! The Generalized TTL Security Mechanism (RFC 5082), which no portable crate offers.
//! Linux only.

use std::io;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_security_applies_to_a_real_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_ttl_security(&l, false, 1).unwrap();
    }
}
