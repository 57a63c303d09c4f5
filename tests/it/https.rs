//! `forge serve --tls-cert --tls-key`: HTTPS served by the forge itself, to stock git and
//! curl trusting a certificate made for the test; the accept loop's limits hold for TLS
//! connections too, and bad certificates or keys stop the start with a clear error.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Forge, Server};

/// A self-signed certificate for 127.0.0.1 and localhost, written as `cert.pem` and
/// `key.pem` in `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// git with the test's certificate authority.
fn git_tls(dir: &Path, ca: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSL_CAINFO", ca)
        .output()
        .expect("git runs")
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl runs")
}

#[test]
fn git_clones_and_pushes_over_https_and_rest_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(tmp.path());
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start_with(
        &forge,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    // The first start's clone hint says https too.
    let log = server.log().join("\n");
    assert!(
        log.contains("forge: try: git clone https://admin:"),
        "{log}"
    );
    forge.ok(&["repo", "create", "alice/app"]);

    // Push a commit over HTTPS, then clone it back.
    let work = tmp.path().join("work");
    common::git(
        tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    common::commit_file(&work, "README", "over TLS\n", "first");
    let url = server.repo_url("alice/app");
    assert!(url.starts_with("https://x:"), "{url}");
    let pushed = git_tls(&work, &cert, &["push", "-q", &url, "main"]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let clone = tmp.path().join("clone");
    let cloned = git_tls(
        tmp.path(),
        &cert,
        &["clone", "-q", &url, clone.to_str().unwrap()],
    );
    assert!(
        cloned.status.success(),
        "{}",
        String::from_utf8_lossy(&cloned.stderr)
    );
    assert_eq!(
        common::git(&clone, &["rev-parse", "HEAD"]),
        common::git(&work, &["rev-parse", "HEAD"])
    );
    assert_eq!(std::fs::read(clone.join("README")).unwrap(), b"over TLS\n");

    // Without the certificate authority, git refuses the server (the TLS is real).
    let untrusted = Command::new("git")
        .args(["ls-remote", &url])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSL_CAINFO", tmp.path().join("nothing.pem"))
        .output()
        .unwrap();
    assert!(!untrusted.status.success());

    // REST over HTTPS with curl.
    let answer = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "-H",
        &format!("Authorization: Bearer {}", server.token),
        &format!("{}/api/v1/user", server.url),
    ]);
    assert!(
        answer.status.success(),
        "{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    let user: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    assert_eq!(user["identity"]["name"], "admin", "{user}");
    let refs = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "-H",
        &format!("Authorization: Bearer {}", server.token),
        &format!("{}/api/v1/repos/alice/app/refs", server.url),
    ]);
    let refs: serde_json::Value = serde_json::from_slice(&refs.stdout).unwrap();
    assert!(
        refs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "refs/heads/main"),
        "{refs}"
    );

    // Plain HTTP to the TLS port is no request: the handshake fails, the server goes on.
    let plain = common::raw_http_result(
        &server.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(!plain.starts_with(b"HTTP/1.1 200"), "{plain:?}");
    let health = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("{}/healthz", server.url),
    ]);
    assert_eq!(health.stdout, b"ok\n");
}

/// A client that opens a connection and never finishes its handshake is closed after the
/// header timeout, and holds no slot meanwhile.
#[test]
fn a_stalled_tls_handshake_is_closed_at_the_header_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(tmp.path());
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start_with(
        &forge,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--header-timeout",
            "1",
            "--max-connections",
            "16",
        ],
    );
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(server.addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    // Half a ClientHello, then nothing.
    silent.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let read = silent.read(&mut byte);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the server answered a stalled handshake: {read:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    // More stalled handshakes than connections fit: idle ones make room, and a real
    // client is still served.
    let stalled: Vec<_> = (0..24)
        .map(|_| std::net::TcpStream::connect(server.addr()).unwrap())
        .collect();
    let health = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("{}/healthz", server.url),
    ]);
    assert_eq!(
        health.stdout,
        b"ok\n",
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    drop(stalled);
}

#[test]
fn bad_certificates_and_keys_stop_the_start_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(tmp.path());
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_key) = self_signed(&other);
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file\n").unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let missing = tmp.path().join("missing.pem");
    let start = |cert: &Path, key: &Path| -> String {
        let out = forge
            .command(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "forge serve started");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    };
    let error = start(&missing, &key);
    assert!(
        error.contains(&format!(
            "error: cannot read the TLS certificate {}: No such file or directory",
            missing.display()
        )),
        "{error}"
    );
    let error = start(&cert, &missing);
    assert!(
        error.contains(&format!("cannot read the TLS key {}", missing.display())),
        "{error}"
    );
    let error = start(&garbage, &key);
    assert!(
        error.contains(&format!(
            "the TLS certificate file {} holds no PEM certificate",
            garbage.display()
        )),
        "{error}"
    );
    let error = start(&cert, &garbage);
    assert!(
        error.contains(&format!(
            "the TLS key file {} holds no PEM private key",
            garbage.display()
        )),
        "{error}"
    );
    let error = start(&cert, &other_key);
    assert!(
        error.contains(&format!(
            "the TLS key {} does not belong to the certificate {}",
            other_key.display(),
            cert.display()
        )),
        "{error}"
    );
    // A key given as the certificate: no certificate in it.
    let error = start(&key, &key);
    assert!(error.contains("holds no PEM certificate"), "{error}");
    // One half of the pair.
    let out = forge
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("--tls-cert is set but --tls-key is not"),
        "{error}"
    );
    let out = forge
        .command(&[
            "--json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["code"], "bad_tls", "{json}");
}
