//! Registry peers for the client tests: Debian's registry:2 (`docker-registry serve`) on a free port with a temp
//! root (optionally htpasswd, TLS or token auth), lade's own registry likewise, a TCP proxy that cuts one connection
//! midway, and a small Bearer token server issuing RS256 JWTs signed by `openssl`. Every process and thread stops when its guard drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Is `docker-registry` (registry:2) installed?
pub fn have_registry() -> Result<(), String> {
    super::have("docker-registry")
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// How a registry authenticates.
pub enum RegistryAuth {
    None,
    /// htpasswd with one user.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Bearer tokens from `realm`, signed by the certificate `cert`.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

/// The token service and issuer names the token tests use.
pub const TOKEN_SERVICE: &str = "lade-test-registry";
pub const TOKEN_ISSUER: &str = "lade-test-issuer";

/// A registry:2 process, killed on drop.
pub struct Registry2 {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry2 {
    /// Starts registry:2; `tls` is (certificate, key) PEM files.
    pub fn start(auth: RegistryAuth, tls: Option<(&Path, &Path)>) -> Registry2 {
        Registry2::start_config(|dir, port| {
            let mut config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: lade-test\n",
                dir.join("data").display()
            );
            if let Some((cert, key)) = tls {
                config += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
            }
            match auth {
                RegistryAuth::None => {}
                RegistryAuth::Htpasswd { user, password } => {
                    let hash = bcrypt::hash(&password, 5).unwrap();
                    let file = dir.join("htpasswd");
                    std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
                    config += &format!(
                        "auth:\n  htpasswd:\n    realm: lade-test\n    path: {}\n",
                        file.display()
                    );
                }
                RegistryAuth::Token { realm, cert } => {
                    config += &format!(
                        "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                        cert.display()
                    );
                }
            }
            config
        })
    }

    /// Starts registry:2 with the `config.yml` that `config(dir, port)` writes: `dir` is the registry's temp
    /// directory (storage goes in `dir/data`), `port` the free port it must listen on.
    pub fn start_config(config: impl FnOnce(&Path, u16) -> String) -> Registry2 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config(dir.path(), port)).unwrap();
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry2 { child, port, dir };
        wait_for_port(port, "registry:2", &log_path);
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file holding a blob's bytes in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lade registry serve` on a free port with a temp root and `extra` flags (`--tls-cert`, `--htpasswd`, …), stopped
/// on drop.
pub struct LadeRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl LadeRegistry {
    pub fn start(extra: &[&std::ffi::OsStr]) -> LadeRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lade"))
            .args(["registry", "serve", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--root")
            .arg(dir.path().join("root"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("lade registry serve starts");
        let registry = LadeRegistry { child, port, dir };
        wait_for_port(port, "lade registry serve", &log_path);
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for LadeRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a [`CuttingProxy`] cuts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (uploads), midway through whatever is being sent.
    Upload,
    /// Client to server, just before the first request that starts with this method after the byte count (so the
    /// server sees none of it).
    UploadBeforeRequest(&'static str),
    /// Server to client (downloads).
    Download,
}

/// A TCP proxy to `127.0.0.1:target` that, once, closes a connection after `after` bytes have gone `direction` on it.
pub struct CuttingProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl CuttingProxy {
    pub fn start(target: u16, direction: Direction, after: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (stop, cut, sockets) = (stop.clone(), cut.clone(), sockets.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let client = match listener.accept() {
                        Ok((client, _)) => client,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    client.set_nonblocking(false).unwrap();
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                        continue;
                    };
                    {
                        let mut open = sockets.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                    }
                    let pump =
                        |from: TcpStream, to: TcpStream, counted: Option<Option<&'static str>>| {
                            let cut = cut.clone();
                            std::thread::spawn(move || {
                                pump(from, to, counted.map(|method| Limit { after, method, cut }))
                            })
                        };
                    let upload = match direction {
                        Direction::Upload => Some(None),
                        Direction::UploadBeforeRequest(method) => Some(Some(method)),
                        Direction::Download => None,
                    };
                    pump(
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        upload,
                    );
                    pump(
                        server,
                        client,
                        (direction == Direction::Download).then_some(None),
                    );
                }
            })
        };
        CuttingProxy {
            port,
            stop,
            cut,
            sockets,
            accept: Some(accept),
        }
    }

    /// Has the proxy cut a connection?
    pub fn did_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// When a pump cuts its connection.
struct Limit {
    after: u64,
    /// Cut at the start of a request with this method instead of at byte `after`.
    method: Option<&'static str>,
    cut: Arc<AtomicBool>,
}

/// Copies `from` to `to`; with `limit`, closes both once at the limit unless a cut already happened.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<Limit>) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut passed: u64 = 0;
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(Limit { after, method, cut }) = &limit {
            let due = match method {
                None => passed + n as u64 > *after,
                Some(method) => {
                    passed > *after && buffer[..n].starts_with(format!("{method} ").as_bytes())
                }
            };
            if due && !cut.load(Ordering::SeqCst) {
                let keep = if method.is_some() {
                    0
                } else {
                    (*after - passed) as usize
                };
                let _ = to.write_all(&buffer[..keep]);
                cut.store(true, Ordering::SeqCst);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        passed += n as u64;
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for socket in self.sockets.lock().unwrap().iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A certificate and its key, made by openssl.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs openssl with `args`.
fn openssl(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// A server certificate for 127.0.0.1 and localhost, signed by a new CA; returns (CA, server).
pub fn ca_signed(dir: &Path) -> Result<(PathBuf, Certificate), String> {
    let ca = self_signed(dir, "test-ca")?;
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    openssl(&[
        &os("req"),
        &os("-newkey"),
        &os("rsa:2048"),
        &os("-nodes"),
        &os("-subj"),
        &os("/CN=127.0.0.1"),
        &os("-keyout"),
        key.as_os_str(),
        &os("-out"),
        csr.as_os_str(),
    ])?;
    openssl(&[
        &os("x509"),
        &os("-req"),
        &os("-in"),
        csr.as_os_str(),
        &os("-CA"),
        ca.cert.as_os_str(),
        &os("-CAkey"),
        ca.key.as_os_str(),
        &os("-CAcreateserial"),
        &os("-days"),
        &os("2"),
        &os("-extfile"),
        ext.as_os_str(),
        &os("-out"),
        cert.as_os_str(),
    ])?;
    Ok((ca.cert, Certificate { cert, key }))
}

/// A self-signed (CA) certificate and key.
pub fn self_signed(dir: &Path, name: &str) -> Result<Certificate, String> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={name}"))
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(Certificate { cert, key })
}

/// A Bearer token server: `GET /token` (anonymous or Basic) and `POST /token` (refresh-token grant). `user` with
/// `password` gets every action asked for and, with `offline_token=true`, a refresh token; anonymous callers get pull.
pub struct TokenServer {
    pub port: u16,
    /// Token requests served.
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub const REFRESH_TOKEN: &str = "lade-test-refresh-token";

impl TokenServer {
    pub fn start(signer: &Certificate, user: &str, password: &str) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            let key = signer.key.clone();
            let cert_der = pem_to_der(&std::fs::read_to_string(&signer.cert).unwrap());
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            let user = user.to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    requests.fetch_add(1, Ordering::SeqCst);
                    serve_token(stream, &key, &cert_der, &user, &expected);
                }
            })
        };
        TokenServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Parses `a=b&c=d` into pairs.
fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn serve_token(stream: TcpStream, key: &Path, cert_der: &[u8], user: &str, expected_basic: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value.trim().to_string()),
                "content-length" => content_length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut params = parse_form(target.split_once('?').map_or("", |(_, q)| q));
    if method == "POST" {
        let mut body = vec![0u8; content_length];
        let _ = reader.read_exact(&mut body);
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let authenticated = match (method.as_str(), authorization.as_deref()) {
        ("POST", _) => {
            param("grant_type").as_deref() == Some("refresh_token")
                && param("refresh_token").as_deref() == Some(REFRESH_TOKEN)
        }
        (_, Some(header)) => header == expected_basic,
        (_, None) => false,
    };
    let anonymous = method == "GET" && authorization.is_none();
    let mut stream = stream;
    if !authenticated && !anonymous {
        let _ = stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut fields = scope.splitn(3, ':');
            let (kind, name, actions) = (fields.next()?, fields.next()?, fields.next()?);
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|a| authenticated || *a == "pull")
                .collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": if authenticated { user } else { "" }, "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let signature = openssl.wait_with_output().unwrap().stdout;
    let token = format!("{signing_input}.{}", b64url(&signature));
    let mut response =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    if authenticated && param("offline_token").as_deref() == Some("true") {
        response["refresh_token"] = REFRESH_TOKEN.into();
    }
    let body = response.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
