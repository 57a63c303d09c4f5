//! Helpers for integration tests: run stock git and the real `forge` binary.

pub mod corpus;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The forge binary under test: this build's, or `FORGE_TEST_BIN` (to show that an older
/// build fails a test, as the hostile-client tests were shown to fail before their fixes).
pub fn forge_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("FORGE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_forge").to_owned())
    })
}

/// Runs git in `dir` and returns stdout; panics with stderr when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&git_bytes(dir, args, None)).into_owned()
}

pub fn git_bytes(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let out = git_output(dir, args, input);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs git with extra environment variables (git's tracing); asserts success.
pub fn git_with_env(dir: &Path, args: &[&str], vars: &[(&str, &std::ffi::OsStr)]) -> Output {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .envs(vars.iter().copied())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs git with `GIT_TRACE_CURL` (headers only); returns the trace and git's stderr.
pub fn curl_trace(dir: &Path, args: &[&str]) -> (String, String) {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let out = git_with_env(
        dir,
        args,
        &[
            ("GIT_TRACE_CURL", file.path().as_os_str()),
            ("GIT_TRACE_CURL_NO_DATA", "1".as_ref()),
        ],
    );
    (
        std::fs::read_to_string(file.path()).expect("the curl trace"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Incompressible bytes from a xorshift generator, each made by `byte` from the state.
pub fn noise(seed: u64, len: usize, byte: impl Fn(u64) -> u8) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            byte(state)
        })
        .collect()
}

/// Runs git, returning (success, stderr), for commands expected to fail.
pub fn try_git(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = git_output(dir, args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn git_output(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Never ask for a password: a missing or refused token must fail, not wait.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "C O Mitter")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.map(<[u8]>::to_vec);
    let writer = std::thread::spawn(move || {
        if let Some(input) = input {
            let _ = stdin.write_all(&input);
        }
    });
    let out = child.wait_with_output().expect("git finishes");
    writer.join().expect("stdin writer");
    out
}

/// A work tree cloned from `source`, to commit in and push back.
pub fn clone_work(source: &Path, work: &Path) {
    let parent = work.parent().expect("a work tree has a parent directory");
    git(
        parent,
        &[
            "clone",
            "-q",
            &source.display().to_string(),
            &work.display().to_string(),
        ],
    );
}

/// Writes a file in a work tree and commits everything with `message`.
pub fn commit_file(work: &Path, name: &str, content: impl AsRef<[u8]>, message: &str) {
    std::fs::write(work.join(name), content).expect("writing into the work tree");
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
}

/// `git hash-object -w --literally`: stores any bytes as an object of any type.
pub fn literally(repo: &Path, kind: &str, body: &[u8]) -> String {
    let out = git_bytes(
        repo,
        &["hash-object", "-w", "--literally", "-t", kind, "--stdin"],
        Some(body),
    );
    String::from_utf8(out).expect("hex").trim().to_owned()
}

pub fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The `forge` binary with a data directory.
pub struct Forge {
    pub data: PathBuf,
}

impl Forge {
    pub fn new(data: &Path) -> Forge {
        Forge {
            data: data.to_owned(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(forge_bin());
        cmd.arg("--data").arg(&self.data).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("forge runs")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "forge {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "forge {args:?} should fail but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The registry id of a repository (its directory is `repos/ID`).
    pub fn repo_id(&self, name: &str) -> u64 {
        self.json(&["repo", "list"])["repos"]
            .as_array()
            .expect("a repository list")
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["id"].as_u64())
            .unwrap_or_else(|| panic!("no repository {name}"))
    }

    /// `forge token issue ARGS`: the token it prints.
    pub fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "issue"];
        all.extend_from_slice(args);
        self.json(&all)["token"]
            .as_str()
            .expect("a token in the output")
            .to_owned()
    }

    /// `forge attest sign` with the key in `key`, about `commit` (and `tree`): the envelope.
    /// The predicate's JSON is written beside the key.
    pub fn attest_sign(
        &self,
        key: &Path,
        commit: &str,
        tree: Option<&str>,
        predicate_type: &str,
        predicate: &str,
    ) -> String {
        let file = key.with_extension("predicate.json");
        std::fs::write(&file, predicate).unwrap();
        let mut args = vec![
            "attest",
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--commit",
            commit,
        ];
        if let Some(tree) = tree {
            args.extend(["--tree", tree]);
        }
        args.extend([
            "--predicate-type",
            predicate_type,
            "--predicate",
            file.to_str().unwrap(),
        ]);
        self.ok(&args)
    }

    /// A token of `identity` with `write` on `repo`.
    pub fn write_token(&self, identity: &str, repo: &str) -> String {
        self.token(&["--identity", identity, "--repo", repo, "--ops", "write"])
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }
}

/// What a user compares between two repositories: every object (type, size and bytes), every
/// ref, and HEAD.
#[derive(Debug, PartialEq, Eq)]
pub struct RepoSnapshot {
    pub objects_digest: String,
    pub object_count: usize,
    pub refs: String,
    pub head: String,
}

pub fn snapshot(git_dir: &Path) -> RepoSnapshot {
    let listing = git(
        git_dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        ],
    );
    let contents = git_bytes(
        git_dir,
        &["cat-file", "--batch-all-objects", "--batch"],
        None,
    );
    RepoSnapshot {
        objects_digest: format!("{:x}", md5_like(&contents)),
        object_count: listing.lines().count(),
        refs: git(
            git_dir,
            &[
                "for-each-ref",
                "--format=%(objectname) %(objecttype) %(refname)",
            ],
        ),
        head: std::fs::read_to_string(git_dir.join("HEAD")).expect("HEAD"),
    }
}

/// A digest of a byte string (FNV-1a, 128 bits) — enough to compare two listings.
fn md5_like(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    h
}

/// `git fsck` messages, sorted, with object-storage details removed, so a source and its
/// export can be compared.
pub fn fsck_messages(git_dir: &Path) -> Vec<String> {
    let out = git_output(git_dir, &["fsck", "--no-dangling", "--no-progress"], None);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("Checking") && !l.is_empty())
        .map(|l| {
            // git words an unparsable object differently when it is loose and when packed.
            match l.split_once(": object could not be parsed: ") {
                Some((id, _)) => format!("{id}: object corrupt or missing"),
                None => l.to_owned(),
            }
        })
        .collect();
    lines.sort();
    lines
}

/// A running `forge serve` on a free loopback port, stopped when dropped.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (`https://` when it serves TLS)
    pub url: String,
    /// A token with every right (the `admin` identity's).
    pub token: String,
    /// Every line the server wrote to its standard error (its log).
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(forge: &Forge) -> Server {
        Server::start_with(forge, &[])
    }

    /// Starts `forge serve` with more options.
    pub fn start_with(forge: &Forge, options: &[&str]) -> Server {
        use std::io::BufRead;
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(options);
        let mut child = forge
            .command(&args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("forge serve starts");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut line = String::new();
        let url = loop {
            line.clear();
            let n = stderr
                .read_line(&mut line)
                .expect("forge serve announces itself");
            assert!(n > 0, "forge serve exited: {:?}", log.lock().unwrap());
            log.lock().unwrap().push(line.trim_end().to_owned());
            if let Some(at) = line.trim().strip_prefix("forge: serving ") {
                break at
                    .rsplit(" on ")
                    .next()
                    .expect("an address")
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                kept.lock().unwrap().push(line.trim_end().to_owned());
                line.clear();
            }
        });
        // The first start created the admin identity; tests use a token of their own.
        let issued = forge.json(&[
            "token",
            "issue",
            "--identity",
            "admin",
            "--repo",
            "*",
            "--ops",
            "admin",
            "--ttl",
            "1d",
        ]);
        let token = issued["token"].as_str().expect("a token").to_owned();
        Server {
            child,
            url,
            token,
            log,
        }
    }

    /// The server's process id (to read its memory and descriptors in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines written so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// `host:port`, for raw connections.
    pub fn addr(&self) -> String {
        self.url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, addr)| addr)
            .to_owned()
    }

    /// The base URL with the admin token as the password.
    pub fn auth_url(&self) -> String {
        self.url
            .replacen("://", &format!("://x:{}@", self.token), 1)
    }

    /// The URL of a repository, with the admin token.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.auth_url())
    }

    /// The URL of a repository with `token` as the password.
    pub fn repo_url_with(&self, token: &str, name: &str) -> String {
        let base = self.url.replacen("://", &format!("://x:{token}@"), 1);
        format!("{base}/{name}.git")
    }

    /// The URL of a repository, without credentials.
    pub fn anonymous_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.url)
    }

    /// `Authorization: Bearer …` with the admin token, for hand-made requests.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `kill -9`: the server gets no chance to clean up.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git for-each-ref` of branches and tags: what a clone must reproduce.
pub fn branches_and_tags(git_dir: &Path) -> String {
    git(
        git_dir,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ],
    )
}

/// Every object reachable from branches and tags, sorted.
pub fn reachable_objects(git_dir: &Path) -> Vec<String> {
    let mut list: Vec<String> = git(git_dir, &["rev-list", "--objects", "--branches", "--tags"])
        .lines()
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    list.sort();
    list.dedup();
    list
}

/// `git fsck` must succeed and say nothing.
pub fn assert_fsck_clean(git_dir: &Path) {
    let out = git_output(git_dir, &["fsck", "--no-progress"], None);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "git fsck in {}: {}{}",
        git_dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One pkt-line holding `line`.
pub fn pkt(line: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", line.len() + 4).into_bytes();
    out.extend_from_slice(line.as_bytes());
    out
}

/// (host:port, path, token) of `http://x:TOKEN@host:port/path`.
pub fn split_url(url: &str) -> (String, String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (userinfo, rest) = rest.split_once('@').unwrap();
    let token = userinfo.split_once(':').unwrap().1.to_owned();
    let slash = rest.find('/').unwrap();
    (rest[..slash].to_owned(), rest[slash..].to_owned(), token)
}

/// The payload of a chunked HTTP body.
pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// An HTTP answer read off a raw connection.
pub struct RawAnswer {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` (head and body, with `Connection: close`) to `addr` and reads the whole
/// answer.
pub fn raw_http(addr: &str, request: &[u8]) -> RawAnswer {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    parse_answer(&response)
}

/// Sends `request` to `addr` and returns whatever comes back before the server closes
/// (nothing, or not HTTP, for a request the server does not take as one).
pub fn raw_http_result(addr: &str, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response
}

/// Splits a raw HTTP response into status, head and (de-chunked) body.
pub fn parse_answer(response: &[u8]) -> RawAnswer {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("a response head in {:?}", String::from_utf8_lossy(response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    RawAnswer { status, head, body }
}

/// Waits up to `limit` for `cond` to hold.
pub fn wait_for(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Descriptors the process has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A bare repository that refuses what git's receive-pack refuses with
/// `receive.fsckObjects` (the forge's pushes are held to the same checks).
pub fn strict_git_remote(parent: &Path, name: &str) -> PathBuf {
    let bare = parent.join(name);
    git(
        parent,
        &["init", "-q", "--bare", &bare.display().to_string()],
    );
    git(&bare, &["config", "receive.fsckObjects", "true"]);
    bare
}

/// The fsck problem (`msgId: message`) in the `remote: error: object <sha>: …` line stock
/// git printed for a refused push, if it printed one.
pub fn fsck_problem(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("remote: error: object ")?;
        let (_sha, problem) = rest.split_once(": ")?;
        Some(problem.trim().to_owned())
    })
}

/// A REST answer: status, head, and the body as JSON (`null` when it is not).
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: serde_json::Value,
}

/// Sends one REST request to `server` (a JSON body, when given).
pub fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    Answer {
        status: head[9..12].parse().unwrap(),
        head: head.to_owned(),
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    }
}

/// That `answer` is the error `code` with `status` and a message containing `message`.
pub fn assert_error(answer: &Answer, status: u16, code: &str, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.body);
    let text = answer.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        text.contains(message),
        "{text:?} should contain {message:?}"
    );
}

/// POSTs a JSON `body` to `path` over a raw connection with an `Authorization` header value.
pub fn post_json(addr: &str, path: &str, authorization: &str, body: &str) -> RawAnswer {
    raw_http(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// POSTs `body` to `url`'s git-receive-pack over a raw connection, with the URL's token.
pub fn post_receive_pack(url: &str, body: &[u8]) -> RawAnswer {
    let (host, path, token) = split_url(url);
    let mut request = format!(
        "POST {path}/git-receive-pack HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    raw_http(&host, &request)
}
