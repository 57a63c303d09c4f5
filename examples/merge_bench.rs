//! Server-side merges (`gitx::merge_commits`) against `git merge-tree --write-tree` on the
//! same commit pairs of a real history:
//! `cargo run --release --example merge_bench -- GIT_DIR RUNS OURS:THEIRS ...`.
//!
//! The git repository is imported into a fresh data directory first (`import::import`, as
//! `forge import` does). For each pair, both revisions are resolved to full SHA-1s, so the
//! conflict labels of both sides are the same (`MergeLabels::of_commits`), then
//! `git merge-tree --write-tree OURS THEIRS` runs `RUNS` times (wall time of the whole
//! process, its objects written into a scratch object directory with the repository as its
//! alternate, so the source is left as it was) and `merge_commits` `RUNS` times over the
//! store (in process, writing nothing). Medians are printed as a Markdown table: the merge
//! bases, clean or not, the conflicted paths of each (with whether the two sets are the
//! same), whether the merged trees are the same object (conflicted ones too: markers and
//! all), and the times. When trees differ, the forge's new objects are written into the
//! scratch directory and the paths that differ are listed (`MERGE_BENCH_DIFF=1` prints the
//! whole diff; `MERGE_BENCH_OBJECTS=DIR` keeps the scratch objects in `DIR`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use forge::gitx::{MergeLabels, MergeLimits, MergeOutcome};
use forge::object::{Kind, Sha1};
use forge::progress::Progress;
use forge::store::{DataDir, RepoName};

/// git run on the source repository, writing new objects into `scratch` only.
struct Git {
    git_dir: PathBuf,
    scratch: PathBuf,
}

impl Git {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command
            .arg("--git-dir")
            .arg(&self.git_dir)
            .args(args)
            .env("GIT_OBJECT_DIRECTORY", &self.scratch)
            .env(
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                self.git_dir.join("objects"),
            )
            .stdin(Stdio::null());
        command
    }

    fn output(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("running git {args:?}"))
    }

    /// stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.output(args)?;
        ensure!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    fn commit(&self, rev: &str) -> anyhow::Result<Sha1> {
        let hex = self.ok(&["rev-parse", "--verify", &format!("{rev}^{{commit}}")])?;
        Sha1::from_hex(hex.trim().as_bytes()).map_err(|e| anyhow::anyhow!("{rev}: {e:?}"))
    }

    /// Writes an object the forge's merge made, returning the id git gave it.
    fn write_object(&self, kind: Kind, body: &[u8]) -> anyhow::Result<String> {
        use std::io::Write;
        let mut child = self
            .command(&[
                "hash-object",
                "-w",
                "--literally",
                "-t",
                kind.as_str(),
                "--stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        child.stdin.take().unwrap().write_all(body)?;
        let out = child.wait_with_output()?;
        ensure!(out.status.success(), "git hash-object failed");
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }
}

/// What `git merge-tree --write-tree -z` printed: the tree and the conflicted paths.
struct GitMerge {
    tree: String,
    clean: bool,
    conflicted: BTreeSet<Vec<u8>>,
}

fn git_merge(git: &Git, ours: &str, theirs: &str) -> anyhow::Result<GitMerge> {
    let out = git.output(&["merge-tree", "--write-tree", "-z", ours, theirs])?;
    let clean = match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => bail!(
            "git merge-tree {ours} {theirs} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    // TREE NUL, then `MODE ID STAGE TAB PATH` NUL per stage, then an empty field and the
    // informational messages.
    let mut fields = out.stdout.split(|&b| b == 0);
    let tree = String::from_utf8(fields.next().unwrap_or_default().to_vec())?;
    let mut conflicted = BTreeSet::new();
    if !clean {
        for field in fields {
            if field.is_empty() {
                break;
            }
            let tab = field
                .iter()
                .position(|&b| b == b'\t')
                .context("conflicted file info without a path")?;
            conflicted.insert(field[tab + 1..].to_vec());
        }
    }
    Ok(GitMerge {
        tree,
        clean,
        conflicted,
    })
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

struct Row {
    pair: String,
    bases: String,
    clean: String,
    conflicts: String,
    identical: bool,
    git_ms: f64,
    forge_ms: f64,
    read: String,
    new_objects: usize,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    ensure!(
        args.len() >= 3,
        "usage: merge_bench GIT_DIR RUNS OURS:THEIRS [OURS:THEIRS ...]"
    );
    let git_dir = Path::new(&args[0]).canonicalize()?;
    let runs: usize = args[1].parse().context("RUNS")?;
    ensure!(runs > 0, "RUNS must be at least 1");
    let show_diff = std::env::var_os("MERGE_BENCH_DIFF").is_some();

    let tmp = tempfile::tempdir()?;
    // `MERGE_BENCH_OBJECTS=DIR` keeps the objects both sides wrote, to look at afterwards.
    let scratch = match std::env::var_os("MERGE_BENCH_OBJECTS") {
        Some(dir) => PathBuf::from(dir),
        None => tmp.path().join("objects"),
    };
    std::fs::create_dir_all(&scratch)?;
    let git = Git {
        git_dir: git_dir.clone(),
        scratch,
    };

    let data = DataDir::open_or_init(&tmp.path().join("data"))?;
    let name = RepoName::parse("bench/merge")?;
    let (repo, _) = data.open_or_create_repo(&name)?;
    let report = forge::import::import(&repo, &git_dir, &Progress::new(false))?;
    eprintln!(
        "imported {} objects and {} refs in {:.1} s",
        report.objects, report.refs, report.seconds
    );

    // What starting a git process costs here, to read the small merges' times against.
    let mut startup = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        git.ok(&["rev-parse", "--git-dir"])?;
        startup.push(started.elapsed().as_secs_f64() * 1e3);
    }

    let mut rows = Vec::new();
    for pair in &args[2..] {
        let (ours_rev, theirs_rev) = pair
            .split_once(':')
            .with_context(|| format!("{pair}: not OURS:THEIRS"))?;
        let (ours, theirs) = (git.commit(ours_rev)?, git.commit(theirs_rev)?);
        let (ours_hex, theirs_hex) = (ours.to_hex(), theirs.to_hex());
        let git_bases = git
            .ok(&["merge-base", "--all", &ours_hex, &theirs_hex])?
            .lines()
            .count();

        let mut git_times = Vec::new();
        let mut first_line = None;
        for _ in 0..runs {
            let started = Instant::now();
            let out = git.output(&["merge-tree", "--write-tree", &ours_hex, &theirs_hex])?;
            git_times.push(started.elapsed().as_secs_f64() * 1e3);
            ensure!(
                matches!(out.status.code(), Some(0 | 1)),
                "git merge-tree {pair} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8(out.stdout)?;
            first_line.get_or_insert_with(|| stdout.lines().next().unwrap_or("").to_owned());
        }
        let first_line = first_line.unwrap_or_default();
        // Once more with -z (untimed) for the conflicted paths, unquoted.
        let git_merged = git_merge(&git, &ours_hex, &theirs_hex)?;
        ensure!(git_merged.tree == first_line, "{pair}: git's tree moved");

        let labels = MergeLabels::of_commits(&ours, &theirs);
        let mut forge_times = Vec::new();
        let mut outcome: Option<MergeOutcome> = None;
        for _ in 0..runs {
            let started = Instant::now();
            let result =
                forge::gitx::merge_commits(&repo, ours, theirs, &labels, MergeLimits::default())
                    .with_context(|| format!("merge_commits {pair}"))?;
            forge_times.push(started.elapsed().as_secs_f64() * 1e3);
            outcome.get_or_insert(result);
        }
        let outcome = outcome.expect("at least one run");

        let forge_paths: BTreeSet<Vec<u8>> =
            outcome.conflicts.iter().map(|c| c.path.to_vec()).collect();
        let same_paths = forge_paths == git_merged.conflicted;
        let identical = outcome.tree.to_hex() == first_line;
        if !identical {
            for object in &outcome.new_objects {
                let id = git.write_object(object.kind, &object.body)?;
                ensure!(
                    id == object.sha1.to_hex(),
                    "{pair}: git names {id} otherwise"
                );
            }
            let tree = outcome.tree.to_hex();
            let names = git.ok(&["diff-tree", "-r", "--name-status", &first_line, &tree])?;
            eprintln!("{pair}: trees differ (git {first_line}, forge {tree}):\n{names}");
            if show_diff {
                eprintln!("{}", git.ok(&["diff", &first_line, &tree])?);
            }
        }
        if !same_paths {
            let show = |set: &BTreeSet<Vec<u8>>| -> Vec<String> {
                set.iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect()
            };
            eprintln!(
                "{pair}: conflicted paths differ: only forge {:?}, only git {:?}",
                show(
                    &forge_paths
                        .difference(&git_merged.conflicted)
                        .cloned()
                        .collect()
                ),
                show(
                    &git_merged
                        .conflicted
                        .difference(&forge_paths)
                        .cloned()
                        .collect()
                ),
            );
        }

        let forge_bases = outcome.merge_bases.len();
        rows.push(Row {
            pair: pair.clone(),
            bases: if forge_bases == git_bases {
                forge_bases.to_string()
            } else {
                format!("{forge_bases} (git {git_bases})")
            },
            clean: if outcome.clean == git_merged.clean {
                yes_no(outcome.clean).to_owned()
            } else {
                format!(
                    "forge {}, git {}",
                    yes_no(outcome.clean),
                    yes_no(git_merged.clean)
                )
            },
            conflicts: format!(
                "{} / {}{}",
                forge_paths.len(),
                git_merged.conflicted.len(),
                if same_paths { "" } else { " (differ)" }
            ),
            identical,
            git_ms: median(git_times),
            forge_ms: median(forge_times),
            read: format!(
                "{} / {:.1} MiB",
                outcome.read.objects,
                outcome.read.bytes as f64 / (1 << 20) as f64
            ),
            new_objects: outcome.new_objects.len(),
        });
    }

    println!(
        "git process start (`git rev-parse --git-dir`): {:.1} ms",
        median(startup)
    );
    println!("medians of {runs} runs\n");
    println!(
        "| pair (ours:theirs) | merge bases | clean | conflicted paths forge / git | trees identical | git merge-tree | forge merge_commits | forge ÷ git | forge read (objects / bytes) | new objects |"
    );
    println!("|---|---:|---|---:|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.2} | {} | {} |",
            r.pair,
            r.bases,
            r.clean,
            r.conflicts,
            yes_no(r.identical),
            r.git_ms,
            r.forge_ms,
            r.forge_ms / r.git_ms,
            r.read,
            r.new_objects
        );
    }
    Ok(())
}
