//! `kill -9` during an import: the store still opens, fsck passes, and the import can be run
//! again to completion.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::corpus::synthetic_history;
use common::{Forge, clone_work, commit_file, git, snapshot};

fn has_temporary_segment(data: &Path) -> bool {
    let Ok(repos) = std::fs::read_dir(data.join("repos")) else {
        return false;
    };
    repos.flatten().any(|repo| {
        std::fs::read_dir(repo.path().join("objects")).is_ok_and(|files| {
            files
                .flatten()
                .any(|f| f.file_name().to_string_lossy().starts_with("tmp-"))
        })
    })
}

#[test]
fn killed_imports_leave_a_sound_store_and_can_be_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 400);
    // Large, poorly compressible blobs make the import last long enough to be cut off.
    let work = tmp.path().join("work");
    clone_work(&source, &work);
    for i in 0..12 {
        let bytes = common::noise(0x2545F4914F6CDD1D + i, 3_000_000, |s| (s % 251) as u8);
        commit_file(&work, &format!("big{i}.bin"), bytes, &format!("big {i}"));
    }
    git(&work, &["push", "-q", "origin", "main"]);
    git(&source, &["repack", "-adq"]);

    let data = tmp.path().join("data");
    let forge = Forge::new(&data);
    // The data directory exists before the first kill (as in the original rounds).
    forge.ok(&["repo", "create", "alice/seed"]);
    let mut kills_while_running = 0;
    let mut kills_while_writing = 0;
    let delays = [5u64, 40, 120, 250, 400, 700, 1000, 1500, 2500];
    // A repository per round: an import into a repository that already holds the objects
    // skips them and would end too soon to be cut off.
    let name = |round: usize| format!("alice/r{round}");
    for (round, delay) in delays.iter().enumerate() {
        let mut child = forge
            .command(&["import", &name(round), source.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        // Every other round waits for the segment being written; the others kill at a time.
        let wait_for_writing = round % 2 == 1;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let writing = has_temporary_segment(&data);
            if (wait_for_writing && writing)
                || (!wait_for_writing && started.elapsed() >= Duration::from_millis(*delay))
            {
                child.kill().unwrap();
                kills_while_running += 1;
                kills_while_writing += usize::from(writing);
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                panic!("import did not finish");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.wait().unwrap();
        // Whatever the moment, the store opens and is sound.
        let fsck = forge.json(&["fsck"]);
        assert_eq!(fsck["ok"], true, "after a kill at round {round}: {fsck}");
        forge.ok(&["repo", "list"]);
    }
    assert!(
        kills_while_running >= 5,
        "{kills_while_running} kills landed"
    );
    assert!(
        kills_while_writing >= 2,
        "{kills_while_writing} kills while writing"
    );

    let last = name(delays.len() - 1);
    forge.ok(&["import", &last, source.to_str().unwrap()]);
    let fsck = forge.json(&["fsck", &last]);
    assert_eq!(fsck["ok"], true, "{fsck}");
    assert_eq!(
        fsck["repos"][0]["notes"].as_array().unwrap().len(),
        0,
        "{fsck}"
    );
    let out = tmp.path().join("export.git");
    forge.ok(&["export", &last, out.to_str().unwrap()]);
    assert_eq!(snapshot(&source), snapshot(&out));
}
