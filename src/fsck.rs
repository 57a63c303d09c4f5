//! `forge fsck`: re-derives every id and checks that every ref reaches a complete history.
//!
//! For each stored object: the content is read (resolving deltas), its native id recomputed
//! from it, its git form regenerated and hashed to the recorded SHA-1, the git form translated
//! back to the same native object, and every object it refers to looked up. Since every
//! stored object's children are checked, a ref whose target is stored reaches a complete
//! history. Segment files are checked against their checksums.

use parking_lot::Mutex;
use std::collections::HashSet;

use bstr::ByteSlice;
use serde::Serialize;

use crate::git::{check_ref_name, git_sha1, git_to_native, native_to_git};
use crate::object::{Kind, ObjectId, decode, native_id};
use crate::progress::Progress;
use crate::store::{ObjectLocation, RefTarget, Repo, StoreError};

#[derive(Debug, Default, Clone, Serialize)]
pub struct FsckReport {
    pub repo: String,
    pub objects: u64,
    pub refs: u64,
    /// Everything wrong; empty means the repository is sound.
    pub problems: Vec<String>,
    /// Worth knowing, not wrong (leftovers of interrupted writes, dangling symbolic refs).
    pub notes: Vec<String>,
}

pub fn fsck(repo: &Repo, progress: &Progress) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport {
        repo: repo.name().to_owned(),
        ..FsckReport::default()
    };
    for name in repo.corrupt_segments() {
        report.problems.push(format!(
            "segment {name}: its bytes do not match its checksum"
        ));
    }

    let mut seen = HashSet::new();
    let mut locations = Vec::new();
    repo.for_each_entry(|location, _| -> Result<(), StoreError> {
        if seen.insert(location.id()) {
            locations.push(location.clone());
        }
        Ok(())
    })?;
    report.objects = locations.len() as u64;
    progress.phase("Checking objects", Some(report.objects));
    let problems = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = locations.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in locations.chunks(chunk) {
            let problems = &problems;
            scope.spawn(move || {
                for location in part {
                    if let Err(problem) = check_object(repo, location) {
                        problems.lock().push(problem);
                    }
                    progress.inc(1);
                }
            });
        }
    });
    let mut problems = problems.into_inner();
    problems.sort();
    report.problems.extend(problems);

    for (name, target) in repo.refs()? {
        report.refs += 1;
        if let Err(reason) = check_ref_name(&name) {
            report
                .problems
                .push(format!("ref {}: invalid name: {reason}", name.as_bstr()));
        }
        match target {
            RefTarget::Direct(id) => {
                if !repo.contains(&id) {
                    report.problems.push(format!(
                        "ref {} points to {id}, which is not stored",
                        name.as_bstr()
                    ));
                }
            }
            RefTarget::Symbolic(target) => {
                if repo.read_ref(&target)?.is_none() {
                    report.notes.push(format!(
                        "{} points to {}, which does not exist yet",
                        name.as_bstr(),
                        target.as_bstr()
                    ));
                }
            }
        }
    }
    let leftovers = repo.unregistered_files()?;
    if !leftovers.is_empty() {
        report.notes.push(format!(
            "{} unregistered file(s), left by an interrupted write or being written now (unused; the next import or push removes leftovers)",
            leftovers.len()
        ));
    }
    let unfinished = crate::packing::repack::unfinished_repacks(repo.dir());
    if !unfinished.is_empty() {
        let bytes: u64 = unfinished.iter().map(|(_, size)| size).sum();
        report.notes.push(format!(
            "{} temporary pack file(s) ({bytes} bytes) left by an interrupted repack (derived data; the next repack or server start removes them)",
            unfinished.len()
        ));
    }
    progress.finish();
    Ok(report)
}

fn check_object(repo: &Repo, location: &ObjectLocation) -> Result<(), String> {
    let id = location.id();
    let sha1 = location.sha1();
    let describe = |what: String| format!("object {id} (git {sha1}): {what}");
    let (kind, content) = repo
        .read_content(location)
        .map_err(|e| describe(e.to_string()))?;
    if location.kind() != Some(kind) {
        return Err(describe(format!(
            "indexed as {:?} but stored as {kind}",
            location.kind()
        )));
    }
    if kind == Kind::Blob {
        let actual = ObjectId::for_blob(&content);
        if actual != id {
            return Err(describe(format!("content hashes to {actual}")));
        }
        let actual = git_sha1(kind, &content);
        if actual != sha1 {
            return Err(describe(format!("git form hashes to {actual}")));
        }
        return Ok(());
    }
    let actual = native_id(kind, &content);
    if actual != id {
        return Err(describe(format!("native encoding hashes to {actual}")));
    }
    let native = decode(kind, &content).map_err(|e| describe(e.to_string()))?;
    let mut missing = Vec::new();
    native.for_each_child(|child| {
        if !repo.contains(&child) {
            missing.push(child);
        }
    });
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(ObjectId::to_hex).collect();
        return Err(describe(format!(
            "refers to missing object(s) {}",
            list.join(", ")
        )));
    }
    let git = native_to_git(&native, |child| repo.sha1_of(&child).ok_or(child))
        .map_err(|child| describe(format!("refers to missing object {child}")))?;
    let actual = git_sha1(kind, &git);
    if actual != sha1 {
        return Err(describe(format!("git form hashes to {actual}")));
    }
    let again = git_to_native(kind, &git, |child| repo.id_of_sha1(&child).ok_or(child))
        .map_err(|child| describe(format!("git form refers to unknown {child}")))?;
    if again != native {
        return Err(describe(
            "git form translates back to a different native object".into(),
        ));
    }
    Ok(())
}
