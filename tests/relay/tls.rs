//! TLS end to end with a test certificate authority: the real relay binary
//! serves https:// and wss://, a producer posts over HTTPS, a websocket
//! client and the real console (in tmux) stream over wss://, and a client
//! that does not trust the CA is refused. Plain transport off loopback is
//! refused unless asked for.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA, and a server certificate it signed for localhost and 127.0.0.1.
fn pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn spawn_tls_relay(db: &str, cert: &str, key: &str) -> (std::process::Child, u16) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("https://"), "{line}");
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    (child, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_and_wss_end_to_end_with_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let cert = write(dir.path(), "relay.pem", &pki.cert_pem);
    let key = write(dir.path(), "relay.key", &pki.key_pem);
    let db = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let (mut relay, port) = spawn_tls_relay(&db, &cert, &key);

    // HTTPS ingest, trusting only the test CA.
    let ca_pem = pki.ca_pem.clone();
    let producer_token = producer.clone();
    let status = tokio::task::spawn_blocking(move || {
        let root = ureq::tls::Certificate::from_pem(ca_pem.as_bytes())
            .unwrap()
            .to_owned();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
                    .build(),
            )
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&format!("https://localhost:{port}/v1/alerts"))
            .header("Authorization", &format!("Bearer {producer_token}"))
            .header("Content-Type", "application/json")
            .send(
                serde_json::to_vec(&alert("tls-1", "S1", "high"))
                    .unwrap()
                    .as_slice(),
            )
            .unwrap()
            .status()
            .as_u16()
    })
    .await
    .unwrap();
    assert_eq!(status, 201);

    // wss:// with the crate's own client config.
    let config = crisisdesk::tls::client_config(Some(Path::new(&ca))).unwrap();
    let mut request = format!("wss://localhost:{port}/v1/stream")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {counselor}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(config)),
    )
    .await
    .expect("wss handshake with the test CA");
    let evs = alert_events(&mut ws, 1).await;
    assert_eq!(evs[0]["alert"]["id"], "tls-1");

    // A client that trusts another CA is refused at the handshake.
    let stranger = write(dir.path(), "other-ca.pem", &pki_other_ca());
    let wrong = crisisdesk::tls::client_config(Some(Path::new(&stranger))).unwrap();
    let mut request = format!("wss://localhost:{port}/v1/stream")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {counselor}").parse().unwrap(),
    );
    let refused = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(wrong)),
    )
    .await;
    assert!(
        refused.is_err(),
        "an untrusted certificate must not be accepted"
    );

    // The real console over wss://, in a real terminal.
    let tmux = Tmux::new();
    let command = format!(
        "{BIN} console --relay wss://localhost:{port} --ca {ca} --lang en; echo CONSOLE-EXIT=$?; sleep 600"
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        "-e",
        &format!("CRISISDESK_TOKEN={counselor}"),
        "-e",
        &format!("XDG_DATA_HOME={}", dir.path().display()),
        "-e",
        &format!("HOME={}", dir.path().display()),
        &command,
    ]);
    let screen = tmux.wait_for("the console over wss", |s| {
        s.contains("● connected") && s.contains("C000001")
    });
    assert!(
        screen.contains("wss://localhost"),
        "the console shows it uses TLS:\n{screen}"
    );
    tmux.run(&["send-keys", "-t", "t", "q"]);
    tmux.wait_for("exit", |s| s.contains("CONSOLE-EXIT=0"));
    relay.kill().unwrap();
    let _ = relay.wait();
}

fn pki_other_ca() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn plain_transport_off_loopback_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let out = Command::new(BIN)
        .args(["relay", "--listen", "0.0.0.0:0", "--db", &db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing plain HTTP"));

    let out = Command::new(BIN)
        .args(["console", "--relay", "ws://10.1.2.3:7710", "--token", "x"])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unencrypted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(BIN)
        .args(["console", "--relay", "wss://relay.example", "--token", "x"])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"));
}
