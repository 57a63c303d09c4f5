//! `forge watch`: events as they happen, from a server's live stream (`--server`) or from
//! a data directory's log, one line each (text, or `--json`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::user_error;
use crate::store::DataDir;
use crate::store::events::{Event, EventFilter, EventKind, parse_types};

/// How often a watch of a data directory reads its log.
const POLL: Duration = Duration::from_millis(200);

#[derive(Args)]
pub(super) struct Watch {
    /// Only this repository's events (OWNER/NAME).
    #[arg(long)]
    repo: Option<String>,
    /// Only events of these types (comma-separated: ref.updated,ref.refused …).
    #[arg(long = "type")]
    types: Option<String>,
    /// Start after this sequence number (default: from now on).
    #[arg(long)]
    after: Option<u64>,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// A forge's URL (http://HOST[:PORT]) to watch over its event stream, instead of the
    /// data directory.
    #[arg(long, requires = "token")]
    server: Option<String>,
    /// The token for `--server`.
    #[arg(long, env = "FORGE_TOKEN")]
    token: Option<String>,
}

pub(super) fn command(data_path: &Path, watch: Watch, json: bool) -> anyhow::Result<()> {
    let types = match watch.types.as_deref() {
        Some(list) => parse_types(list).map_err(|e| user_error("invalid_argument", e))?,
        None => Vec::new(),
    };
    let mut left = watch.count;
    let mut print = |event: &Event| -> bool {
        let line = if json {
            serde_json::to_string(event).expect("serialisable")
        } else {
            describe(event)
        };
        let mut out = std::io::stdout().lock();
        // A closed pipe ends the watch.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return false;
        }
        match &mut left {
            Some(n) => {
                *n -= 1;
                *n > 0
            }
            None => true,
        }
    };
    if watch.count == Some(0) {
        return Ok(());
    }
    match &watch.server {
        Some(url) => stream(
            url,
            watch.token.as_deref().unwrap_or(""),
            &watch,
            &mut print,
        ),
        None => poll(data_path, &watch, types, &mut print),
    }
}

/// Reads the data directory's log every `POLL`, from `--after` or its end now.
fn poll(
    data_path: &Path,
    watch: &Watch,
    types: Vec<String>,
    print: &mut dyn FnMut(&Event) -> bool,
) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    let repo = match &watch.repo {
        Some(name) => Some(
            data.find_repo(&super::parse_name(name)?)?
                .ok_or_else(|| user_error("repo_not_found", format!("no repository {name}")))?
                .id,
        ),
        None => None,
    };
    let mut filter = EventFilter {
        after: match watch.after {
            Some(after) => after,
            None => data.last_event()?,
        },
        repo,
        types,
        limit: 1000,
    };
    loop {
        let end = data.last_event()?;
        let events = data.events(&filter)?;
        // Checked after the read: pruning removes a prefix, so a read that started after
        // what is kept shows no gap.
        let pruned = data.events_pruned_through()?;
        if filter.after < pruned {
            return Err(user_error(
                "events_pruned",
                format!(
                    "the events after {} up to {pruned} were removed by the log's retention bound; watch from --after {pruned}",
                    filter.after
                ),
            ));
        }
        for event in &events {
            filter.after = event.seq;
            if !print(event) {
                return Ok(());
            }
        }
        // Scanned to the end: a filtered watch moves past what it does not want.
        if events.len() < filter.limit {
            filter.after = filter.after.max(end);
        }
        if events.is_empty() {
            std::thread::sleep(POLL);
        }
    }
}

/// Follows the server's event stream, resuming with `Last-Event-ID` when the connection
/// drops.
fn stream(
    url: &str,
    token: &str,
    watch: &Watch,
    print: &mut dyn FnMut(&Event) -> bool,
) -> anyhow::Result<()> {
    let bad = || {
        user_error(
            "invalid_argument",
            format!("--server takes http://HOST[:PORT], not {url:?}"),
        )
    };
    let host = url
        .strip_prefix("http://")
        .ok_or_else(bad)?
        .trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    let address = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let path = match &watch.repo {
        Some(repo) => format!("/api/v1/repos/{repo}/events/stream"),
        None => "/api/v1/events/stream".to_owned(),
    };
    let query = watch
        .types
        .as_deref()
        .map_or(String::new(), |t| format!("?type={t}"));
    let mut last = watch.after;
    loop {
        let failed = |e: std::io::Error| user_error("watch_failed", format!("{address}: {e}"));
        let mut tcp = std::net::TcpStream::connect(&address).map_err(failed)?;
        let resume = last.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(
            tcp,
            "GET {path}{query} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        )
        .map_err(failed)?;
        let mut reader = BufReader::new(tcp);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).map_err(failed)?;
        let status: u16 = status_line
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut chunked = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(failed)?;
            if line.trim().is_empty() {
                break;
            }
            chunked |= line
                .to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked");
        }
        if status != 200 {
            let mut body = String::new();
            let _ = reader.read_to_string(&mut body);
            let message = body
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find_map(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(user_error(
                "watch_failed",
                format!("the forge refused: {message}"),
            ));
        }
        let mut body = Body {
            reader,
            chunked,
            left: 0,
        };
        let mut frame = String::new();
        loop {
            let Some(line) = body.line()? else {
                break;
            };
            if !line.is_empty() {
                if let Some(data) = line.strip_prefix("data:") {
                    frame.push_str(data.trim_start());
                }
                continue;
            }
            if frame.is_empty() {
                continue;
            }
            let event: Event = serde_json::from_str(&frame)
                .map_err(|e| user_error("watch_failed", format!("an event the forge sent: {e}")))?;
            frame.clear();
            last = Some(event.seq);
            if !print(&event) {
                return Ok(());
            }
        }
        // The server closed the stream (a restart): come back where it stopped.
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A response body read line by line, chunked or not.
struct Body {
    reader: BufReader<std::net::TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk.
    left: usize,
}

impl Body {
    /// The next line without its end; `None` at the end of the body.
    fn line(&mut self) -> anyhow::Result<Option<String>> {
        let failed = |e: std::io::Error| user_error("watch_failed", e.to_string());
        let mut line = Vec::new();
        loop {
            if self.chunked && self.left == 0 {
                let mut size = String::new();
                if self.reader.read_line(&mut size).map_err(failed)? == 0 {
                    return Ok(None);
                }
                if size.trim().is_empty() {
                    // The end of the previous chunk.
                    continue;
                }
                self.left = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| user_error("watch_failed", "a malformed chunked body"))?;
                if self.left == 0 {
                    return Ok(None);
                }
            }
            let mut byte = [0u8; 1];
            if self.reader.read(&mut byte).map_err(failed)? == 0 {
                return Ok(None);
            }
            if self.chunked {
                self.left -= 1;
            }
            if byte[0] == b'\n' {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            line.push(byte[0]);
        }
    }
}

/// One line about an event: sequence, type, repository, actor and what happened.
fn describe(event: &Event) -> String {
    let actor = match (&event.actor.identity, event.actor.kind.as_str()) {
        (Some(name), kind) => format!("{name} ({kind})"),
        (None, kind) => kind.to_owned(),
    };
    let short = |sha: &Option<String>| {
        sha.as_deref()
            .map_or("-".to_owned(), |s| s.chars().take(12).collect())
    };
    let what = match &event.kind {
        EventKind::RefUpdated(u) => format!(
            "{} {}..{} via {}",
            u.name,
            short(&u.before),
            short(&u.after),
            u.via
        ),
        EventKind::RefRefused(r) => format!("{} refused {}: {}", r.name, r.code, r.reason),
        EventKind::AttestationAdded(a) => {
            format!("{} by {}", a.predicate_type, a.signers.join(", "))
        }
        EventKind::PolicyAdded(p) | EventKind::PolicyRemoved(p) => {
            format!("rule {} ({})", p.rule_id, p.pattern)
        }
        EventKind::RepoCreated(r) | EventKind::RepoDeleted(r) => r.name.clone(),
        EventKind::RepoSettingChanged(s) => format!("{} = {}", s.setting, s.value),
        EventKind::IdentityAdded(i)
        | EventKind::IdentityStateChanged(i)
        | EventKind::IdentityRemoved(i) => {
            format!(
                "{} ({}{})",
                i.name,
                i.kind,
                if i.disabled { ", disabled" } else { "" }
            )
        }
        EventKind::KeyAdded(k) | EventKind::KeyRevoked(k) => format!("{} {}", k.identity, k.key),
        EventKind::TokenMinted(t) | EventKind::TokenRevoked(t) => {
            format!(
                "{} ({} block(s))",
                t.identity.as_deref().unwrap_or("-"),
                t.revocation_ids.len()
            )
        }
        EventKind::HookAdded(h) | EventKind::HookChanged(h) | EventKind::HookRemoved(h) => {
            format!(
                "hook {} ({} {}{})",
                h.id,
                h.scope,
                h.host,
                if h.active { "" } else { ", inactive" }
            )
        }
        EventKind::ApproachCreated(a) => {
            format!("{} from {}", a.r#ref, short(&Some(a.base.clone())))
        }
        EventKind::GoalCreated(g) => format!("goal {} onto {}: {}", g.name, g.target, g.title),
        EventKind::ClaimTaken(c) | EventKind::ClaimReleased(c) | EventKind::ClaimEnded(c) => {
            format!(
                "{}/{} by {} (lease {})",
                c.goal, c.approach, c.holder, c.lease
            )
        }
        EventKind::GoalPromoted(g) | EventKind::GoalAbandoned(g) => format!(
            "goal {} onto {}: {} at {}",
            g.name,
            g.target,
            g.winner.as_deref().unwrap_or("no winner"),
            short(&g.commit)
        ),
        EventKind::GoalMergeQueued(m) => format!(
            "{} merges {} into the target: {}",
            m.r#ref,
            m.approach,
            short(&Some(m.commit.clone()))
        ),
    };
    format!(
        "{} {} {} {actor} {what}",
        event.seq,
        event.kind.type_name(),
        event.repo.as_deref().unwrap_or("-")
    )
}

#[derive(clap::Subcommand)]
pub enum EventsCommand {
    /// Remove the oldest events of the log: beyond the newest `--keep`, or older than
    /// `--max-age` (also while `forge serve` runs; `forge serve` prunes by its own
    /// retention settings). Readers asking for removed events are told they are gone.
    Prune {
        /// Keep at most this many of the newest events.
        #[arg(long)]
        keep: Option<u64>,
        /// Remove events older than this (`90s`, `30m`, `12h`, `90d`).
        #[arg(long)]
        max_age: Option<String>,
    },
}

pub fn events_command(
    data_path: &std::path::Path,
    command: EventsCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        EventsCommand::Prune { keep, max_age } => {
            let max_age = match max_age {
                Some(text) => super::auth::parse_span("--max-age", &text)?,
                None => None,
            };
            if keep.is_none() && max_age.is_none() {
                return Err(user_error(
                    "invalid_argument",
                    "say what to keep: --keep N and/or --max-age SPAN",
                ));
            }
            let data = DataDir::open(data_path)?;
            data.relay_all_events()?;
            let before = data.events_pruned_through()?;
            let through = data.prune_events(crate::store::Retention {
                max_events: keep,
                max_age,
            })?;
            let last = data.last_event()?;
            if json {
                super::print_json(serde_json::json!({
                    "pruned_through": through,
                    "removed": through - before,
                    "last": last,
                }));
            } else if through >= last {
                println!("removed {} events; the log keeps none", through - before);
            } else {
                println!(
                    "removed {} events; the log keeps {} to {last}",
                    through - before,
                    through + 1
                );
            }
        }
    }
    Ok(())
}
