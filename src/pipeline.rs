//! `forge pipeline run`: local CI that produces evidence. The steps come from
//! `.forge/pipeline.toml` at the commit under test and run in a clean, detached checkout
//! of exactly that commit (never the caller's work tree), each in its own process group
//! with a timeout and a cleared environment; the outcome becomes an in-toto test-result
//! statement about the commit and its tree.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::attest::Statement;
use crate::attest::statement::TEST_RESULT_TYPE;
use crate::object::Sha1;

pub const PIPELINE_FILE: &str = ".forge/pipeline.toml";
/// Bytes of a step's output kept in the statement.
const TAIL_BYTES: usize = 2048;
/// Environment variables a step sees, when set (everything else is cleared).
const ALLOWED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "GOPATH",
    "GOCACHE",
    "PYTHONPATH",
    "VIRTUAL_ENV",
];

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Git(String),
    #[error("{PIPELINE_FILE} at {commit}: {message}")]
    Config { commit: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl PipelineError {
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Git(_) => "git_failed",
            PipelineError::Config { .. } => "bad_pipeline",
            PipelineError::Io { .. } => "io_error",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    #[serde(rename = "step")]
    steps: Vec<Step>,
}

/// One step of `.forge/pipeline.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// Run by `sh -c` in the checkout.
    pub command: String,
    /// Seconds before the step's whole process group is killed.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Whether the result needs this step to pass.
    #[serde(default = "default_required")]
    pub required: bool,
}

fn default_timeout() -> u64 {
    600
}

fn default_required() -> bool {
    true
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutcome {
    pub name: String,
    pub required: bool,
    /// `None` when it was killed (timeout) or died by a signal.
    #[serde(rename = "exitCode")]
    pub exit_code: Option<i32>,
    #[serde(rename = "timedOut")]
    pub timed_out: bool,
    #[serde(rename = "durationSeconds")]
    pub duration_seconds: f64,
    /// Counts read from the output's summary lines (cargo test, pytest, go test).
    #[serde(rename = "passedCount", skip_serializing_if = "Option::is_none")]
    pub passed: Option<u64>,
    #[serde(rename = "failedCount", skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    #[serde(rename = "outputTail")]
    pub output_tail: String,
}

impl StepOutcome {
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// A finished run.
pub struct Run {
    pub commit: Sha1,
    pub tree: Sha1,
    pub config_blob: Sha1,
    pub steps: Vec<StepOutcome>,
}

impl Run {
    /// PASSED only if every required step passed.
    pub fn result(&self) -> &'static str {
        if self.steps.iter().all(|s| !s.required || s.passed()) {
            "PASSED"
        } else {
            "FAILED"
        }
    }

    /// The in-toto test-result statement about the commit and its tree.
    pub fn statement(&self) -> Statement {
        let names = |passed: bool| -> Vec<String> {
            self.steps
                .iter()
                .filter(|s| s.passed() == passed)
                .map(|s| s.name.clone())
                .collect()
        };
        let predicate = serde_json::json!({
            "result": self.result(),
            "configuration": [{
                "name": PIPELINE_FILE,
                "digest": { "gitBlob": self.config_blob.to_hex() },
            }],
            "passedTests": names(true),
            "failedTests": names(false),
            "steps": self.steps,
        });
        Statement::about_commit(self.commit, Some(self.tree), TEST_RESULT_TYPE, predicate)
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, PipelineError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| PipelineError::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(PipelineError::Git(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn sha1(text: &str) -> Result<Sha1, PipelineError> {
    Sha1::from_hex(text.as_bytes())
        .map_err(|_| PipelineError::Git(format!("expected a SHA-1, git said {text:?}")))
}

/// Runs the pipeline of `rev` (in the work tree `repo`), calling `progress` before and
/// after each step.
pub fn run(repo: &Path, rev: &str, progress: &mut dyn FnMut(&str)) -> Result<Run, PipelineError> {
    let commit = sha1(&git(
        repo,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?)?;
    let tree = sha1(&git(repo, &["rev-parse", &format!("{commit}^{{tree}}")])?)?;
    let config_blob = sha1(
        &git(repo, &["rev-parse", &format!("{commit}:{PIPELINE_FILE}")]).map_err(|_| {
            PipelineError::Config {
                commit: commit.to_hex(),
                message: "no such file".into(),
            }
        })?,
    )?;
    let text = git(repo, &["cat-file", "blob", &config_blob.to_hex()])?;
    let config: PipelineFile = toml::from_str(&text).map_err(|e| PipelineError::Config {
        commit: commit.to_hex(),
        message: e.to_string(),
    })?;
    if config.steps.is_empty() {
        return Err(PipelineError::Config {
            commit: commit.to_hex(),
            message: "no [[step]]".into(),
        });
    }
    let scratch = tempfile::tempdir().map_err(|e| PipelineError::Io {
        what: "a temporary directory".into(),
        source: e,
    })?;
    let checkout = scratch.path().join("checkout");
    let checkout_text = checkout.to_string_lossy().into_owned();
    git(
        repo,
        &[
            "worktree",
            "add",
            "--detach",
            "--quiet",
            &checkout_text,
            &commit.to_hex(),
        ],
    )?;
    let worktree = Worktree {
        repo: repo.to_owned(),
        path: checkout.clone(),
    };
    let mut steps = Vec::with_capacity(config.steps.len());
    for step in &config.steps {
        progress(&format!("step {}: {}", step.name, step.command));
        let outcome = run_step(&worktree.path, scratch.path(), step, commit)?;
        let verdict = if outcome.passed() {
            "passed".to_owned()
        } else if outcome.timed_out {
            format!("timed out after {} s", step.timeout)
        } else {
            format!("failed (exit {:?})", outcome.exit_code)
        };
        progress(&format!(
            "step {}: {verdict} in {:.1} s",
            step.name, outcome.duration_seconds
        ));
        steps.push(outcome);
    }
    drop(worktree);
    Ok(Run {
        commit,
        tree,
        config_blob,
        steps,
    })
}

/// A detached worktree, removed (with its administrative files) when dropped.
struct Worktree {
    repo: PathBuf,
    path: PathBuf,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let path = self.path.to_string_lossy().into_owned();
        let _ = git(&self.repo, &["worktree", "remove", "--force", &path]);
        let _ = git(&self.repo, &["worktree", "prune"]);
    }
}

fn run_step(
    checkout: &Path,
    scratch: &Path,
    step: &Step,
    commit: Sha1,
) -> Result<StepOutcome, PipelineError> {
    use std::os::unix::process::CommandExt;
    let io = |what: &str| {
        let what = format!("{what} for step {}", step.name);
        move |source| PipelineError::Io { what, source }
    };
    let log_path = scratch.join(format!("step-{}.log", steps_file_name(&step.name)));
    let log = std::fs::File::create(&log_path).map_err(io("a log file"))?;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&step.command)
        .current_dir(checkout)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("the log"))?)
        .stderr(log)
        .process_group(0);
    for name in ALLOWED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.env("FORGE_PIPELINE_COMMIT", commit.to_hex());
    let started = Instant::now();
    let mut child = command.spawn().map_err(io("starting sh"))?;
    let limit = Duration::from_secs(step.timeout);
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io("waiting"))? {
            break status;
        }
        if started.elapsed() >= limit {
            timed_out = true;
            // The whole group: a step's children die with it.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            break child.wait().map_err(io("waiting"))?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let duration_seconds = started.elapsed().as_secs_f64();
    let mut output = Vec::new();
    std::fs::File::open(&log_path)
        .and_then(|mut f| f.read_to_end(&mut output))
        .map_err(io("reading the log"))?;
    let text = String::from_utf8_lossy(&output);
    let (passed, failed) = test_counts(&text);
    Ok(StepOutcome {
        name: step.name.clone(),
        required: step.required,
        exit_code: if timed_out { None } else { status.code() },
        timed_out,
        duration_seconds: (duration_seconds * 1000.0).round() / 1000.0,
        passed,
        failed,
        output_tail: tail(&text, TAIL_BYTES),
    })
}

fn steps_file_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(64)
        .collect()
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Passed and failed test counts from summary lines it recognises: cargo test's
/// `test result: … N passed; M failed`, pytest's `=== N passed, M failed in 1.2s ===`, go
/// test's `--- PASS:` / `--- FAIL:` lines. `None` when the output has none.
pub fn test_counts(output: &str) -> (Option<u64>, Option<u64>) {
    let mut passed: Option<u64> = None;
    let mut failed: Option<u64> = None;
    let add = |slot: &mut Option<u64>, n: u64| *slot = Some(slot.unwrap_or(0) + n);
    for line in output.lines() {
        let line = line.trim();
        let counted = |word: &str| -> Option<u64> {
            let words: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .filter(|w| !w.is_empty())
                .collect();
            words
                .windows(2)
                .find(|pair| pair[1] == word)
                .and_then(|pair| pair[0].parse().ok())
        };
        let cargo = line.starts_with("test result:");
        let pytest = line.starts_with('=') && line.ends_with('=') && line.contains(" in ");
        if cargo || pytest {
            if let Some(n) = counted("passed") {
                add(&mut passed, n);
            }
            if let Some(n) = counted("failed") {
                add(&mut failed, n);
            } else if passed.is_some() {
                add(&mut failed, 0);
            }
        } else if line.starts_with("--- PASS:") {
            add(&mut passed, 1);
        } else if line.starts_with("--- FAIL:") {
            add(&mut failed, 1);
        }
    }
    (passed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_of_cargo_pytest_and_go() {
        let cargo = "running 3 tests\ntest a ... ok\ntest result: ok. 3 passed; 0 failed; 0 ignored\n\
                     test result: FAILED. 1 passed; 2 failed; 0 ignored\n";
        assert_eq!(test_counts(cargo), (Some(4), Some(2)));
        let pytest = "collected 5 items\n==== 4 passed, 1 failed in 0.12s ====\n";
        assert_eq!(test_counts(pytest), (Some(4), Some(1)));
        let only_passed = "======== 7 passed in 1.03s ========\n";
        assert_eq!(test_counts(only_passed), (Some(7), Some(0)));
        let go = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n--- FAIL: TestB (0.00s)\n--- PASS: TestC\nFAIL\n";
        assert_eq!(test_counts(go), (Some(2), Some(1)));
        assert_eq!(test_counts("make: nothing to do\n"), (None, None));
        assert_eq!(tail("héllo", 4), "llo");
    }
}
