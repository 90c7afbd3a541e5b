//! Many cores: one ring per thread, each with its own `SO_REUSEPORT` listener on the same
//! address (the kernel spreads connections over them), stopped together; and [`Shutdown`], the
//! signal a server's tasks wait on to stop accepting and finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use crate::{Ring, RingRef, SaferRingConfig, TcpListener};

/// A stop signal shared by any number of tasks on any threads: [`Shutdown::wait`] completes
/// once [`Shutdown::trigger`] was called.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let stop = safer_ring::Shutdown::new();
/// let (s, r) = (stop.clone(), ring.clone());
/// let worker = ring.spawn(async move {
///     s.wait().await;
///     r.nop().await // clean up, then end
/// });
/// stop.trigger();
/// ring.block_on(worker)??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Shutdown(Arc<ShutdownInner>);

#[derive(Default)]
struct ShutdownInner {
    stopped: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// A signal not yet triggered.
    ///
    /// # Examples
    /// ```
    /// let stop = safer_ring::Shutdown::new();
    /// assert!(!stop.is_triggered());
    /// ```
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Stops: every `wait` completes (now or when polled).
    ///
    /// # Examples
    /// ```
    /// let stop = safer_ring::Shutdown::new();
    /// let seen_by = stop.clone();
    /// stop.trigger();
    /// assert!(seen_by.is_triggered());
    /// ```
    pub fn trigger(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        let waiters =
            std::mem::take(&mut *self.0.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            w.wake();
        }
    }

    /// Whether `trigger` was called.
    ///
    /// # Examples
    /// ```
    /// let stop = safer_ring::Shutdown::new();
    /// stop.trigger();
    /// assert!(stop.is_triggered());
    /// ```
    pub fn is_triggered(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Completes once the signal is triggered.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let stop = safer_ring::Shutdown::new();
    /// let s = stop.clone();
    /// std::thread::spawn(move || s.trigger());
    /// ring.block_on(stop.wait()); // wakes when another thread triggers it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.is_triggered() {
                return Poll::Ready(());
            }
            let mut w = self.0.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            drop(w);
            // Triggered between the check and the registration: do not miss it.
            if self.is_triggered() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// Runs one ring per thread, each serving its own `SO_REUSEPORT` listener on one address; see
/// [`PerCore::serve`].
///
/// ```
/// use safer_ring::PerCore;
/// let running = PerCore::new(2).serve("127.0.0.1:0".parse()?, |ring, listener, stop| async move {
///     let r = ring.clone();
///     let acceptor = ring.spawn(async move {
///         while let Ok((_conn, _peer)) = r.accept(&listener).await {
///             // serve `_conn` in a task of its own
///         }
///     });
///     stop.wait().await; // then stop accepting; the ring's drop ends what is left
///     acceptor.abort();
/// })?;
/// std::net::TcpStream::connect(running.local_addr())?;
/// running.shutdown();
/// running.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PerCore {
    threads: usize,
    pin: bool,
    config: SaferRingConfig,
}

/// Threads started by [`PerCore::serve`].
///
/// # Examples
/// ```
/// use safer_ring::PerCore;
/// let running = PerCore::new(1).serve("127.0.0.1:0".parse()?, |_ring, _listener, stop| async move {
///     stop.wait().await;
/// })?;
/// println!("serving on {}", running.local_addr());
/// running.shutdown();
/// running.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Running {
    threads: Vec<std::thread::JoinHandle<io::Result<()>>>,
    shutdown: Shutdown,
    addr: SocketAddr,
}

impl PerCore {
    /// `threads` rings on as many threads (0 means one per available CPU).
    ///
    /// # Examples
    /// ```
    /// let per_core = safer_ring::PerCore::new(2); // two threads, two rings
    /// # drop(per_core);
    /// ```
    pub fn new(threads: usize) -> PerCore {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        PerCore {
            threads,
            pin: false,
            config: SaferRingConfig::default(),
        }
    }

    /// Pins thread `i` to CPU `i` (modulo the CPUs available), so a ring's thread stays near its
    /// data. Off by default.
    ///
    /// # Examples
    /// ```
    /// let per_core = safer_ring::PerCore::new(2).pin_threads(true); // thread i on CPU i
    /// # drop(per_core);
    /// ```
    pub fn pin_threads(mut self, on: bool) -> PerCore {
        self.pin = on;
        self
    }

    /// The configuration of every ring.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{PerCore, SaferRingConfig};
    /// let per_core = PerCore::new(2).config(SaferRingConfig::default().entries(256));
    /// # drop(per_core);
    /// ```
    pub fn config(mut self, config: SaferRingConfig) -> PerCore {
        self.config = config;
        self
    }

    /// Binds one `SO_REUSEPORT` listener per thread on `addr` (port 0: the first one's port is
    /// used by all), starts the threads, and runs `serve(ring, listener, shutdown)` on each
    /// ring until it returns. `serve` should return when `shutdown.wait()` completes.
    ///
    /// # Errors
    /// Binding a listener or setting its options failed, or a thread could not set up its ring
    /// (then the others are stopped): nothing is left running.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::PerCore;
    /// let running = PerCore::new(2).serve("127.0.0.1:0".parse()?, |ring, listener, stop| async move {
    ///     let r = ring.clone();
    ///     let acceptor = ring.spawn(async move {
    ///         while let Ok((conn, _)) = r.accept(&listener).await {
    ///             let (_, _) = r.send(&conn, b"hi\n".to_vec()).await;
    ///         }
    ///     });
    ///     stop.wait().await;
    ///     acceptor.abort();
    /// })?;
    /// let mut reply = String::new();
    /// std::io::Read::read_to_string(&mut std::net::TcpStream::connect(running.local_addr())?, &mut reply)?;
    /// assert_eq!(reply, "hi\n");
    /// running.shutdown();
    /// running.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve<F, Fut>(self, addr: SocketAddr, serve: F) -> io::Result<Running>
    where
        F: Fn(RingRef, TcpListener, Shutdown) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let mut listeners = Vec::with_capacity(self.threads);
        let mut addr = addr;
        for _ in 0..self.threads {
            let l = reuse_port_listener(addr)?;
            addr = l.local_addr()?;
            listeners.push(l);
        }
        let shutdown = Shutdown::new();
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let (ready_tx, ready) = std::sync::mpsc::channel::<io::Result<()>>();
        let mut threads = Vec::with_capacity(listeners.len());
        for (i, listener) in listeners.into_iter().enumerate() {
            let (serve, stop, config) = (serve.clone(), shutdown.clone(), self.config.clone());
            let pin = self.pin.then_some(i % cpus);
            let ready = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("safer-ring-{i}"))
                .spawn(move || {
                    let setup = (|| -> io::Result<_> {
                        if let Some(cpu) = pin {
                            crate::kernel::sys::pin_current_thread(cpu)?;
                        }
                        let ring = Ring::with_config(config).map_err(io::Error::from)?;
                        let listener = TcpListener::from(listener);
                        ring.prepare(&listener.fd)?;
                        Ok((ring, listener))
                    })();
                    let (ring, listener) = match setup {
                        Ok(v) => {
                            let _ = ready.send(Ok(()));
                            v
                        }
                        Err(e) => {
                            let copy = io::Error::new(e.kind(), e.to_string());
                            let _ = ready.send(Err(copy));
                            return Err(e);
                        }
                    };
                    ring.block_on(serve(ring.clone(), listener, stop));
                    Ok(())
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    shutdown.trigger();
                    return Err(e);
                }
            }
        }
        drop(ready_tx);
        // Running means every ring is up: a thread whose setup failed stops them all.
        for _ in 0..threads.len() {
            match ready.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    shutdown.trigger();
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
                Err(_) => break, // a thread panicked before reporting: join reports it
            }
        }
        Ok(Running {
            threads,
            shutdown,
            addr,
        })
    }
}

/// A listening socket with SO_REUSEADDR and SO_REUSEPORT, backlog 1024.
fn reuse_port_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

impl Running {
    /// The address every thread listens on.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::PerCore;
    /// let running = PerCore::new(1).serve("127.0.0.1:0".parse()?, |_ring, _listener, stop| async move {
    ///     stop.wait().await;
    /// })?;
    /// assert_ne!(running.local_addr().port(), 0); // the port all threads listen on
    /// running.shutdown();
    /// running.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The signal the threads' `serve` futures wait on.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::PerCore;
    /// let running = PerCore::new(1).serve("127.0.0.1:0".parse()?, |_ring, _listener, stop| async move {
    ///     stop.wait().await;
    /// })?;
    /// let signal = running.shutdown_signal().clone(); // e.g. for a signal handler thread
    /// signal.trigger();
    /// running.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_signal(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Asks every thread to stop (triggers the shared [`Shutdown`]).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::PerCore;
    /// let running = PerCore::new(1).serve("127.0.0.1:0".parse()?, |_ring, _listener, stop| async move {
    ///     stop.wait().await;
    /// })?;
    /// running.shutdown(); // every thread's `stop` completes
    /// running.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Waits for every thread; the first error (a ring that could not be set up, a thread
    /// that panicked) if any.
    ///
    /// # Errors
    /// As above.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::PerCore;
    /// let running = PerCore::new(1).serve("127.0.0.1:0".parse()?, |_ring, _listener, stop| async move {
    ///     stop.wait().await;
    /// })?;
    /// running.shutdown();
    /// running.join()?; // every thread has ended
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> io::Result<()> {
        let mut first = Ok(());
        for t in self.threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a server thread panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
