//! Claim round trips against a running `forge serve`: each connection (keep-alive) claims
//! its own approach of a goal, renews the claim, releases it, again and again for a while;
//! prints round trips per second and each call's latency.
//!
//!   cargo run --release --example claim_load -- ADDR OWNER/NAME GOAL TOKEN APPROACHES SECONDS
//!
//! APPROACHES is a comma-separated list: one connection per approach.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    addr: String,
    token: String,
}

impl Connection {
    fn open(addr: &str, token: &str) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Connection {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
            addr: addr.to_owned(),
            token: token.to_owned(),
        }
    }

    /// POSTs `body` to `path`; the status and the body.
    fn post(&mut self, path: &str, body: &str) -> (u16, String) {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        );
        self.writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line[9..12].parse().unwrap();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn lease_of(body: &str) -> u64 {
    let at = body.find("\"lease\":").expect("a lease") + 8;
    body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        eprintln!("usage: claim_load ADDR OWNER/NAME GOAL TOKEN APPROACHES SECONDS");
        std::process::exit(2);
    }
    let (addr, repo, goal, token) = (&args[1], &args[2], &args[3], &args[4]);
    let approaches: Vec<String> = args[5].split(',').map(str::to_owned).collect();
    let seconds: f64 = args[6].parse().expect("seconds");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers: Vec<_> = approaches
        .iter()
        .map(|approach| {
            let base = format!("/api/v1/repos/{repo}/goals/{goal}/approaches/{approach}");
            let (addr, token) = (addr.clone(), token.clone());
            std::thread::spawn(move || {
                let mut connection = Connection::open(&addr, &token);
                let mut calls: [Vec<Duration>; 3] = Default::default();
                let mut rounds = 0u64;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let (status, body) =
                        connection.post(&format!("{base}/claim"), r#"{"ttl_ms": 60000}"#);
                    assert_eq!(status, 201, "claim: {body}");
                    let lease = lease_of(&body);
                    let t1 = Instant::now();
                    let lease_body = format!(r#"{{"lease": {lease}}}"#);
                    let (status, body) = connection.post(&format!("{base}/heartbeat"), &lease_body);
                    assert_eq!(status, 200, "heartbeat: {body}");
                    let t2 = Instant::now();
                    let (status, body) = connection.post(&format!("{base}/release"), &lease_body);
                    assert_eq!(status, 200, "release: {body}");
                    let t3 = Instant::now();
                    calls[0].push(t1 - t0);
                    calls[1].push(t2 - t1);
                    calls[2].push(t3 - t2);
                    rounds += 1;
                }
                (rounds, calls)
            })
        })
        .collect();
    let mut rounds = 0;
    let mut all: [Vec<Duration>; 3] = Default::default();
    for worker in workers {
        let (n, calls) = worker.join().unwrap();
        rounds += n;
        for (into, from) in all.iter_mut().zip(calls) {
            into.extend(from);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    print!(
        "{} connections: {:.0} round trips/s ({rounds} in {elapsed:.1} s)",
        approaches.len(),
        rounds as f64 / elapsed
    );
    for (name, latencies) in ["claim", "heartbeat", "release"].iter().zip(all.iter_mut()) {
        latencies.sort_unstable();
        print!(
            "; {name} p50 {:.2} ms p99 {:.2} ms",
            percentile(latencies, 0.5).as_secs_f64() * 1e3,
            percentile(latencies, 0.99).as_secs_f64() * 1e3
        );
    }
    println!();
}
