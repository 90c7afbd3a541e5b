//! What a fault-injecting ring does wrong, and when (see [`FaultPlan`]).

/// The kind of an operation, as a fault rule names it (each op's row in the op table names
/// its class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpClass {
    /// `nop`.
    Nop,
    /// `read`, `read_at` and what builds on them.
    Read,
    /// `write`, `write_at` and what builds on them.
    Write,
    /// Vectored reads.
    Readv,
    /// Vectored writes.
    Writev,
    /// `fsync`, `fdatasync`.
    Fsync,
    /// `open`.
    Open,
    /// Closing an fd through the ring.
    Close,
    /// `statx`.
    Statx,
    /// A single accept.
    Accept,
    /// `connect`.
    Connect,
    /// `send`.
    Send,
    /// `recv`.
    Recv,
    /// A recv into a provided buffer (buffer-select).
    RecvSelect,
    /// Multishot accept.
    AcceptMulti,
    /// Multishot recv.
    RecvMulti,
    /// Multishot recvmsg.
    RecvMsgMulti,
    /// OP_MSG_RING.
    MsgRing,
    /// OP_MSG_RING with an fd.
    MsgRingFd,
    /// OP_FIXED_FD_INSTALL.
    FixedFdInstall,
    /// Zero-copy send.
    SendZc,
    /// `shutdown`.
    Shutdown,
    /// unlinkat (`remove_file`, `remove_dir`).
    Unlink,
    /// renameat.
    Rename,
    /// mkdirat.
    Mkdir,
    /// symlinkat.
    Symlink,
    /// linkat.
    Link,
    /// fallocate.
    Fallocate,
    /// ftruncate (`set_len`).
    Ftruncate,
    /// posix_fadvise.
    Fadvise,
    /// sync_file_range.
    SyncFileRange,
    /// `sendmsg`.
    SendMsg,
    /// `recvmsg`.
    RecvMsg,
    /// OP_SOCKET.
    Socket,
    /// `bind` (OP_BIND).
    Bind,
    /// `listen` (OP_LISTEN).
    Listen,
    /// splice.
    Splice,
    /// tee.
    Tee,
    /// Readiness (`readable`, `writable`: POLL_ADD).
    Poll,
    /// Timers (`sleep`).
    Timeout,
}

impl OpClass {
    pub(crate) const COUNT: usize = OpClass::Timeout as usize + 1;
}

/// What happens to a matching operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It never reaches the kernel and completes with this errno (e.g. `libc::EINVAL` for a
    /// kernel that claims a feature it cannot run, `libc::ENOMEM`).
    Errno(i32),
    /// The kernel runs it with its length cut to at most this many bytes (at least 1): a short
    /// read, write, send or recv. Kinds without a length run unchanged.
    Short(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    class: OpClass,
    fault: Fault,
    /// The first operation of `class` it applies to (0-based, counted per ring).
    from: u32,
    /// How many operations from there (`u32::MAX`: all).
    times: u32,
}

/// A schedule of faults for one ring (feature `fault-injection`; for tests).
///
/// ```
/// # #[cfg(feature = "fault-injection")] {
/// use safer_ring::fault::{FaultPlan, OpClass};
/// use safer_ring::{Ring, SaferRingConfig};
///
/// // Every write moves at most 3 bytes; write_all still writes everything.
/// let plan = FaultPlan::new().short(OpClass::Write, 3, u32::MAX);
/// let ring = Ring::with_config(SaferRingConfig::default().fault_plan(plan)).unwrap();
/// let (r, w) = ring.pipe().unwrap();
/// ring.block_on(async {
///     let (res, _) = ring.write_all(&w, b"hello world".to_vec()).await;
///     res.unwrap();
///     let (res, got) = ring.read_exact(&r, Vec::with_capacity(11)).await;
///     res.unwrap();
///     assert_eq!(got, b"hello world");
/// });
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    turn_errors: Vec<(i32, u32)>,
    pub(crate) delay: Option<u32>,
    pub(crate) seed: u64,
    pub(crate) cq_capacity: Option<usize>,
    pub(crate) ring_fd_registration: Option<i32>,
}

impl FaultPlan {
    /// A plan that injects nothing.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// The next `times` operations of `class` complete with `errno` without reaching the kernel.
    pub fn fail(self, class: OpClass, errno: i32, times: u32) -> FaultPlan {
        self.rule(class, Fault::Errno(errno), 0, times)
    }

    /// The `nth` operation of `class` (0-based, counted on this ring) completes with `errno`
    /// without reaching the kernel.
    pub fn fail_nth(self, class: OpClass, nth: u32, errno: i32) -> FaultPlan {
        self.rule(class, Fault::Errno(errno), nth, 1)
    }

    /// The next `times` operations of `class` move at most `max` bytes each.
    pub fn short(self, class: OpClass, max: u32, times: u32) -> FaultPlan {
        self.rule(class, Fault::Short(max), 0, times)
    }

    /// `fault` for `times` operations of `class`, starting with the `from`th (0-based). Earlier
    /// rules win where rules overlap.
    pub fn rule(mut self, class: OpClass, fault: Fault, from: u32, times: u32) -> FaultPlan {
        self.rules.push(Rule {
            class,
            fault,
            from,
            times,
        });
        self
    }

    /// The next `times` driver turns fail with `errno` before reaching the kernel (e.g.
    /// `libc::EBUSY` or `libc::EAGAIN` storms). Queued after earlier turn faults.
    pub fn fail_turns(mut self, errno: i32, times: u32) -> FaultPlan {
        if times > 0 {
            self.turn_errors.push((errno, times));
        }
        self
    }

    /// Each completion is held back for 0 to `max_turns` driver turns and released in an order
    /// shuffled with `seed` (an op's own completions keep their order, as in the kernel).
    pub fn delay_and_reorder(mut self, max_turns: u32, seed: u64) -> FaultPlan {
        self.delay = Some(max_turns);
        self.seed = seed;
        self
    }

    /// The completion queue holds `entries` completions: a reap takes at most that many, and
    /// while more wait (the overflow list) a turn fails with EBUSY, as the kernel does with
    /// IORING_FEAT_NODROP when it cannot flush its overflow.
    pub fn cq_capacity(mut self, entries: usize) -> FaultPlan {
        self.cq_capacity = Some(entries.max(1));
        self
    }

    /// Registering the ring fd (Linux 5.18+) fails with `errno`.
    pub fn fail_ring_fd_registration(mut self, errno: i32) -> FaultPlan {
        self.ring_fd_registration = Some(errno);
        self
    }

    /// `Err` names the first value a ring cannot run with.
    pub(crate) fn check(&self) -> Result<(), String> {
        let errnos = self
            .rules
            .iter()
            .filter_map(|r| match r.fault {
                Fault::Errno(e) => Some(e),
                Fault::Short(_) => None,
            })
            .chain(self.turn_errors.iter().map(|t| t.0))
            .chain(self.ring_fd_registration);
        for e in errnos {
            if !(1..4096).contains(&e) {
                return Err(format!("errno {e}: expected 1..4096 (e.g. libc::EINVAL)"));
            }
        }
        Ok(())
    }

    pub(crate) fn op_fault(&self, class: OpClass, nth: u32) -> Option<Fault> {
        self.rules
            .iter()
            .find(|r| r.class == class && nth >= r.from && nth - r.from < r.times)
            .map(|r| r.fault)
    }

    pub(crate) fn take_turn_error(&mut self) -> Option<i32> {
        let (errno, left) = self.turn_errors.first_mut()?;
        let e = *errno;
        *left -= 1;
        if *left == 0 {
            self.turn_errors.remove(0);
        }
        Some(e)
    }
}
