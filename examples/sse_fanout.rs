//! SSE fan-out: SUBSCRIBERS event streams of one repository open on a running `forge
//! serve`, then UPDATES ref updates over REST, one every 50 ms; for every (subscriber,
//! event) the time from the update's request to the event's arrival.
//!
//!   cargo run --release --example sse_fanout -- ADDR OWNER/NAME COMMIT_SHA1 WRITE_TOKEN READ_TOKENS_FILE [SUBSCRIBERS] [UPDATES]
//!
//! READ_TOKENS_FILE holds one token per line; subscribers take them in turn (the server
//! allows 16 open streams per identity).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!(
            "usage: sse_fanout ADDR OWNER/NAME COMMIT_SHA1 WRITE_TOKEN READ_TOKENS_FILE [SUBSCRIBERS] [UPDATES]"
        );
        std::process::exit(2);
    }
    let (addr, repo, commit, write_token) = (&args[1], &args[2], &args[3], &args[4]);
    let tokens: Vec<String> = std::fs::read_to_string(&args[5])
        .expect("the tokens file")
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    let subscribers: usize = args.get(6).map_or(100, |n| n.parse().unwrap());
    let updates: usize = args.get(7).map_or(50, |n| n.parse().unwrap());
    let base = Instant::now();
    let arrivals: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
    let mut readers = Vec::new();
    for i in 0..subscribers {
        let token = &tokens[i % tokens.len()];
        let mut tcp = TcpStream::connect(addr).unwrap();
        write!(
            tcp,
            "GET /api/v1/repos/{repo}/events/stream HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(tcp);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "subscriber {i}: {line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        let arrivals = arrivals.clone();
        readers.push(std::thread::spawn(move || {
            let mut seen = 0;
            let mut line = String::new();
            while seen < updates {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                if let Some(data) = line
                    .strip_prefix("data: ")
                    .or_else(|| line.strip_prefix("data:"))
                {
                    let at = base.elapsed();
                    let event: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                    if let Some(name) = event["data"]["ref"].as_str() {
                        arrivals.lock().unwrap().push((name.to_owned(), at));
                        seen += 1;
                    }
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut sent: HashMap<String, (Duration, Duration)> = HashMap::new();
    for i in 0..updates {
        let name = format!("refs/heads/fanout-{i}-{}", std::process::id());
        let body = format!(r#"{{"ref": "{name}", "new": "{commit}"}}"#);
        let t0 = base.elapsed();
        let mut tcp = TcpStream::connect(addr).unwrap();
        write!(
            tcp,
            "POST /api/v1/repos/{repo}/refs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {write_token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        sent.insert(name, (t0, base.elapsed()));
        std::thread::sleep(Duration::from_millis(50));
    }
    for reader in readers {
        reader.join().unwrap();
    }
    let arrivals = arrivals.lock().unwrap();
    let mut from_request: Vec<f64> = Vec::new();
    let mut writes: Vec<f64> = sent
        .values()
        .map(|(a, b)| (*b - *a).as_secs_f64() * 1e3)
        .collect();
    for (name, at) in arrivals.iter() {
        if let Some((t0, _)) = sent.get(name) {
            from_request.push((at.as_secs_f64() - t0.as_secs_f64()) * 1e3);
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        (v.len(), at(0.5), at(0.99), v[v.len() - 1])
    };
    let (n, p50, p99, max) = stats(&mut from_request);
    let (_, w50, w99, _) = stats(&mut writes);
    println!(
        "subscribers\t{subscribers}\tupdates\t{updates}\tdeliveries\t{n}\texpected\t{}\tp50_ms\t{p50:.1}\tp99_ms\t{p99:.1}\tmax_ms\t{max:.1}\twrite_p50_ms\t{w50:.1}\twrite_p99_ms\t{w99:.1}",
        subscribers * updates
    );
}
