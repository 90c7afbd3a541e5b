//! The kernel-facing half of sendmsg/recvmsg: one boxed `msghdr` with its iovec, address and
//! control (ancillary) buffer side by side, and SCM_RIGHTS encoding and decoding.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sockaddr::RawAddr;
use super::sys::own_fd;

/// A message header and everything it points to, boxed so that the pointers stay valid while
/// the operation moves (it is kept in a `Held` by the op, like its buffer).
pub(crate) struct MsgParts {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: RawAddr,
    /// Whether `addr` is sent (send) or asked for (recv).
    named: bool,
    /// cmsg space, `u64`s for the alignment `cmsghdr` needs.
    control: Vec<u64>,
    /// Bytes of `control` in use (send) or offered (recv).
    control_len: usize,
}

impl MsgParts {
    fn new(buf: *mut u8, len: u32, addr: Option<Box<RawAddr>>, control_len: usize) -> Box<Self> {
        let named = addr.is_some();
        let addr = *addr.unwrap_or_else(RawAddr::empty);
        Box::new(MsgParts {
            // SAFETY: msghdr is plain old data; all-zero (null pointers, zero lengths) is valid.
            hdr: unsafe { mem::zeroed() },
            iov: libc::iovec {
                iov_base: buf.cast(),
                iov_len: len as usize,
            },
            addr,
            named,
            control: vec![0; control_len.div_ceil(8)],
            control_len,
        })
    }

    /// A message sending `len` bytes at `buf` to `to` (or the connected peer), passing `fds`,
    /// split by the kernel into datagrams of `segment` bytes (UDP GSO) when given.
    pub(crate) fn for_send(
        buf: *const u8,
        len: u32,
        to: Option<Box<RawAddr>>,
        fds: &[OwnedFd],
        segment: Option<u16>,
    ) -> io::Result<Box<Self>> {
        let bytes = mem::size_of_val(fds);
        let data_len = u32::try_from(bytes)
            .ok()
            .filter(|_| fds.len() <= SCM_MAX_FD)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} fds in one message; the kernel passes at most {SCM_MAX_FD}",
                        fds.len()
                    ),
                )
            })?;
        if let Some(seg) = segment {
            check_segment(seg, len)?;
        }
        let rights = if fds.is_empty() {
            0
        } else {
            // SAFETY: CMSG_SPACE only computes a size.
            unsafe { libc::CMSG_SPACE(data_len) as usize }
        };
        // SAFETY: as above.
        let gso = segment.map_or(0, |_| unsafe { libc::CMSG_SPACE(2) as usize });
        let mut m = MsgParts::new(buf.cast_mut(), len, to, rights + gso);
        if rights + gso > 0 {
            m.point();
        }
        // SAFETY: `hdr` points at `control`, which has room for both cmsgs asked for (so
        // CMSG_FIRSTHDR is non-null and CMSG_NXTHDR after the first finds the second's room:
        // the zeroed area past the first is within `msg_controllen`); each header and its data
        // are written within that room.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&m.hdr);
            if !fds.is_empty() {
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(data_len) as _;
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                for (i, fd) in fds.iter().enumerate() {
                    data.add(i).write_unaligned(fd.as_raw_fd());
                }
                c = libc::CMSG_NXTHDR(&m.hdr, c);
            }
            if let Some(seg) = segment {
                debug_assert!(!c.is_null());
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(2) as _;
                libc::CMSG_DATA(c).cast::<u16>().write_unaligned(seg);
            }
        }
        Ok(m)
    }

    /// A message receiving up to `len` bytes at `buf`, with room for the sender's address, for
    /// `max_fds` passed fds and, with `gro`, for a UDP_GRO segment size.
    pub(crate) fn for_recv(
        buf: *mut u8,
        len: u32,
        max_fds: usize,
        gro: bool,
    ) -> io::Result<Box<Self>> {
        let gro = if gro {
            // SAFETY: CMSG_SPACE only computes a size.
            unsafe { libc::CMSG_SPACE(mem::size_of::<libc::c_int>() as u32) as usize }
        } else {
            0
        };
        let space = gro
            + if max_fds == 0 {
                0
            } else if max_fds > SCM_MAX_FD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("room for {max_fds} fds asked; the kernel passes at most {SCM_MAX_FD}"),
                ));
            } else {
                // SAFETY: CMSG_SPACE only computes a size.
                unsafe {
                    libc::CMSG_SPACE((max_fds * mem::size_of::<libc::c_int>()) as u32) as usize
                }
            };
        Ok(MsgParts::new(buf, len, Some(RawAddr::empty()), space))
    }

    /// Points the header at the parts (they are boxed: the addresses are final).
    fn point(&mut self) {
        self.hdr.msg_iov = &raw mut self.iov;
        self.hdr.msg_iovlen = 1;
        if self.named {
            self.hdr.msg_name = self.addr.sockaddr_mut_ptr().cast();
            self.hdr.msg_namelen = self.addr.len;
        }
        if self.control_len > 0 {
            self.hdr.msg_control = self.control.as_mut_ptr().cast();
            self.hdr.msg_controllen = self.control_len as _;
        }
    }

    /// The header for the kernel; valid as long as `self` is.
    pub(crate) fn hdr_ptr(&mut self) -> *mut libc::msghdr {
        self.point();
        &raw mut self.hdr
    }

    /// After a completed recvmsg: the flags the kernel returned (MSG_TRUNC, MSG_CTRUNC).
    pub(crate) fn flags(&self) -> i32 {
        self.hdr.msg_flags
    }

    /// After a completed recvmsg: the sender's address as the kernel wrote it.
    pub(crate) fn addr(&mut self) -> &RawAddr {
        self.addr.len = self.hdr.msg_namelen;
        &self.addr
    }

    /// After a completed recvmsg (before [`take_fds`](Self::take_fds)): the segment size of a
    /// UDP_GRO cmsg, if the kernel coalesced datagrams and said so.
    pub(crate) fn gro_segment(&self) -> Option<u16> {
        if self.hdr.msg_control.is_null() {
            return None;
        }
        let mut found = None;
        // SAFETY: as in `take_fds`: the cmsgs lie within the `msg_controllen` bytes the kernel
        // wrote; a UDP_GRO payload is one int, read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&self.hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_UDP
                    && (*c).cmsg_type == UDP_GRO
                    && (*c).cmsg_len as usize >= libc::CMSG_LEN(4) as usize
                {
                    let v = libc::CMSG_DATA(c).cast::<libc::c_int>().read_unaligned();
                    found = u16::try_from(v).ok();
                }
                c = libc::CMSG_NXTHDR(&self.hdr, c);
            }
        }
        found
    }

    /// After a completed recvmsg: the fds passed with SCM_RIGHTS, owned. Call once per
    /// completion (the control area is cleared so a second call finds none).
    pub(crate) fn take_fds(&mut self) -> Vec<OwnedFd> {
        let mut fds = Vec::new();
        if self.hdr.msg_control.is_null() {
            return fds;
        }
        // SAFETY: the kernel wrote `msg_controllen` (<= what we offered) bytes of cmsgs into
        // `control`; CMSG_FIRSTHDR/NXTHDR stay within that length, and each SCM_RIGHTS payload
        // holds (cmsg_len - CMSG_LEN(0)) / sizeof(int) fds the kernel installed in this process
        // for us alone, read once here (the length is zeroed below).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&self.hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                    for i in 0..payload / mem::size_of::<libc::c_int>() {
                        fds.push(own_fd(data.add(i).read_unaligned()));
                    }
                }
                c = libc::CMSG_NXTHDR(&self.hdr, c);
            }
        }
        self.hdr.msg_controllen = 0;
        fds
    }
}

/// SCM_MAX_FD: the most fds one SCM_RIGHTS message carries.
pub(crate) const SCM_MAX_FD: usize = 253;

/// UDP_SEGMENT (linux/udp.h): the GSO segment size of one sendmsg, a u16 cmsg.
const UDP_SEGMENT: libc::c_int = 103;
/// UDP_GRO (linux/udp.h): the socket option, and the cmsg carrying the segment size.
const UDP_GRO: libc::c_int = 104;
/// The most one UDP GSO send may carry (the IP datagram length limit).
pub(crate) const GSO_MAX_BYTES: u32 = 65_507;

/// Refuses a UDP GSO send the kernel would refuse, or that would not be split.
fn check_segment(seg: u16, len: u32) -> io::Result<()> {
    let bad = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    if seg == 0 {
        return bad("UDP segment size 0; expected 1..=the buffer's length".into());
    }
    if u32::from(seg) > len {
        return bad(format!(
            "UDP segment size {seg} is larger than the {len}-byte buffer; expected at most {len}"
        ));
    }
    if len > GSO_MAX_BYTES {
        return bad(format!(
            "{len} bytes in one UDP GSO send; the kernel takes at most {GSO_MAX_BYTES} (64 KiB \
             less the IP and UDP headers)"
        ));
    }
    Ok(())
}

/// Turns UDP_GRO on or off on socket `fd`.
pub(crate) fn set_udp_gro(fd: std::os::fd::RawFd, on: bool) -> io::Result<()> {
    let v = libc::c_int::from(on);
    // SAFETY: `v` is an int living across the call; the kernel reads `size_of::<c_int>()`
    // bytes of it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            UDP_GRO,
            (&raw const v).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether UDP_GRO is on for socket `fd`.
pub(crate) fn udp_gro(fd: std::os::fd::RawFd) -> io::Result<bool> {
    let mut v: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` live across the call; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            UDP_GRO,
            (&raw mut v).cast(),
            &raw mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v != 0)
}

/// The header a multishot recvmsg names. The kernel reads only its name and control lengths
/// (each datagram's address lands in the provided buffer, ahead of the payload), but it is
/// boxed and kept by the op's slot until the final completion, as any memory an SQE names.
pub(crate) struct MultiHdr {
    hdr: libc::msghdr,
    name: libc::sockaddr_storage,
}

/// Room for the sender's address at the head of each multishot recvmsg buffer.
const NAME_ROOM: u32 = mem::size_of::<libc::sockaddr_storage>() as u32;

/// Bytes at the head of each multishot recvmsg buffer before the payload: the kernel's
/// `io_uring_recvmsg_out` (4 u32s) and the address room (no control data is asked for).
pub(crate) const MULTI_HEAD: u32 = 16 + NAME_ROOM;

impl MultiHdr {
    pub(crate) fn new() -> Box<MultiHdr> {
        // SAFETY: msghdr and sockaddr_storage are plain old data; all-zero is valid.
        let mut m: Box<MultiHdr> = Box::new(unsafe { mem::zeroed() });
        // The kernel counts the name room only when `msg_name` is non-null.
        m.hdr.msg_name = (&raw mut m.name).cast();
        m.hdr.msg_namelen = NAME_ROOM;
        m
    }

    /// The header for the kernel; valid as long as `self` is.
    pub(crate) fn ptr(&self) -> *const libc::msghdr {
        &raw const self.hdr
    }
}

/// One datagram as a multishot recvmsg wrote it into a provided buffer.
pub(crate) struct MultiDatagram<'a> {
    pub(crate) addr: RawAddr,
    pub(crate) payload: &'a [u8],
    /// The datagram was longer than the buffer's payload room (MSG_TRUNC).
    pub(crate) truncated: bool,
}

/// Parses the `res` bytes a multishot recvmsg completion reports in its buffer.
pub(crate) fn parse_multi(buf: &[u8]) -> io::Result<MultiDatagram<'_>> {
    // SAFETY: all-zero is a valid msghdr; only its lengths are read by the parser.
    let mut shape: libc::msghdr = unsafe { mem::zeroed() };
    shape.msg_namelen = NAME_ROOM;
    let out = io_uring::types::RecvMsgOut::parse(buf, &shape).map_err(|()| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "multishot recvmsg wrote {} bytes, fewer than its {MULTI_HEAD}-byte header",
                buf.len()
            ),
        )
    })?;
    let name = out.name_data();
    let mut addr = RawAddr {
        // SAFETY: all-zero is a valid sockaddr_storage.
        storage: unsafe { mem::zeroed() },
        len: name.len() as libc::socklen_t,
    };
    // SAFETY: `name` holds at most NAME_ROOM = size_of::<sockaddr_storage>() bytes (the parser
    // clamps it to the room asked for), copied into the storage's bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            (&raw mut addr.storage).cast::<u8>(),
            name.len(),
        );
    }
    let copied = out.payload_data().len();
    let truncated = out.is_payload_truncated() || out.incoming_payload_len() as usize > copied;
    Ok(MultiDatagram {
        addr,
        // Where the parser found it: after the header and the address room.
        payload: &buf[MULTI_HEAD as usize..][..copied],
        truncated,
    })
}
