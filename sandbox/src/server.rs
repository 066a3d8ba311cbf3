//! Sockets and threads: the accept loops, one thread per connection, faults that act on the
//! connection itself (hang, slow, reset), and an orderly shutdown.
//!
//! Each connection thread is registered with a clone of its socket so that shutting down can
//! unblock any read or write by shutting the socket, and a condition variable releases threads
//! parked by `Hang` or `Slow`. Read and write timeouts plus a whole-request deadline stop a
//! stuck client from pinning a thread, and the number of live connections is capped. Nothing
//! here knows Authy's bodies; that is `api` and `control`.

use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api;
use crate::control;
use crate::http::{Limits, ReadError, Response, read_request, write_response};
use crate::json::J;
use crate::model::Fault;
use crate::otp::OtpParams;
use crate::store::Store;

/// How long one read or write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 256;

/// State shared by the accept loops, the connection threads and the `Sandbox` handle.
pub(crate) struct Shared {
    pub api_key: String,
    pub otp: OtpParams,
    pub normalize: bool,
    pub api_url: String,
    pub control_url: Option<String>,
    pub control_token: String,
    pub ca_pem: String,
    pub tls: Arc<rustls::ServerConfig>,
    store: Mutex<Store>,
    /// A frozen Unix time for TOTP checks (tests), or `None` for the real clock.
    clock: Mutex<Option<u64>>,
    stopping: AtomicBool,
    stop_flag: Mutex<bool>,
    stop_cv: Condvar,
    conns: Mutex<Conns>,
}

#[derive(Default)]
struct Conns {
    next_id: u64,
    live: HashMap<u64, TcpStream>,
    handles: Vec<JoinHandle<()>>,
}

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// HTTPS, the Authy API.
    Api,
    /// Plain HTTP on loopback, the control interface.
    Control,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the whole sandbox down with it; the data
    // behind these locks stays consistent between statements, so recover the guard.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fixed facts of one sandbox run.
pub(crate) struct Settings {
    pub api_key: String,
    pub otp: OtpParams,
    pub normalize: bool,
    pub api_url: String,
    pub control_url: Option<String>,
    pub control_token: String,
    pub ca_pem: String,
}

impl Shared {
    pub(crate) fn new(settings: Settings, store: Store, tls: Arc<rustls::ServerConfig>) -> Shared {
        Shared {
            api_key: settings.api_key,
            otp: settings.otp,
            normalize: settings.normalize,
            api_url: settings.api_url,
            control_url: settings.control_url,
            control_token: settings.control_token,
            ca_pem: settings.ca_pem,
            tls,
            store: Mutex::new(store),
            clock: Mutex::new(None),
            stopping: AtomicBool::new(false),
            stop_flag: Mutex::new(false),
            stop_cv: Condvar::new(),
            conns: Mutex::new(Conns::default()),
        }
    }

    /// The sandbox state.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// The Unix time TOTP codes are generated and checked at.
    pub(crate) fn now(&self) -> u64 {
        (*lock(&self.clock)).unwrap_or_else(crate::clock::now_unix)
    }

    pub(crate) fn clock_override(&self) -> MutexGuard<'_, Option<u64>> {
        lock(&self.clock)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Waits for `d` (forever if `None`); returns true if the sandbox began stopping.
    pub(crate) fn wait(&self, d: Option<Duration>) -> bool {
        // A deadline beyond what Instant can represent is as good as forever.
        let deadline = d.and_then(|d| Instant::now().checked_add(d));
        let mut stopped = lock(&self.stop_flag);
        loop {
            if *stopped {
                return true;
            }
            stopped = match deadline {
                None => self.stop_cv.wait(stopped).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.stop_cv
                        .wait_timeout(stopped, deadline - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Flags the stop and releases every parked connection thread.
    pub(crate) fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        *lock(&self.stop_flag) = true;
        self.stop_cv.notify_all();
    }

    /// Shuts every live connection and joins every connection thread. Call after the accept
    /// loops have been joined, so no new connection can appear.
    pub(crate) fn close_connections(&self) {
        let handles = {
            let mut conns = lock(&self.conns);
            for stream in conns.live.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.handles)
        };
        for h in handles {
            let _ = h.join();
        }
    }

    /// Starts a thread for one accepted connection, or closes it when over capacity.
    fn spawn_connection(self: &Arc<Self>, stream: TcpStream, kind: Kind) {
        let mut conns = lock(&self.conns);
        // Reap finished threads so the handle list stays short in a long-running demo.
        let (done, running): (Vec<_>, Vec<_>) =
            std::mem::take(&mut conns.handles).into_iter().partition(|h| h.is_finished());
        conns.handles = running;
        for h in done {
            let _ = h.join();
        }
        if conns.live.len() >= MAX_CONNECTIONS {
            return; // dropping `stream` closes it
        }
        let Ok(clone) = stream.try_clone() else {
            return;
        };
        let id = conns.next_id;
        conns.next_id += 1;
        conns.live.insert(id, clone);
        let shared = Arc::clone(self);
        let spawned =
            std::thread::Builder::new().name(format!("authy-sandbox-{kind:?}-{id}").to_lowercase()).spawn(move || {
                match kind {
                    Kind::Api => serve_api(&shared, stream),
                    Kind::Control => serve_control(&shared, stream),
                }
                lock(&shared.conns).live.remove(&id);
            });
        match spawned {
            Ok(handle) => conns.handles.push(handle),
            Err(_) => {
                conns.live.remove(&id);
            }
        }
    }
}

/// A running accept loop.
pub(crate) struct ListenerHandle {
    thread: Option<JoinHandle<()>>,
    socket: TcpListener,
    local: SocketAddr,
}

impl ListenerHandle {
    /// Starts accepting on `listener`.
    pub(crate) fn spawn(shared: &Arc<Shared>, listener: TcpListener, kind: Kind) -> io::Result<ListenerHandle> {
        let local = listener.local_addr()?;
        let socket = listener.try_clone()?;
        let shared = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name(format!("authy-sandbox-accept-{kind:?}").to_lowercase())
            .spawn(move || accept_loop(&shared, &listener, kind))?;
        Ok(ListenerHandle { thread: Some(thread), socket, local })
    }

    /// Wakes the accept loop (call `Shared::begin_stop` first) and joins it.
    pub(crate) fn stop(&mut self) {
        // On Linux, shutting a listening socket makes a blocked accept() fail at once. A
        // connection to ourselves is the portable fallback.
        let _ = socket2::SockRef::from(&self.socket).shutdown(Shutdown::Both);
        let mut target = self.local;
        if target.ip().is_unspecified() {
            target.set_ip(match target {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&target, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, kind: Kind) {
    loop {
        let accepted = listener.accept();
        if shared.is_stopping() {
            return;
        }
        match accepted {
            Ok((stream, _)) => shared.spawn_connection(stream, kind),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EMFILE and friends: back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn configure(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
}

/// The answer to a request that could not even be read: an Authy-shaped 60002 error whose
/// `errors` also say what was wrong.
fn protocol_error(e: &ReadError, status: u16) -> Response {
    let message = "Invalid request";
    Response::json(
        status,
        J::obj([
            ("message", J::s(message)),
            ("success", J::Bool(false)),
            ("errors", J::obj([("message", J::s(message)), ("detail", J::s(e.detail()))])),
            ("error_code", J::s("60002")),
        ])
        .to_string(),
    )
}

/// Closes after an error answer without resetting: unread request bytes left in the kernel
/// buffer would turn the close into an RST that can destroy the answer in flight, so stop
/// sending, then drain for a moment.
fn drain_and_close(tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut budget: usize = 1 << 20;
    let mut reader = tcp;
    while budget > 0 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

fn serve_api(shared: &Shared, tcp: TcpStream) {
    configure(&tcp);
    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&shared.tls)) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    loop {
        if shared.is_stopping() {
            return;
        }
        let req = match read_request(&mut tls, &mut buf, Limits::default()) {
            Ok(req) => req,
            Err(e) => {
                if let Some(status) = e.status() {
                    let _ = write_response(&mut tls, &protocol_error(&e, status), false, false);
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    drain_and_close(&tls.sock);
                }
                return;
            }
        };
        let prepared = api::prepare(shared, &req);
        let resp = match &prepared.fault {
            Some(Fault::Hang) => {
                // Keep the socket open and silent until the sandbox goes away.
                shared.wait(None);
                return;
            }
            Some(Fault::Reset) => {
                // SO_LINGER 0 makes close() send RST instead of FIN.
                let _ = socket2::SockRef::from(&tls.sock).set_linger(Some(Duration::ZERO));
                return;
            }
            Some(Fault::Slow(d)) => {
                if shared.wait(Some(*d)) {
                    return;
                }
                api::answer(shared, &prepared)
            }
            Some(other) => api::fault_response_for(&prepared, other).unwrap_or_else(|| api::answer(shared, &prepared)),
            None => api::answer(shared, &prepared),
        };
        let keep_alive = req.keep_alive && !shared.is_stopping();
        if write_response(&mut tls, &resp, keep_alive, prepared.head_only).is_err() {
            return;
        }
        if !keep_alive {
            break;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn serve_control(shared: &Shared, mut tcp: TcpStream) {
    configure(&tcp);
    let mut buf = Vec::new();
    loop {
        if shared.is_stopping() {
            return;
        }
        let req = match read_request(&mut tcp, &mut buf, Limits::default()) {
            Ok(req) => req,
            Err(e) => {
                if let Some(status) = e.status() {
                    let _ = write_response(&mut tcp, &protocol_error(&e, status), false, false);
                    drain_and_close(&tcp);
                }
                return;
            }
        };
        let resp = control::handle(shared, &req);
        let keep_alive = req.keep_alive && !shared.is_stopping();
        if write_response(&mut tcp, &resp, keep_alive, req.method == "HEAD").is_err() || !keep_alive {
            return;
        }
    }
}
