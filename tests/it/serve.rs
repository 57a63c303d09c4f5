//! `forge serve` on an empty data directory initializes it and serves pages.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::Forge;

fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[test]
fn serve_initializes_the_data_directory_and_lists_repositories() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh");
    let forge = Forge::new(&data);
    let mut server = forge
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    assert!(
        data.join("FORMAT").exists(),
        "serve initialized {}",
        data.display()
    );

    // The first start made the admin identity, printed its token once, and a clone URL
    // that works as printed.
    let mut printed = String::new();
    for _ in 0..4 {
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        printed.push_str(&line);
    }
    assert!(
        printed.contains("created the admin identity; its token (shown once, keep it)"),
        "{printed}"
    );
    assert!(
        printed.contains("created the empty repository admin/first"),
        "{printed}"
    );
    let command = printed
        .lines()
        .find_map(|l| l.strip_prefix("forge: try: "))
        .expect("a clone command");
    assert!(command.starts_with("git clone http://admin:"), "{command}");
    let url = command.strip_prefix("git clone ").unwrap();
    let cloned = tmp.path().join("first");
    let out = common::git_output(
        tmp.path(),
        &["clone", url, &cloned.display().to_string()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cloned.join(".git").exists());

    // The page names public repositories only.
    let (head, body) = get(&addr, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("No public repositories yet"), "{body}");
    // Admin commands work while the server runs, and the page shows their result.
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["repo", "config", "alice/app", "public", "true"]);
    let (_, body) = get(&addr, "/");
    assert!(body.contains("<li>alice/app</li>"), "{body}");
    assert!(!body.contains("admin/first"), "{body}");
    let (head, body) = get(&addr, "/healthz");
    assert!(head.starts_with("HTTP/1.1 200") && body == "ok\n");

    server.kill().unwrap();
    server.wait().unwrap();
}
