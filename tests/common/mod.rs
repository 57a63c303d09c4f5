//! Helpers for integration tests: run stock git and the real `forge` binary.
#![allow(dead_code)]

pub mod corpus;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn forge_bin() -> &'static str {
    env!("CARGO_BIN_EXE_forge")
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
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// A token with every right (the `admin` identity's).
    pub token: String,
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
        let mut line = String::new();
        stderr
            .read_line(&mut line)
            .expect("forge serve announces itself");
        let url = line
            .trim()
            .rsplit(" on ")
            .next()
            .expect("an address")
            .trim_end_matches('/')
            .to_owned();
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
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
        Server { child, url, token }
    }

    /// The base URL with the admin token as the password.
    pub fn auth_url(&self) -> String {
        self.url
            .replacen("http://", &format!("http://x:{}@", self.token), 1)
    }

    /// The URL of a repository, with the admin token.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.auth_url())
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
