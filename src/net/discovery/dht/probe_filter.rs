//! A kernel filter on the DHT's UDP socket that drops the MTU probes of
//! JavaScript peers before the `udx` crate sees them.
//!
//! libudx (under JavaScript's udx-native) turns a data packet into an MTU
//! probe by padding it: byte 3 of the UDX header (`data_offset`) says how
//! many bytes of padding sit between the 20-byte header and the data.
//! `udx` 0.2.0 ignores that byte and hands the padding to the stream as
//! data, which corrupts the encrypted stream above it and kills the link.
//! A dropped probe is, to libudx, a probe that found the path too small: it
//! strips the padding and sends the data again as an ordinary packet, and
//! after three failures stops probing (the stream keeps its base MTU of
//! 1,200 bytes). So dropping every UDX packet with a non-zero
//! `data_offset` before it is read loses nothing but the probes. A classic
//! BPF program on the socket does that in the kernel; the `udx` crate gives
//! no access to its socket, so we find it among our file descriptors by
//! its port.

// The one place the crate needs `unsafe`: borrowing a file descriptor by
// its number (see `attach`).
#![allow(unsafe_code)]

use std::io;

#[cfg(target_os = "linux")]
use socket2::SockFilter;

// Classic BPF opcodes (linux/filter.h).
#[cfg(target_os = "linux")]
const LOAD_BYTE: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
#[cfg(target_os = "linux")]
const JUMP_IF_EQUAL: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
#[cfg(target_os = "linux")]
const RETURN: u16 = 0x06; // BPF_RET | BPF_K

/// Where the datagram starts in what a UDP socket's filter sees: Linux runs
/// it on the packet from the UDP header (8 bytes) on.
#[cfg(target_os = "linux")]
const PAYLOAD: u32 = 8;

/// Accept everything but a UDX packet (magic 0xFF, version 1) whose
/// `data_offset` is not zero. Jumps count from the next instruction.
#[cfg(target_os = "linux")]
const PROGRAM: [SockFilter; 8] = [
    SockFilter::new(LOAD_BYTE, 0, 0, PAYLOAD),  // 0: A = magic
    SockFilter::new(JUMP_IF_EQUAL, 0, 5, 0xff), // 1: UDX? else accept
    SockFilter::new(LOAD_BYTE, 0, 0, PAYLOAD + 1), // 2: A = version
    SockFilter::new(JUMP_IF_EQUAL, 0, 3, 1),    // 3: version 1? else accept
    SockFilter::new(LOAD_BYTE, 0, 0, PAYLOAD + 3), // 4: A = data_offset
    SockFilter::new(JUMP_IF_EQUAL, 1, 0, 0),    // 5: zero? accept : drop
    SockFilter::new(RETURN, 0, 0, 0),           // 6: drop
    SockFilter::new(RETURN, 0, 0, u32::MAX),    // 7: accept whole
];

/// Puts the filter on every UDP socket of this process bound to `port`
/// (the DHT's), and says on how many. Elsewhere than Linux it does nothing.
pub fn drop_padded_probes(port: u16) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        let mut attached = 0;
        for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // Only sockets: their link reads "socket:[inode]".
            match std::fs::read_link(entry.path()) {
                Ok(target) if target.to_string_lossy().starts_with("socket:") => {}
                _ => continue,
            }
            if attach(fd, port)? {
                attached += 1;
            }
        }
        Ok(attached)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        Ok(0)
    }
}

/// Attaches the filter to `fd` if it is a UDP socket bound to `port`.
#[cfg(target_os = "linux")]
fn attach(fd: std::os::fd::RawFd, port: u16) -> io::Result<bool> {
    // SAFETY: the descriptor is only borrowed for the calls below and not
    // kept. If another thread closes it meanwhile, the calls fail with
    // EBADF; if its number is reused at once by another socket, that socket
    // gets the filter only if it is a UDP socket bound to the same port,
    // which only the DHT's is, and the filter drops nothing but padded UDX.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&fd);
    if socket.r#type().ok() != Some(socket2::Type::DGRAM) {
        return Ok(false);
    }
    let bound = socket.local_addr().ok().and_then(|a| a.as_socket());
    if bound.map(|a| a.port()) != Some(port) {
        return Ok(false);
    }
    socket.attach_filter(&PROGRAM)?;
    Ok(true)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    fn udx(data_offset: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0xff, 1, 1, data_offset];
        packet.extend_from_slice(&[0; 16]);
        packet.extend(std::iter::repeat_n(0xaa, data_offset as usize));
        packet.extend_from_slice(payload);
        packet
    }

    #[test]
    fn padded_udx_packets_are_dropped_and_everything_else_arrives_in_order() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let port = receiver.local_addr().unwrap().port();
        assert_eq!(drop_padded_probes(port).unwrap(), 1);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let plain = udx(0, b"data");
        let probe = udx(40, b"data");
        // A DHT message (compact-encoded, first byte the version and type)
        // and a UDX packet of another version pass untouched.
        let rpc = vec![0x13, 0xff, 1, 7];
        let mut other_version = udx(5, b"x");
        other_version[1] = 2;
        for packet in [&probe, &plain, &probe, &rpc, &other_version] {
            sender.send_to(packet, ("127.0.0.1", port)).unwrap();
        }
        let mut buf = [0u8; 2048];
        let mut next = || {
            let (n, _) = receiver.recv_from(&mut buf).unwrap();
            buf[..n].to_vec()
        };
        assert_eq!(next(), plain);
        assert_eq!(next(), rpc);
        assert_eq!(next(), other_version);
    }

    #[test]
    fn sockets_on_other_ports_are_left_alone() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let taken = a.local_addr().unwrap().port();
        // A port nothing of ours is bound to.
        let free = {
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            b.local_addr().unwrap().port()
        };
        assert_ne!(taken, free);
        assert_eq!(drop_padded_probes(free).unwrap(), 0);
    }
}
