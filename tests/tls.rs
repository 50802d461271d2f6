//! HTTPS served by linkmesh itself: a throwaway CA signs server certificates (rcgen); clients that trust
//! only that CA talk to the real binary; the served leaf is read back from the TLS handshake to see which
//! certificate a new connection gets after the files are replaced.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use support::*;

const SESSION_COOKIE: &str = "linkmesh_session";
const RELOAD_FAILED: &str = "tls reload failed; still serving the previous certificate";
const PLAIN_HTTP_WARNING: &str = "serving plain http on a non-loopback address";

/// A private CA and the server certificates it signs.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// One server certificate: PEM files' contents and the leaf's DER (what the handshake shows).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(rcgen::DnType::CommonName, "linkmesh test ca");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca");
        Pki { ca }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn leaf(&self, serial: u64) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
        params.serial_number = Some(serial.into());
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("linkmesh test leaf {serial}"));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("signed leaf");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }
}

/// The `[tls]` files of one server, replaced the way an operator or certbot would (write, then rename).
struct TlsFiles {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl TlsFiles {
    fn new(pki: &Pki, leaf: &Leaf) -> TlsFiles {
        let dir = tempfile::tempdir().expect("tls dir");
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        };
        std::fs::write(&files.ca, pki.ca_pem()).expect("write ca");
        files.install(&leaf.cert_pem, &leaf.key_pem);
        files
    }

    fn install(&self, cert_pem: &str, key_pem: &str) {
        replace(&self.key, key_pem);
        replace(&self.cert, cert_pem);
    }

    /// The `[tls]` block; `watch_interval` long unless a test is about the watcher, so that only SIGHUP
    /// reloads and the log lines can be counted exactly.
    fn config(&self, watch_interval: &str) -> String {
        format!(
            "{FAST_CONFIG}\n[tls]\ncert = {:?}\nkey = {:?}\nwatch_interval = \"{watch_interval}\"\n",
            self.cert, self.key
        )
    }
}

fn replace(path: &Path, contents: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, contents).expect("write staged file");
    std::fs::rename(&staged, path).expect("rename into place");
}

fn start_tls(files: &TlsFiles, watch_interval: &str) -> Server {
    let mut server = Server::start_with_config(&files.config(watch_interval));
    server.base_url = server.base_url.replacen("http://", "https://", 1);
    server
}

fn trusting_client(pki: &Pki) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem().as_bytes()).expect("ca pem"))
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .build()
        .expect("client")
}

/// The leaf certificate (DER) a brand-new connection is served.
async fn served_leaf(server: &Server, pki: &Pki) -> Vec<u8> {
    let response = trusting_client(pki).get(server.url("/healthz")).send().await.expect("https request");
    assert_eq!(response.status(), 200);
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().expect("tls info");
    info.peer_certificate().expect("peer certificate").to_vec()
}

async fn wait_for_leaf(server: &Server, pki: &Pki, leaf: &Leaf) -> bool {
    wait_until(WAIT_DEADLINE, || async { served_leaf(server, pki).await == leaf.der }).await
}

fn sighup(server: &Server) {
    let status = Command::new("kill").arg("-HUP").arg(server.pid().to_string()).status().expect("kill -HUP");
    assert!(status.success());
}

fn count_in_log(server: &Server, needle: &str) -> usize {
    server.log().matches(needle).count()
}

async fn wait_for_log_count(server: &Server, needle: &str, count: usize) -> bool {
    wait_until(WAIT_DEADLINE, || async { count_in_log(server, needle) >= count }).await
}

/// Signs in as `admin`; returns the session cookie's `Set-Cookie` attributes.
async fn login(client: &reqwest::Client, server: &Server) -> (String, bool) {
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    let cookie = response.cookies().find(|cookie| cookie.name() == SESSION_COOKIE).expect("session cookie");
    (cookie.value().to_owned(), cookie.secure())
}

#[tokio::test]
async fn https_login_sets_a_secure_cookie_and_enrollment_points_at_https() {
    let pki = Pki::new();
    let leaf = pki.leaf(1);
    let files = TlsFiles::new(&pki, &leaf);
    let server = start_tls(&files, "1h");
    assert_eq!(served_leaf(&server, &pki).await, leaf.der);

    let client = trusting_client(&pki);
    let (session, secure) = login(&client, &server).await;
    assert!(secure, "session cookie over https must be Secure");

    let cookie = format!("{SESSION_COOKIE}={session}");
    let created: Value = client
        .post(server.url("/api/v1/collectors"))
        .header("cookie", &cookie)
        .json(&json!({ "name": "edge-tls", "mode": "alloy-remotecfg" }))
        .send()
        .await
        .expect("create collector")
        .json()
        .await
        .expect("json");
    let collector_id = created["id"].as_str().expect("collector id");
    let minted: Value = client
        .post(server.url(&format!("/api/v1/collectors/{collector_id}/token")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let config_alloy = minted["config_alloy"].as_str().expect("config_alloy");
    // No external_url: derived from the request, which came over this server's TLS, even when a
    // forwarding header claims otherwise.
    assert!(config_alloy.contains(&format!("url            = \"{}\"", server.base_url)), "{config_alloy}");
    assert!(server.base_url.starts_with("https://127.0.0.1:"));

    let spoofed: Value = client
        .post(server.url(&format!("/api/v1/collectors/{collector_id}/token")))
        .header("cookie", &cookie)
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    assert!(spoofed["config_alloy"].as_str().expect("config_alloy").contains("url            = \"https://"));

    let plain = server.base_url.replacen("https://", "http://", 1) + "/healthz";
    let answered_plain = match reqwest::get(&plain).await {
        Ok(response) => response.status().is_success(),
        Err(_) => false,
    };
    assert!(!answered_plain, "the tls listener must not serve plain http");
    assert_eq!(count_in_log(&server, PLAIN_HTTP_WARNING), 0);
}

#[tokio::test]
async fn plain_http_behind_an_https_external_url_sets_a_secure_cookie() {
    let server =
        Server::start_with_config(&format!("external_url = \"https://linkmesh.example.com\"\n{FAST_CONFIG}"));
    let (_, secure) = login(&reqwest::Client::new(), &server).await;
    assert!(secure, "an https external_url means browsers use https: the cookie must be Secure");
}

#[tokio::test]
async fn plain_http_without_tls_anywhere_sets_no_secure_flag() {
    let server = Server::start();
    let (_, secure) = login(&reqwest::Client::new(), &server).await;
    assert!(!secure, "a Secure cookie would never be sent back over plain http");
    // Loopback only: no warning about plain http.
    assert_eq!(count_in_log(&server, PLAIN_HTTP_WARNING), 0);
}

#[tokio::test]
async fn sighup_serves_replaced_files_to_new_connections() {
    let pki = Pki::new();
    let first = pki.leaf(1);
    let files = TlsFiles::new(&pki, &first);
    let server = start_tls(&files, "1h");
    assert_eq!(served_leaf(&server, &pki).await, first.der);

    let second = pki.leaf(2);
    files.install(&second.cert_pem, &second.key_pem);
    sighup(&server);
    assert!(wait_for_leaf(&server, &pki, &second).await, "new connections still get the first certificate");
    assert_eq!(count_in_log(&server, "tls certificate reloaded"), 1);
    assert_eq!(count_in_log(&server, RELOAD_FAILED), 0);
    // Still the same process and data: the API answers as before.
    let (_, secure) = login(&trusting_client(&pki), &server).await;
    assert!(secure);
}

#[tokio::test]
async fn a_bad_replacement_keeps_the_previous_certificate() {
    let pki = Pki::new();
    let first = pki.leaf(1);
    let files = TlsFiles::new(&pki, &first);
    let server = start_tls(&files, "1h");

    replace(
        &files.cert,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    sighup(&server);
    assert!(
        wait_for_log_count(&server, RELOAD_FAILED, 1).await,
        "no reload failure logged:\n{}",
        server.log()
    );
    assert_eq!(served_leaf(&server, &pki).await, first.der);

    // A certificate with someone else's key: refused too, and the line says why.
    let second = pki.leaf(2);
    let third = pki.leaf(3);
    files.install(&second.cert_pem, &third.key_pem);
    sighup(&server);
    assert!(
        wait_for_log_count(&server, RELOAD_FAILED, 2).await,
        "no reload failure logged:\n{}",
        server.log()
    );
    assert_eq!(served_leaf(&server, &pki).await, first.der);
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|line| line.contains(RELOAD_FAILED)).collect();
    assert_eq!(lines.len(), 2, "one line per failed reload: {lines:?}");
    assert!(lines[1].contains("does not match the certificate"), "{}", lines[1]);

    // A good pair afterwards is served: a failed reload does not stop later ones.
    files.install(&second.cert_pem, &second.key_pem);
    sighup(&server);
    assert!(wait_for_leaf(&server, &pki, &second).await);
}

#[tokio::test]
async fn changed_files_are_served_without_a_signal() {
    let pki = Pki::new();
    let first = pki.leaf(1);
    let files = TlsFiles::new(&pki, &first);
    let server = start_tls(&files, "100ms");
    assert_eq!(served_leaf(&server, &pki).await, first.der);

    let second = pki.leaf(2);
    files.install(&second.cert_pem, &second.key_pem);
    assert!(wait_for_leaf(&server, &pki, &second).await, "the watcher did not pick up the new files");

    replace(&files.key, "garbage");
    assert!(
        wait_for_log_count(&server, RELOAD_FAILED, 1).await,
        "no reload failure logged:\n{}",
        server.log()
    );
    assert_eq!(served_leaf(&server, &pki).await, second.der);
}

/// One RPC with Alloy's own Connect client; `ca_file` is given to Go's TLS stack the way an operator
/// would give it to Alloy's process (`SSL_CERT_FILE`), or left out.
fn alloy_rpc(server: &Server, token: &str, ca_file: Option<&Path>, args: &[&str]) -> Value {
    let mut command = Command::new(support::go_tool("remotecfgclient", "LINKMESH_REMOTECFGCLIENT"));
    command.args(["-url", &server.base_url, "-token", token]).args(args);
    match ca_file {
        Some(path) => command.env("SSL_CERT_FILE", path),
        // An empty directory and no file: no system CA can vouch for the test certificate by accident.
        None => command.env("SSL_CERT_FILE", "/nonexistent").env("SSL_CERT_DIR", "/nonexistent"),
    };
    let output = command.output().expect("run remotecfgclient");
    assert!(output.status.success(), "remotecfgclient failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    serde_json::from_str(stdout.lines().next().expect("one json line")).expect("json line")
}

#[tokio::test]
async fn alloys_connect_client_polls_over_https() {
    let pki = Pki::new();
    let files = TlsFiles::new(&pki, &pki.leaf(1));
    let server = start_tls(&files, "1h");
    let client = trusting_client(&pki);
    let (session, _) = login(&client, &server).await;
    let cookie = format!("{SESSION_COOKIE}={session}");
    let created: Value = client
        .post(server.url("/api/v1/collectors"))
        .header("cookie", &cookie)
        .json(&json!({ "name": "go-over-tls", "mode": "alloy-remotecfg" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let collector_id = created["id"].as_str().expect("id").to_owned();
    let minted: Value = client
        .post(server.url(&format!("/api/v1/collectors/{collector_id}/token")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let token = minted["token"].as_str().expect("token").to_owned();

    let untrusted = alloy_rpc(&server, &token, None, &["-rpc", "get", "-id", "host-tls"]);
    assert_eq!(untrusted["ok"], false, "{untrusted}");
    assert!(untrusted["message"].as_str().unwrap_or("").contains("certificate"), "{untrusted}");

    let registered = alloy_rpc(&server, &token, Some(&files.ca), &["-rpc", "register", "-id", "host-tls"]);
    assert_eq!(registered["ok"], true, "{registered}");
    let polled = alloy_rpc(&server, &token, Some(&files.ca), &["-rpc", "get", "-id", "host-tls"]);
    assert_eq!(polled["ok"], true, "{polled}");
    assert_eq!(
        polled["content"],
        "// linkmesh: no sources or routes configured for collector \"go-over-tls\"\n"
    );
    let status: Value = client
        .get(server.url(&format!("/api/v1/collectors/{collector_id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get collector")
        .json()
        .await
        .expect("json");
    assert_ne!(status["status"], "awaiting_connection", "{status}");
}

/// Runs `linkmesh serve` with `config` and extra flags until it listens or exits; stops it and returns
/// whether it listened, and its log (stderr).
fn serve_until_listening<S: AsRef<std::ffi::OsStr>>(config: &str, extra_args: &[S]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("linkmesh.toml");
    std::fs::write(&config_path, config).expect("write config");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--rpc-addr", "127.0.0.1:0"])
        .args(extra_args)
        .env("LINKMESH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LINKMESH_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn linkmesh");
    let stdout = child.stdout.take().expect("stdout");
    let listening =
        BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line.starts_with("listening on "));
    child.kill().expect("kill");
    child.wait().expect("wait");
    (listening, std::fs::read_to_string(&log_path).unwrap_or_default())
}

#[test]
fn plain_http_on_a_non_loopback_address_warns_once_at_start() {
    let all_interfaces = ["--http-addr", "0.0.0.0:0"];
    let (listening, log) = serve_until_listening(FAST_CONFIG, &all_interfaces);
    assert!(listening, "{log}");
    assert_eq!(log.matches(PLAIN_HTTP_WARNING).count(), 1, "{log}");

    let pki = Pki::new();
    let files = TlsFiles::new(&pki, &pki.leaf(1));
    let (listening, log) = serve_until_listening(&files.config("1h"), &all_interfaces);
    assert!(listening, "{log}");
    assert_eq!(log.matches(PLAIN_HTTP_WARNING).count(), 0, "{log}");
    assert!(log.contains("serving https"), "{log}");
}

#[test]
fn tls_files_come_from_flags_too_and_a_bad_one_stops_the_start() {
    let pki = Pki::new();
    let files = TlsFiles::new(&pki, &pki.leaf(1));
    let tls_flags = |cert: &Path, key: &Path| -> Vec<std::ffi::OsString> {
        ["--http-addr", "127.0.0.1:0", "--tls-cert"]
            .map(Into::into)
            .into_iter()
            .chain([cert.into(), "--tls-key".into(), key.into()])
            .collect()
    };
    let (listening, log) = serve_until_listening(FAST_CONFIG, &tls_flags(&files.cert, &files.key));
    assert!(listening, "{log}");
    assert!(log.contains("serving https"), "{log}");

    // The CA's certificate with the leaf's key: refused before anything listens, naming both files.
    let (listening, log) = serve_until_listening(FAST_CONFIG, &tls_flags(&files.ca, &files.key));
    assert!(!listening, "{log}");
    assert!(log.contains("does not match the certificate"), "{log}");

    let (listening, log) = serve_until_listening(FAST_CONFIG, &tls_flags(&files.cert, &files.key)[..4]);
    assert!(!listening, "{log}");
    assert!(log.contains("tls.cert and tls.key must be set together"), "{log}");
}
