//! REST load: keep-alive connections sending one GET again and again for a while, for the
//! requests per second a running `forge serve` answers and their latency.
//!
//!   cargo run --release --example rest_load -- ADDR PATH TOKEN [CONNECTIONS] [SECONDS] [IF_NONE_MATCH]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: rest_load ADDR PATH TOKEN [CONNECTIONS] [SECONDS] [IF_NONE_MATCH]");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let path = args[2].clone();
    let token = args[3].clone();
    let connections: usize = args.get(4).map_or(8, |c| c.parse().expect("a number"));
    let seconds: f64 = args.get(5).map_or(5.0, |s| s.parse().expect("seconds"));
    let etag = args.get(6).cloned().filter(|e| !e.is_empty());
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n");
    if let Some(etag) = &etag {
        request.push_str(&format!("If-None-Match: {etag}\r\n"));
    }
    request.push_str("\r\n");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut latencies = Vec::new();
                let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
                let mut line = String::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    writer.write_all(request.as_bytes()).unwrap();
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let status: u16 = line[9..12].parse().unwrap();
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    latencies.push(t0.elapsed());
                    *statuses.entry(status).or_default() += 1;
                }
                (latencies, statuses)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for worker in workers {
        let (latencies, counted) = worker.join().unwrap();
        all.extend(latencies);
        for (status, n) in counted {
            *statuses.entry(status).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "requests\t{}\trps\t{:.0}\tp50_us\t{:.0}\tp99_us\t{:.0}\tstatuses\t{statuses:?}\tconnections\t{connections}",
        all.len(),
        all.len() as f64 / elapsed,
        at(0.5),
        at(0.99)
    );
}
