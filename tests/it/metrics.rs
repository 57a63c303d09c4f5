//! `GET /metrics`: Prometheus' text format, readable with the metrics token or a site
//! admin's token; the counters follow what stock git and REST clients did.

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::{Forge, Server};

const SCRAPER: &str = "a-scrapers-secret";

/// Metric samples by `name{labels}`, after checking that every line of `text` is a
/// `# HELP`, a `# TYPE` or a sample of a metric whose type came before it.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut samples = BTreeMap::new();
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("a HELP line has text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("a TYPE line has a type");
            assert!(valid_name(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "an unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                for pair in labels.split(',') {
                    let (key, quoted) = pair.split_once('=').expect("label=value");
                    assert!(valid_name(key), "{line}");
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(valid_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family) && helped.contains(family),
            "a sample before its HELP and TYPE: {line}"
        );
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "a series twice: {line}"
        );
    }
    samples
}

fn scrape_with(server: &Server, authorization: Option<&str>) -> common::RawAnswer {
    let mut request = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n", server.addr());
    if let Some(authorization) = authorization {
        request.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    common::raw_http(&server.addr(), request.as_bytes())
}

fn scrape(server: &Server) -> BTreeMap<String, f64> {
    let answer = scrape_with(server, Some(&format!("Bearer {SCRAPER}")));
    assert_eq!(answer.status, 200, "{}", answer.text());
    parse(&answer.text())
}

/// Scrapes until `check` holds (counters of a response are added once it has been sent
/// whole, which a client may see a moment before the server does).
fn scrape_until(
    server: &Server,
    what: &str,
    check: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let mut last = BTreeMap::new();
    // Long enough for a closed event stream to be noticed at its next keep-alive (15 s).
    let held = common::wait_for(Duration::from_secs(30), || {
        last = scrape(server);
        let held = check(&last);
        if !held {
            std::thread::sleep(Duration::from_millis(50));
        }
        held
    });
    assert!(held, "{what}: {last:#?}");
    last
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

#[test]
fn metrics_count_requests_pushes_fetches_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start_with(&forge, &["--metrics-token", SCRAPER]);
    forge.ok(&["repo", "create", "alice/app"]);

    // Who may read them.
    let answer = scrape_with(&server, None);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains("the metrics need the metrics token or a site admin's token"),
        "{}",
        answer.text()
    );
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{}",
        answer.head
    );
    let writer = forge.write_token("admin", "alice/app");
    let answer = scrape_with(&server, Some(&format!("Bearer {writer}")));
    assert_eq!(answer.status, 403, "{}", answer.text());
    let answer = scrape_with(&server, Some("Bearer not-the-secret"));
    assert_eq!(answer.status, 401, "{}", answer.text());
    let answer = scrape_with(&server, Some(&server.bearer()));
    assert_eq!(
        answer.status,
        200,
        "a site admin reads them: {}",
        answer.text()
    );
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        answer.head
    );

    let before = scrape(&server);
    for series in [
        "forge_pushes_total",
        "forge_push_received_bytes_total",
        "forge_fetches_total",
        "forge_fetch_sent_bytes_total",
    ] {
        assert_eq!(value(&before, series), 0.0, "{series}");
    }
    assert!(
        !before
            .keys()
            .any(|k| k.starts_with("forge_ref_refusals_total")),
        "{before:#?}"
    );

    // A push, a clone, then a push the gate refuses (a rewrite of the default branch).
    let work = tmp.path().join("work");
    common::git(
        tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    common::commit_file(&work, "a", "one\n", "first");
    common::commit_file(&work, "b", "two\n", "second");
    let url = server.repo_url("alice/app");
    common::git(&work, &["push", "-q", &url, "main"]);
    let clone = tmp.path().join("clone");
    common::git(tmp.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    common::git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    common::commit_file(&work, "c", "three\n", "rewritten");
    let (pushed, stderr) = common::try_git(&work, &["push", "-f", &url, "main"]);
    assert!(!pushed, "the rewrite is refused: {stderr}");

    let after = scrape_until(&server, "the refusal is counted", |m| {
        m.get("forge_ref_refusals_total{via=\"push\",code=\"non_fast_forward\"}") == Some(&1.0)
    });
    assert_eq!(value(&after, "forge_pushes_total"), 2.0);
    assert!(value(&after, "forge_push_received_bytes_total") > 500.0);
    assert_eq!(value(&after, "forge_fetches_total"), 1.0);
    assert!(value(&after, "forge_fetch_sent_bytes_total") > 200.0);
    // The git requests: advertisements, negotiation, packs; 401 challenges before git
    // sends the URL's token.
    let git_ok = value(
        &after,
        "forge_http_requests_total{family=\"git\",status=\"2xx\"}",
    );
    assert!(git_ok >= 5.0, "{after:#?}");
    assert!(
        value(
            &after,
            "forge_http_requests_total{family=\"git\",status=\"4xx\"}"
        ) >= 1.0
    );
    // Scrapes are other requests; the refused ones were 4xx.
    assert!(
        value(
            &after,
            "forge_http_requests_total{family=\"other\",status=\"2xx\"}"
        ) >= 2.0
    );
    assert!(
        value(
            &after,
            "forge_http_requests_total{family=\"other\",status=\"4xx\"}"
        ) >= 3.0
    );
    // The latency histogram: cumulative buckets, +Inf the count.
    let mut previous = 0.0;
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60",
        "300", "+Inf",
    ] {
        let bucket = value(
            &after,
            &format!("forge_http_request_duration_seconds_bucket{{family=\"git\",le=\"{le}\"}}"),
        );
        assert!(bucket >= previous, "le={le}");
        previous = bucket;
    }
    let count = value(
        &after,
        "forge_http_request_duration_seconds_count{family=\"git\"}",
    );
    assert_eq!(previous, count);
    assert!(count >= git_ok);
    assert!(
        value(
            &after,
            "forge_http_request_duration_seconds_sum{family=\"git\"}"
        ) > 0.0
    );
    // What the server holds: this scrape's connection, one open repository, the tokens
    // it verified.
    assert!(value(&after, "forge_connections_open") >= 1.0);
    assert_eq!(value(&after, "forge_open_repositories"), 1.0);
    assert!(value(&after, "forge_verified_tokens_cached") >= 2.0);
    assert_eq!(value(&after, "forge_event_streams_open"), 0.0);

    // A REST ref update the gate refuses (a stale compare-and-swap), counted apart.
    let head = common::git(&clone, &["rev-parse", "HEAD"]);
    let stale = common::git(&clone, &["rev-parse", "HEAD~1"]);
    let answer = common::call(
        &server,
        "POST",
        "/api/v1/repos/alice/app/refs",
        Some(&server.token),
        Some(&format!(
            "{{\"ref\":\"refs/heads/main\",\"old\":\"{}\",\"new\":\"{}\"}}",
            stale.trim(),
            head.trim()
        )),
    );
    assert_eq!(answer.status, 409, "{}", answer.body);
    let after_rest = scrape(&server);
    assert_eq!(
        value(
            &after_rest,
            "forge_ref_refusals_total{via=\"rest\",code=\"ref_changed\"}"
        ),
        1.0
    );
    assert!(
        value(
            &after_rest,
            "forge_http_requests_total{family=\"api\",status=\"4xx\"}"
        ) >= 1.0
    );

    // An open event stream shows.
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "GET /api/v1/repos/alice/app/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        server.token
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    scrape_until(&server, "the stream is counted", |m| {
        m.get("forge_event_streams_open") == Some(&1.0)
    });
    drop(stream);
    scrape_until(&server, "the closed stream is no longer counted", |m| {
        m.get("forge_event_streams_open") == Some(&0.0)
    });
}

#[test]
fn without_a_metrics_token_only_site_admins_read_the_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start(&forge);
    let answer = scrape_with(&server, Some(&format!("Bearer {SCRAPER}")));
    assert_eq!(answer.status, 401, "{}", answer.text());
    let answer = scrape_with(&server, Some(&server.bearer()));
    assert_eq!(answer.status, 200);
    parse(&answer.text());
    // /metrics is no REST route: not in the API document.
    let document = common::call(&server, "GET", "/api/v1/openapi.json", None, None);
    assert!(
        !document.body["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.contains("metrics")),
        "{}",
        document.body["paths"]
    );
}
