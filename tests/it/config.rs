//! `forge serve --config FILE` (or `FORGE_CONFIG`): settings from a TOML file, beaten by
//! environment variables, beaten by flags; unknown keys and wrong types name the key and
//! the file.

use crate::common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `forge serve`, stopped when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `forge serve` with `args` and `env` and no inherited FORGE_* settings; returns the
/// process and the log line that names the address and the limits.
fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Serving, String) {
    let mut command = Command::new(common::forge_bin());
    command
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("FORGE_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let mut serving = Serving(command.spawn().unwrap());
    let mut stderr = std::io::BufReader::new(serving.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("forge serve exited: {seen:?}");
        }
        if line.contains("serving on") && line.contains("fetches") {
            // Keep draining so the server never blocks on its log.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {
                    sink.clear();
                }
            });
            return (serving, line);
        }
        seen.push(line);
    }
}

fn stop(serving: Serving) {
    drop(serving);
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn flags_beat_the_environment_which_beats_the_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = tmp.path().join("forge.toml");
    std::fs::write(
        &config,
        format!(
            "# a forge\nlisten = \"127.0.0.1:{port}\"\ndata = \"state\"\nmax-fetches = 7\nmax-pushes = 5\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // The file alone: its address, limits and data directory (relative to the file).
    let elsewhere = tmp.path().join("cwd");
    std::fs::create_dir(&elsewhere).unwrap();
    let (child, line) = serve(&elsewhere, &["--config", config], &[]);
    assert!(
        line.contains(&format!("serving on http://127.0.0.1:{port}/")),
        "{line}"
    );
    assert!(line.contains("7 fetches, 5 pushes"), "{line}");
    let answer = common::raw_http(
        &format!("127.0.0.1:{port}"),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.text(), "ok\n");
    assert!(tmp.path().join("state/FORMAT").exists());
    stop(child);

    // FORGE_CONFIG names the file too; an environment variable beats it.
    let (child, line) = serve(
        &elsewhere,
        &["--listen", "127.0.0.1:0"],
        &[("FORGE_CONFIG", config), ("FORGE_MAX_FETCHES", "9")],
    );
    assert!(line.contains("9 fetches, 5 pushes"), "{line}");
    stop(child);

    // A flag beats both.
    let (child, line) = serve(
        &elsewhere,
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--max-fetches",
            "11",
        ],
        &[("FORGE_MAX_FETCHES", "9"), ("FORGE_MAX_PUSHES", "3")],
    );
    assert!(line.contains("11 fetches, 3 pushes"), "{line}");
    assert!(!line.contains(&format!(":{port}/")), "{line}");
    stop(child);

    // --data beats the file's data directory.
    let (child, _) = serve(
        &elsewhere,
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--data",
            "here",
        ],
        &[],
    );
    assert!(elsewhere.join("here/FORMAT").exists());
    stop(child);
}

#[test]
fn a_config_file_sets_tls_and_the_log_format() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = crate::https::self_signed(tmp.path());
    let config = tmp.path().join("forge.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ntls-cert = \"cert.pem\"\ntls-key = {key:?}\nlog-format = \"json\"\ntrusted-proxies = [\"127.0.0.1\", \"::1\"]\n",
            key = key.to_str().unwrap()
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (child, line) = serve(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        &[],
    );
    // A JSON line, announcing https.
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    let message = json["message"].as_str().unwrap();
    assert!(
        message.starts_with("serving on https://127.0.0.1:"),
        "{message}"
    );
    let addr = message
        .trim_start_matches("serving on https://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            cert.to_str().unwrap(),
        ])
        .arg(format!("https://{addr}/healthz"))
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        b"ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop(child);
}

/// `forge serve` that must fail before serving: its error.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(common::forge_bin())
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("FORGE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "forge serve {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn mistakes_in_the_config_file_name_the_key_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("forge.toml");
    let path = config.to_str().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let with = |text: &str| {
        std::fs::write(&config, text).unwrap();
        fails(tmp.path(), &["--config", path, "--data", data])
    };
    assert_eq!(
        with("listen = \"127.0.0.1:0\"\nmax-conections = 5\n").trim_end(),
        format!(
            "error: the config file {path} has an unknown key `max-conections` (did you mean `max-connections`?); its keys are the long flags of forge serve (docs/configuration.md)"
        )
    );
    assert_eq!(
        with("max-connections = \"many\"\n").trim_end(),
        format!(
            "error: the config file {path}: `max-connections` must be a whole number, 0 or more, not the string \"many\""
        )
    );
    let error = with("listen = 8080\n");
    assert!(
        error.contains(&format!(
            "the config file {path}: `listen` must be an address and port such as \"127.0.0.1:8080\", not the integer 8080"
        )),
        "{error}"
    );
    let error = with("trusted-proxies = [\"10.0.0.0/99\"]\n");
    assert!(
        error.contains(&format!("the config file {path}: `trusted-proxies`: \"10.0.0.0/99\" is not an address or CIDR block")),
        "{error}"
    );
    let error = with("max-fetches = 3\n[server]\nlisten = 1\n");
    assert!(error.contains("unknown key `server`"), "{error}");
    let error = with("max-fetches = \n");
    assert!(
        error.contains(&format!("the config file {path} is not valid TOML")),
        "{error}"
    );
    let error = with("tls-cert = \"cert.pem\"\n");
    assert!(
        error.contains("--tls-cert is set but --tls-key is not"),
        "{error}"
    );
    let missing = tmp.path().join("nope.toml");
    let error = fails(tmp.path(), &["--config", missing.to_str().unwrap()]);
    assert!(
        error.contains(&format!(
            "cannot read the config file {}: No such file or directory",
            missing.display()
        )),
        "{error}"
    );
    // Nothing was started or created for any of them.
    assert!(!tmp.path().join("data").exists());
}
