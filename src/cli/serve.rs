//! `forge serve`: its flags, their environment variables (`FORGE_…`) and the TOML config
//! file (`--config FILE` or `FORGE_CONFIG`), merged in one order: a flag on the command
//! line, then its environment variable, then the config file, then the built-in default.
//! `docs/configuration.md` lists the keys.
//!
//! clap keeps its defaults (they show in `--help`); whether a value was given or is the
//! default is read from `ArgMatches::value_source`, so a default never hides the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::server::forwarded::ProxyNet;
use crate::server::hooks::HookSettings;
use crate::server::hooks::target::AllowedHost;
use crate::server::{LogFormat, ServeOptions, ServerLimits, TlsFiles};

fn defaults() -> ServerLimits {
    ServerLimits::default()
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A TOML file of settings, keyed by these flags' long names (`max-connections = 512`,
    /// `trusted-proxies = ["10.0.0.1"]`). A flag beats its environment variable, which
    /// beats the file, which beats the default (docs/configuration.md).
    #[arg(long, env = "FORGE_CONFIG")]
    config: Option<PathBuf>,
    /// Address and port to listen on.
    #[arg(long, env = "FORGE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seconds of silence after which a fetch whose pack is still being prepared gets a
    /// keep-alive packet (git's uploadpack.keepAlive); 0 sends none.
    #[arg(long, env = "FORGE_KEEPALIVE", default_value_t = 5.0, value_parser = parse_seconds)]
    keepalive: f64,
    /// Do not rebuild a missing or stale clone pack in the background after a full
    /// clone (`forge repack` still does).
    #[arg(long, env = "FORGE_NO_AUTO_REPACK", value_parser = clap::builder::FalseyValueParser::new())]
    no_auto_repack: bool,
    /// Largest push accepted, in bytes (commands and pack).
    #[arg(long, env = "FORGE_MAX_PUSH_BYTES", default_value_t = crate::served::PushLimits::default().max_push_bytes)]
    max_push_bytes: u64,
    /// Largest object a push may bring, in bytes (inflated); also bounds any single
    /// allocation while the pack is indexed, which stops delta bombs.
    #[arg(long, env = "FORGE_MAX_OBJECT_BYTES", default_value_t = crate::served::PushLimits::default().max_object_bytes)]
    max_object_bytes: u64,
    /// Threads that check a pushed pack's objects at once (default: every core). Memory
    /// while indexing stays under about twice this times --max-object-bytes, plus a
    /// few dozen bytes per object.
    #[arg(long, env = "FORGE_INDEX_THREADS")]
    index_threads: Option<usize>,
    /// Log lines on standard error as `text` or `json` (one object per line); RUST_LOG
    /// picks what is logged (default info).
    #[arg(long, env = "FORGE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Connections open at once; past it the longest-idle one is closed, or the new one
    /// answered 503 when all are busy (lowered to fit the open-file limit).
    #[arg(long, env = "FORGE_MAX_CONNECTIONS", default_value_t = defaults().connections.max_connections)]
    max_connections: usize,
    /// Seconds a client may take to send a request's headers (and, with TLS, to finish
    /// its handshake), and to start the next request on a kept-alive connection.
    #[arg(long, env = "FORGE_HEADER_TIMEOUT", default_value_t = defaults().connections.header_timeout.as_secs_f64(), value_parser = parse_seconds)]
    header_timeout: f64,
    /// Seconds a request body may stay silent, and a response wait for a client that
    /// reads nothing.
    #[arg(long, env = "FORGE_IDLE_TIMEOUT", default_value_t = defaults().body_idle.as_secs_f64(), value_parser = parse_seconds)]
    idle_timeout: f64,
    /// Fetches served at once, and at most this many per caller (identity, or address
    /// without a token).
    #[arg(long, env = "FORGE_MAX_FETCHES", default_value_t = defaults().fetches)]
    max_fetches: usize,
    #[arg(long, env = "FORGE_MAX_FETCHES_PER_CALLER", default_value_t = defaults().fetches_per_caller)]
    max_fetches_per_caller: usize,
    /// Pushes indexed at once, and at most this many per caller and per repository.
    #[arg(long, env = "FORGE_MAX_PUSHES", default_value_t = defaults().pushes)]
    max_pushes: usize,
    #[arg(long, env = "FORGE_MAX_PUSHES_PER_CALLER", default_value_t = defaults().pushes_per_key)]
    max_pushes_per_caller: usize,
    /// Bytes of fetch request bodies held in memory by all requests together, a quarter
    /// of it at most by one caller (each request also has 64 KiB of its own).
    #[arg(long, env = "FORGE_MAX_REQUEST_MEMORY", default_value_t = defaults().request_memory)]
    max_request_memory: usize,
    /// Repositories kept open between requests.
    #[arg(long, env = "FORGE_MAX_OPEN_REPOS", default_value_t = defaults().open_repos)]
    max_open_repos: usize,
    /// Serve HTTPS with this certificate (PEM: the server's certificate, then its chain);
    /// needs --tls-key.
    #[arg(long, env = "FORGE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "FORGE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A reverse proxy (address or CIDR block) whose X-Forwarded-For, X-Forwarded-Proto,
    /// X-Forwarded-Host and Forwarded headers are believed; repeatable (comma-separated
    /// in FORGE_TRUSTED_PROXIES). Other peers' forwarding headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "FORGE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<ProxyNet>,
    /// A bearer token that may read /metrics (a site admin's token may too). Prefer
    /// FORGE_METRICS_TOKEN or the config file: other users can see a process's flags.
    #[arg(long, env = "FORGE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// A webhook target allowed although it is internal (loopback, private, link-local):
    /// an exact host name, `*.example.com`, an address or a CIDR block; repeatable
    /// (comma-separated in FORGE_HOOK_ALLOW_HOSTS). Other internal targets are refused.
    #[arg(
        long = "hook-allow-host",
        env = "FORGE_HOOK_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    hook_allow_hosts: Vec<AllowedHost>,
    /// Attempts of one webhook delivery before it is marked failed.
    #[arg(long, env = "FORGE_HOOK_ATTEMPTS", default_value_t = HookSettings::default().attempts, value_parser = clap::value_parser!(u32).range(1..=20))]
    hook_attempts: u32,
    /// Seconds before a failed webhook delivery is tried again; the wait doubles after
    /// each further failure (at most an hour).
    #[arg(long, env = "FORGE_HOOK_RETRY_DELAY", default_value_t = HookSettings::default().retry_delay.as_secs_f64(), value_parser = parse_seconds)]
    hook_retry_delay: f64,
    /// Seconds one webhook delivery attempt may take (connecting, sending, the answer).
    #[arg(long, env = "FORGE_HOOK_TIMEOUT", default_value_t = HookSettings::default().timeout.as_secs_f64(), value_parser = parse_seconds)]
    hook_timeout: f64,
    /// Events older than this are removed from the log (`12h`, `90d`, `never`); readers
    /// asking for them are told they are gone (410).
    #[arg(long, env = "FORGE_EVENT_MAX_AGE", default_value = "90d", value_parser = parse_span)]
    event_max_age: Span,
    /// At most this many of the newest events are kept in the log (default: no bound).
    #[arg(long, env = "FORGE_EVENT_MAX_COUNT")]
    event_max_count: Option<u64>,
}

/// A span of time as `--event-max-age` takes it; `None` is `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(Option<Duration>);

fn parse_span(text: &str) -> Result<Span, String> {
    text.parse()
}

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        super::auth::parse_span("--event-max-age", text)
            .map(Span)
            .map_err(|e| e.to_string())
    }
}

pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) => check_seconds(seconds),
        _ => Err(format!(
            "expected seconds between 0 and 86400, got '{text}'"
        )),
    }
}

fn check_seconds(seconds: f64) -> Result<f64, String> {
    if seconds.is_finite() && (0.0..=86_400.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!(
            "expected seconds between 0 and 86400, got {seconds}"
        ))
    }
}

/// Why the config file (or the settings as merged) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error(
        "the config file {} has an unknown key `{key}`{}; its keys are the long flags of forge serve (docs/configuration.md)",
        path.display(),
        suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    )]
    UnknownKey {
        path: PathBuf,
        key: String,
        suggestion: Option<&'static str>,
    },
    #[error("the config file {}: `{key}` must be {expected}, not {found}", path.display())]
    Type {
        path: PathBuf,
        key: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("the config file {}: `{key}`: {reason}", path.display())]
    Value {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error("{given} is set but {missing} is not: HTTPS needs a certificate and its key")]
    TlsHalf {
        given: &'static str,
        missing: &'static str,
    },
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        "bad_config"
    }
}

/// Every key the config file takes, as the flags are spelled.
const KEYS: &[&str] = &[
    "data",
    "listen",
    "keepalive",
    "no-auto-repack",
    "max-push-bytes",
    "max-object-bytes",
    "index-threads",
    "log-format",
    "max-connections",
    "header-timeout",
    "idle-timeout",
    "max-fetches",
    "max-fetches-per-caller",
    "max-pushes",
    "max-pushes-per-caller",
    "max-request-memory",
    "max-open-repos",
    "tls-cert",
    "tls-key",
    "trusted-proxies",
    "metrics-token",
    "hook-allow-hosts",
    "hook-attempts",
    "hook-retry-delay",
    "hook-timeout",
    "event-max-age",
    "event-max-count",
];

/// The settings a config file gives; `None` for what it leaves out.
#[derive(Debug, Default)]
pub struct Config {
    pub data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    keepalive: Option<f64>,
    no_auto_repack: Option<bool>,
    max_push_bytes: Option<u64>,
    max_object_bytes: Option<u64>,
    index_threads: Option<usize>,
    log_format: Option<LogFormat>,
    max_connections: Option<usize>,
    header_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    max_fetches: Option<usize>,
    max_fetches_per_caller: Option<usize>,
    max_pushes: Option<usize>,
    max_pushes_per_caller: Option<usize>,
    max_request_memory: Option<usize>,
    max_open_repos: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    trusted_proxies: Option<Vec<ProxyNet>>,
    metrics_token: Option<String>,
    hook_allow_hosts: Option<Vec<AllowedHost>>,
    hook_attempts: Option<u32>,
    hook_retry_delay: Option<f64>,
    hook_timeout: Option<f64>,
    event_max_age: Option<Span>,
    event_max_count: Option<u64>,
}

impl Config {
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// The settings of `text`, the content of `path`; relative paths in it are taken
    /// from the file's directory.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key: key.clone(),
                    suggestion: closest(key),
                });
            }
        }
        let keys = Keys {
            table,
            path,
            base: path.parent().unwrap_or(Path::new("")),
        };
        Ok(Config {
            data: keys.path("data")?,
            listen: keys.parsed("listen", "an address and port such as \"127.0.0.1:8080\"")?,
            keepalive: keys.seconds("keepalive")?,
            no_auto_repack: keys.boolean("no-auto-repack")?,
            max_push_bytes: keys.count("max-push-bytes")?,
            max_object_bytes: keys.count("max-object-bytes")?,
            index_threads: keys.count("index-threads")?,
            log_format: keys.parsed("log-format", "\"text\" or \"json\"")?,
            max_connections: keys.count("max-connections")?,
            header_timeout: keys.seconds("header-timeout")?,
            idle_timeout: keys.seconds("idle-timeout")?,
            max_fetches: keys.count("max-fetches")?,
            max_fetches_per_caller: keys.count("max-fetches-per-caller")?,
            max_pushes: keys.count("max-pushes")?,
            max_pushes_per_caller: keys.count("max-pushes-per-caller")?,
            max_request_memory: keys.count("max-request-memory")?,
            max_open_repos: keys.count("max-open-repos")?,
            tls_cert: keys.path("tls-cert")?,
            tls_key: keys.path("tls-key")?,
            trusted_proxies: keys.proxies("trusted-proxies")?,
            metrics_token: keys.string("metrics-token")?,
            hook_allow_hosts: keys.allowed_hosts("hook-allow-hosts")?,
            hook_attempts: keys.attempts("hook-attempts")?,
            hook_retry_delay: keys.seconds("hook-retry-delay")?,
            hook_timeout: keys.seconds("hook-timeout")?,
            event_max_age: keys.parsed(
                "event-max-age",
                "a span such as \"90d\", \"12h\" or \"never\"",
            )?,
            event_max_count: keys.count("event-max-count")?,
        })
    }
}

/// The known key nearest to a misspelt one, when it is near enough to be meant.
fn closest(key: &str) -> Option<&'static str> {
    let key = key.replace('_', "-");
    KEYS.iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The table of a config file, read key by key with errors that name the key and file.
struct Keys<'a> {
    table: toml::Table,
    path: &'a Path,
    base: &'a Path,
}

impl Keys<'_> {
    fn wrong(&self, key: &'static str, expected: &'static str, found: &toml::Value) -> ConfigError {
        let shown = match found {
            toml::Value::String(s) => format!("the string {s:?}"),
            toml::Value::Integer(n) => format!("the integer {n}"),
            toml::Value::Float(f) => format!("the number {f}"),
            toml::Value::Boolean(b) => format!("{b}"),
            other => format!("{} {}", article(other.type_str()), other.type_str()),
        };
        ConfigError::Type {
            path: self.path.to_owned(),
            key,
            expected,
            found: shown,
        }
    }

    fn invalid(&self, key: &'static str, reason: String) -> ConfigError {
        ConfigError::Value {
            path: self.path.to_owned(),
            key,
            reason,
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    fn path(&self, key: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.string(key)?.map(|p| self.base.join(p)))
    }

    fn parsed<T>(&self, key: &'static str, expected: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|e| self.invalid(key, format!("{s:?} is not {expected}: {e}"))),
            Some(other) => Err(self.wrong(key, expected, other)),
        }
    }

    fn boolean(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong(key, "true or false", other)),
        }
    }

    fn count<T: TryFrom<i64>>(&self, key: &'static str) -> Result<Option<T>, ConfigError> {
        const EXPECTED: &str = "a whole number, 0 or more";
        match self.table.get(key) {
            None => Ok(None),
            Some(value @ toml::Value::Integer(n)) => T::try_from(*n)
                .map(Some)
                .map_err(|_| self.wrong(key, EXPECTED, value)),
            Some(other) => Err(self.wrong(key, EXPECTED, other)),
        }
    }

    fn seconds(&self, key: &'static str) -> Result<Option<f64>, ConfigError> {
        const EXPECTED: &str = "a number of seconds";
        let seconds = match self.table.get(key) {
            None => return Ok(None),
            Some(toml::Value::Integer(n)) => *n as f64,
            Some(toml::Value::Float(f)) => *f,
            Some(other) => return Err(self.wrong(key, EXPECTED, other)),
        };
        check_seconds(seconds)
            .map(Some)
            .map_err(|reason| self.invalid(key, reason))
    }

    fn proxies(&self, key: &'static str) -> Result<Option<Vec<ProxyNet>>, ConfigError> {
        const EXPECTED: &str = "an array of addresses or CIDR blocks";
        let items = match self.table.get(key) {
            None => return Ok(None),
            Some(toml::Value::Array(items)) => items,
            Some(other) => return Err(self.wrong(key, EXPECTED, other)),
        };
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let toml::Value::String(text) = item else {
                return Err(self.wrong(key, EXPECTED, item));
            };
            nets.push(
                text.parse()
                    .map_err(|e: crate::server::forwarded::ProxyNetError| {
                        self.invalid(key, e.to_string())
                    })?,
            );
        }
        Ok(Some(nets))
    }

    fn allowed_hosts(&self, key: &'static str) -> Result<Option<Vec<AllowedHost>>, ConfigError> {
        const EXPECTED: &str = "an array of host names, addresses or CIDR blocks";
        let items = match self.table.get(key) {
            None => return Ok(None),
            Some(toml::Value::Array(items)) => items,
            Some(other) => return Err(self.wrong(key, EXPECTED, other)),
        };
        let mut hosts = Vec::with_capacity(items.len());
        for item in items {
            let toml::Value::String(text) = item else {
                return Err(self.wrong(key, EXPECTED, item));
            };
            hosts.push(text.parse().map_err(
                |e: crate::server::hooks::target::AllowedHostError| {
                    self.invalid(key, e.to_string())
                },
            )?);
        }
        Ok(Some(hosts))
    }

    fn attempts(&self, key: &'static str) -> Result<Option<u32>, ConfigError> {
        match self.count::<u32>(key)? {
            Some(n) if !(1..=20).contains(&n) => {
                Err(self.invalid(key, format!("attempts are 1 to 20, not {n}")))
            }
            other => Ok(other),
        }
    }
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Whether a flag's value came from the command line or its environment variable (which
/// beat the config file), not from clap's default.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// A flag's value, or the config file's when the flag was not given.
fn pick<T>(matches: &ArgMatches, id: &str, flag: T, config: Option<T>) -> T {
    if given(matches, id) {
        flag
    } else {
        config.unwrap_or(flag)
    }
}

/// The config file `args` names, if any.
pub fn config_of(args: &ServeArgs) -> Result<Config, ConfigError> {
    match &args.config {
        Some(path) => Config::read(path),
        None => Ok(Config::default()),
    }
}

/// The data directory: `--data` / `FORGE_DATA` (`data_given`), else the config file's,
/// else the default.
pub fn data_dir(data: PathBuf, data_given: bool, config: &Config) -> PathBuf {
    match (&config.data, data_given) {
        (Some(configured), false) => configured.clone(),
        _ => data,
    }
}

/// The server's options: every flag merged with the config file.
pub fn options(
    args: ServeArgs,
    matches: &ArgMatches,
    config: Config,
    json: bool,
) -> Result<ServeOptions, ConfigError> {
    let m = matches;
    let listen = pick(m, "listen", args.listen, config.listen);
    let keepalive = pick(m, "keepalive", args.keepalive, config.keepalive);
    let no_auto_repack = pick(
        m,
        "no_auto_repack",
        args.no_auto_repack,
        config.no_auto_repack,
    );
    let max_push_bytes = pick(
        m,
        "max_push_bytes",
        args.max_push_bytes,
        config.max_push_bytes,
    );
    let max_object_bytes = pick(
        m,
        "max_object_bytes",
        args.max_object_bytes,
        config.max_object_bytes,
    );
    let index_threads = if given(m, "index_threads") {
        args.index_threads
    } else {
        config.index_threads.or(args.index_threads)
    };
    let log_format = pick(m, "log_format", args.log_format, config.log_format);
    let max_connections = pick(
        m,
        "max_connections",
        args.max_connections,
        config.max_connections,
    );
    let header_timeout = pick(
        m,
        "header_timeout",
        args.header_timeout,
        config.header_timeout,
    );
    let idle_timeout = pick(m, "idle_timeout", args.idle_timeout, config.idle_timeout);
    let max_fetches = pick(m, "max_fetches", args.max_fetches, config.max_fetches);
    let max_fetches_per_caller = pick(
        m,
        "max_fetches_per_caller",
        args.max_fetches_per_caller,
        config.max_fetches_per_caller,
    );
    let max_pushes = pick(m, "max_pushes", args.max_pushes, config.max_pushes);
    let max_pushes_per_caller = pick(
        m,
        "max_pushes_per_caller",
        args.max_pushes_per_caller,
        config.max_pushes_per_caller,
    );
    let max_request_memory = pick(
        m,
        "max_request_memory",
        args.max_request_memory,
        config.max_request_memory,
    );
    let max_open_repos = pick(
        m,
        "max_open_repos",
        args.max_open_repos,
        config.max_open_repos,
    );
    let or_config = |id: &str, flag: Option<PathBuf>, config: Option<PathBuf>| {
        if given(m, id) { flag } else { config.or(flag) }
    };
    let tls_cert = or_config("tls_cert", args.tls_cert, config.tls_cert);
    let tls_key = or_config("tls_key", args.tls_key, config.tls_key);
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::TlsHalf {
                given: "--tls-cert",
                missing: "--tls-key",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::TlsHalf {
                given: "--tls-key",
                missing: "--tls-cert",
            });
        }
    };
    let trusted_proxies = if given(m, "trusted_proxies") {
        args.trusted_proxies
    } else {
        config.trusted_proxies.unwrap_or(args.trusted_proxies)
    };
    let metrics_token = if given(m, "metrics_token") {
        args.metrics_token
    } else {
        config.metrics_token.or(args.metrics_token)
    };
    let event_max_age = pick(m, "event_max_age", args.event_max_age, config.event_max_age);
    let event_max_count = if given(m, "event_max_count") {
        args.event_max_count
    } else {
        config.event_max_count.or(args.event_max_count)
    };

    let hook_allow_hosts = if given(m, "hook_allow_hosts") {
        args.hook_allow_hosts
    } else {
        config.hook_allow_hosts.unwrap_or(args.hook_allow_hosts)
    };
    let hook_attempts = pick(m, "hook_attempts", args.hook_attempts, config.hook_attempts);
    let hook_retry_delay = pick(
        m,
        "hook_retry_delay",
        args.hook_retry_delay,
        config.hook_retry_delay,
    );
    let hook_timeout = pick(m, "hook_timeout", args.hook_timeout, config.hook_timeout);

    let defaults = defaults();
    let idle = Duration::from_secs_f64(idle_timeout.max(1.0));
    let limits = ServerLimits {
        connections: crate::server::listen::ConnectionLimits {
            max_connections: max_connections.max(1),
            header_timeout: Duration::from_secs_f64(header_timeout.max(1.0)),
            write_timeout: idle,
        },
        fetches: max_fetches.max(1),
        fetches_per_caller: max_fetches_per_caller.max(1),
        pushes: max_pushes.max(1),
        pushes_per_key: max_pushes_per_caller.max(1),
        request_memory: max_request_memory,
        body_idle: idle,
        open_repos: max_open_repos.max(1),
        ..defaults
    };
    Ok(ServeOptions {
        listen,
        settings: crate::served::ServeSettings {
            keepalive: (keepalive > 0.0).then(|| Duration::from_secs_f64(keepalive)),
            auto_repack: !no_auto_repack,
            push: crate::served::PushLimits {
                max_push_bytes,
                max_object_bytes,
                index_threads,
            },
        },
        limits,
        json,
        log_format,
        tls,
        trusted_proxies,
        metrics_token,
        hooks: HookSettings {
            allow: hook_allow_hosts,
            attempts: hook_attempts.max(1),
            retry_delay: Duration::from_secs_f64(hook_retry_delay.max(0.05)),
            timeout: Duration::from_secs_f64(hook_timeout.max(0.1)),
        },
        retention: crate::store::Retention {
            max_events: event_max_count,
            max_age: event_max_age.0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/forge/forge.toml"))
    }

    #[test]
    fn every_key_is_read() {
        let config = parse(
            r#"
            data = "data"
            listen = "0.0.0.0:443"
            keepalive = 2
            no-auto-repack = true
            max-push-bytes = 1000
            max-object-bytes = 100
            index-threads = 2
            log-format = "json"
            max-connections = 64
            header-timeout = 2.5
            idle-timeout = 30
            max-fetches = 3
            max-fetches-per-caller = 1
            max-pushes = 2
            max-pushes-per-caller = 1
            max-request-memory = 1048576
            max-open-repos = 8
            tls-cert = "/etc/forge/cert.pem"
            tls-key = "key.pem"
            trusted-proxies = ["127.0.0.1", "10.0.0.0/8"]
            metrics-token = "s3cret"
            hook-allow-hosts = ["127.0.0.1", "*.corp.example"]
            hook-attempts = 3
            hook-retry-delay = 0.5
            hook-timeout = 4
            event-max-age = "12h"
            event-max-count = 5000
            "#,
        )
        .unwrap();
        assert_eq!(config.data, Some(PathBuf::from("/etc/forge/data")));
        assert_eq!(config.listen, Some("0.0.0.0:443".parse().unwrap()));
        assert_eq!(config.keepalive, Some(2.0));
        assert_eq!(config.header_timeout, Some(2.5));
        assert_eq!(config.log_format, Some(LogFormat::Json));
        assert_eq!(config.tls_cert, Some(PathBuf::from("/etc/forge/cert.pem")));
        assert_eq!(config.tls_key, Some(PathBuf::from("/etc/forge/key.pem")));
        assert_eq!(config.trusted_proxies.as_ref().map(Vec::len), Some(2));
        assert_eq!(config.metrics_token.as_deref(), Some("s3cret"));
        assert_eq!(
            config.event_max_age,
            Some(Span(Some(Duration::from_secs(12 * 3600))))
        );
        assert_eq!(config.event_max_count, Some(5000));
        assert_eq!(config.max_open_repos, Some(8));
        assert_eq!(config.hook_allow_hosts.as_ref().map(Vec::len), Some(2));
        assert_eq!(config.hook_attempts, Some(3));
        assert_eq!(config.hook_retry_delay, Some(0.5));
        assert_eq!(config.hook_timeout, Some(4.0));
    }

    #[test]
    fn mistakes_name_the_key_and_the_file() {
        let error = parse("max-conections = 5").unwrap_err().to_string();
        assert_eq!(
            error,
            "the config file /etc/forge/forge.toml has an unknown key `max-conections` (did you mean `max-connections`?); its keys are the long flags of forge serve (docs/configuration.md)"
        );
        let error = parse("max_connections = 5").unwrap_err().to_string();
        assert!(
            error.contains("(did you mean `max-connections`?)"),
            "{error}"
        );
        let error = parse("colour = 5").unwrap_err().to_string();
        assert!(error.contains("unknown key `colour`;"), "{error}");
        let error = parse("max-connections = \"many\"").unwrap_err().to_string();
        assert_eq!(
            error,
            "the config file /etc/forge/forge.toml: `max-connections` must be a whole number, 0 or more, not the string \"many\""
        );
        let error = parse("max-connections = -1").unwrap_err().to_string();
        assert!(error.ends_with("not the integer -1"), "{error}");
        let error = parse("no-auto-repack = 1").unwrap_err().to_string();
        assert!(error.contains("must be true or false"), "{error}");
        let error = parse("header-timeout = 100000").unwrap_err().to_string();
        assert!(
            error.contains("`header-timeout`: expected seconds between 0 and 86400"),
            "{error}"
        );
        let error = parse("listen = \"localhost\"").unwrap_err().to_string();
        assert!(
            error.contains("`listen`: \"localhost\" is not an address"),
            "{error}"
        );
        let error = parse("trusted-proxies = \"10.0.0.1\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("must be an array of addresses"), "{error}");
        let error = parse("trusted-proxies = [\"10.0.0.0/40\"]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("prefix length is out of range"), "{error}");
        let error = parse("listen = ").unwrap_err().to_string();
        assert!(error.contains("is not valid TOML"), "{error}");
    }
}
