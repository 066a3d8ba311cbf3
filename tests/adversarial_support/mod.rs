//! Support shared by the adversarial suites (tests/adversarial_*.rs): a raw TLS server that
//! answers any bytes we choose (invalid UTF-8, redirects, bodies the sandbox cannot express),
//! a plain TCP listener that only counts who connects (a proxy or an http:// redirect target
//! that must never be reached), and the re-execution of the test binary as a child process
//! for checks that need their own environment, user or mount namespace (from a copy that
//! other users can reach, when the child drops to one of them).
#![allow(dead_code)]

use authy_sandbox::tls::{TestCa, Validity};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fs::Permissions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Set in a child process started by `run_child`: names the role the child plays.
pub const CHILD_ROLE: &str = "PAM_AUTHY_ADVERSARIAL_CHILD";

/// The role this process was started for, if it is a child of `run_child`.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// Runs the test `test` of this very binary in a child process with `role` and `env` set
/// (nothing else of the parent's environment is removed). Returns its output.
pub fn run_child(test: &str, role: &str, env: &[(&str, String)]) -> Output {
    child_command(test, role, env).output().expect("run the child test")
}

/// A child's answer to its parent: the PAM code on a line of its own, whatever the test
/// harness printed before it.
pub fn print_child_result(code: i32) {
    println!("\nCHILD-RESULT {code}");
}

/// The PAM code a child printed with `print_child_result`; without one, fails with the
/// child's whole output (`text`, from `output_text`).
pub fn child_result(text: &str) -> i32 {
    text.lines()
        .find_map(|line| line.split_once("CHILD-RESULT ").map(|(_, code)| code))
        .and_then(|code| code.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child printed no result: {text}"))
}

/// The command `run_child` runs, for callers that wrap it (unshare, setpriv).
pub fn child_command(test: &str, role: &str, env: &[(&str, String)]) -> Command {
    command_of(&std::env::current_exe().expect("current_exe"), test, role, env)
}

/// The arguments that make a test binary run `test` alone, its output shown.
pub fn one_test_args(test: &str) -> [&str; 4] {
    ["--exact", test, "--nocapture", "--test-threads=1"]
}

fn command_of(exe: &Path, test: &str, role: &str, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(exe);
    command.args(one_test_args(test)).env(CHILD_ROLE, role);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// A copy of this test binary, and of the files a child needs, in a new directory that every
/// user can enter, for a child that runs as another user: the originals may sit under a
/// directory only root can enter (a clone in root's 0700 home). Removed on drop.
pub struct ReachableCopies {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl ReachableCopies {
    pub fn new() -> ReachableCopies {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod");
        for ancestor in dir.path().ancestors().skip(1) {
            let mode = std::fs::metadata(ancestor).expect("stat").permissions().mode();
            assert!(
                mode & 0o001 != 0,
                "{} (mode {mode:o}) keeps other users out of the temporary directory: point TMPDIR elsewhere",
                ancestor.display()
            );
        }
        let original = std::env::current_exe().expect("current_exe");
        let exe = dir.path().join(original.file_name().expect("binary name"));
        std::fs::copy(&original, &exe).expect("copy the test binary");
        ReachableCopies { dir, exe }
    }

    /// A copy of `file` (its mode kept) beside the copy of the binary.
    pub fn copy(&self, file: &Path) -> PathBuf {
        let copy = self.dir.path().join(file.file_name().expect("file name"));
        std::fs::copy(file, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
        copy
    }

    /// `child_command` for the copy of the binary, run from the copies' directory.
    pub fn child_command(&self, test: &str, role: &str, env: &[(&str, String)]) -> Command {
        let mut command = command_of(&self.exe, test, role, env);
        command.current_dir(self.dir.path());
        command
    }
}

/// Both output streams of a child, for assertion messages.
pub fn output_text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Stops an accept loop and joins its thread on drop.
struct Stopper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    mut serve: impl FnMut(TcpStream) + Send + 'static,
) -> JoinHandle<()> {
    listener.set_nonblocking(true).expect("nonblocking listener");
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    serve(stream);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// A TCP listener on loopback that accepts and counts connections and answers nothing.
pub struct Tripwire {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    _stopper: Stopper,
}

impl Tripwire {
    pub fn start() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tripwire");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let counter = connections.clone();
        let thread = accept_loop(listener, stop.clone(), move |stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        });
        Tripwire { addr, connections, _stopper: Stopper { stop, thread: Some(thread) } }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// How a `RawServer` treats each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads the request head and writes the response at once.
    Answer,
    /// Writes the response head at once, then the body one byte per interval.
    Trickle { head_len: usize, interval: Duration },
    /// Completes the TLS handshake, then resets the connection (RST, SO_LINGER 0).
    ResetAfterHandshake,
    /// Reads the request head, then resets the connection.
    ResetAfterRequest,
}

/// An HTTPS server on loopback that answers every request with the same raw bytes (status
/// line, headers and body exactly as given) and records each request line.
pub struct RawServer {
    pub addr: SocketAddr,
    ca_pem: String,
    requests: Arc<Mutex<Vec<String>>>,
    _stopper: Stopper,
}

impl RawServer {
    pub fn start(response: Vec<u8>) -> RawServer {
        RawServer::start_with(response, Behaviour::Answer)
    }

    pub fn start_with(response: Vec<u8>, behaviour: Behaviour) -> RawServer {
        let ca = TestCa::generate("adversarial raw server CA").expect("CA");
        let leaf = ca.issue(&["localhost", "127.0.0.1"], Validity::Current).expect("leaf");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes()).collect::<Result<_, _>>().expect("cert pem");
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key pem");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw server");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = requests.clone();
        let thread = accept_loop(listener, stop.clone(), move |stream| {
            let Ok(connection) = rustls::ServerConnection::new(config.clone()) else { return };
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let reset = |tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>| {
                let _ = socket2::SockRef::from(&tls.sock).set_linger(Some(Duration::ZERO));
            };
            if behaviour == Behaviour::ResetAfterHandshake {
                while tls.conn.is_handshaking() {
                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                        return;
                    }
                }
                return reset(tls);
            }
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
            seen.lock().expect("requests").push(line);
            match behaviour {
                Behaviour::ResetAfterRequest => return reset(tls),
                Behaviour::Trickle { head_len, interval } => {
                    let _ = tls.write_all(&response[..head_len]);
                    let _ = tls.flush();
                    for byte in &response[head_len..] {
                        std::thread::sleep(interval);
                        if tls.write_all(std::slice::from_ref(byte)).and_then(|()| tls.flush()).is_err() {
                            return;
                        }
                    }
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    return;
                }
                Behaviour::Answer | Behaviour::ResetAfterHandshake => {}
            }
            let _ = tls.write_all(&response);
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        RawServer { addr, ca_pem: ca.cert_pem().to_owned(), requests, _stopper: Stopper { stop, thread: Some(thread) } }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The request lines received so far (`GET /path HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }
}

/// A whole HTTP/1.1 response with a Content-Length, `Connection: close`, and `body` as is.
pub fn http_response(status_line: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut response = format!("HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for header in headers {
        response.push_str(header);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
