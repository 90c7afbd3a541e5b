//! The kernel-facing half of sendmsg/recvmsg: one boxed `msghdr` with its iovec, address and
//! control (ancillary) buffer side by side, and SCM_RIGHTS encoding and decoding.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sys::{RawAddr, own_fd};

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

    /// A message sending `len` bytes at `buf` to `to` (or the connected peer), passing `fds`.
    pub(crate) fn for_send(
        buf: *const u8,
        len: u32,
        to: Option<Box<RawAddr>>,
        fds: &[OwnedFd],
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
        let space = if fds.is_empty() {
            0
        } else {
            // SAFETY: CMSG_SPACE only computes a size.
            unsafe { libc::CMSG_SPACE(data_len) as usize }
        };
        let mut m = MsgParts::new(buf.cast_mut(), len, to, space);
        if !fds.is_empty() {
            m.point();
            // SAFETY: `hdr` points at `control`, which has room for CMSG_SPACE(data_len) bytes
            // (so CMSG_FIRSTHDR is non-null); the header and the fd array are written within it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&m.hdr);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(data_len) as _;
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                for (i, fd) in fds.iter().enumerate() {
                    data.add(i).write_unaligned(fd.as_raw_fd());
                }
            }
        }
        Ok(m)
    }

    /// A message receiving up to `len` bytes at `buf`, with room for the sender's address and
    /// for `max_fds` passed fds.
    pub(crate) fn for_recv(buf: *mut u8, len: u32, max_fds: usize) -> io::Result<Box<Self>> {
        let space = if max_fds == 0 {
            0
        } else if max_fds > SCM_MAX_FD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("room for {max_fds} fds asked; the kernel passes at most {SCM_MAX_FD}"),
            ));
        } else {
            // SAFETY: CMSG_SPACE only computes a size.
            unsafe { libc::CMSG_SPACE((max_fds * mem::size_of::<libc::c_int>()) as u32) as usize }
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
