//! Server-side merges (`gitx::merge_commits`) over histories stock git built and `forge
//! import` stored, each compared with `git merge-tree --write-tree` on the same repository:
//! the tree id byte for byte (conflicted ones too, markers and all), the exit status, the
//! conflicted file info (mode, id, stage, path) and, for each conflicted path, the kind of
//! conflict git names. The new objects the merge lists are then written into a clone of the
//! repository by `git hash-object --literally` (same ids, `git fsck` clean, the tree
//! complete) and into the forge's own store (read back byte for byte).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use forge::git::git_to_native;
use forge::gitx::{ConflictKind, MergeError, MergeLabels, MergeLimits, MergeOutcome};
use forge::object::{Kind, ObjectId, Sha1, encode, native_id};
use forge::store::{DataDir, RepoName};

use crate::common::{self, Forge, git, git_output};

/// A git work tree for one case, whose branches `ours` and `theirs` get merged.
struct Case {
    dir: tempfile::TempDir,
    work: PathBuf,
    data: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        Case {
            data: dir.path().join("data"),
            work,
            dir,
        }
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let path = self.work.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn make_executable(&self, path: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.work.join(path);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn remove(&self, path: &str) {
        git(&self.work, &["rm", "-q", "-r", path]);
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.work, args)
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Starts branch `name` at `from` and checks it out.
    fn branch(&self, name: &str, from: &str) {
        self.git(&["checkout", "-q", "-b", name, from]);
    }

    fn checkout(&self, name: &str) {
        self.git(&["checkout", "-q", name]);
    }

    /// `git merge` of `branch` into the current branch, however it goes, committing what it
    /// leaves (conflicts resolved by `resolve` first).
    fn merge(&self, branch: &str, resolve: impl FnOnce(&Case)) -> String {
        git_output(
            &self.work,
            &["merge", "-q", "--no-ff", "-m", "merge", branch],
            None,
        );
        resolve(self);
        self.git(&["add", "-A"]);
        // A clean merge committed itself; a conflicted one is committed here.
        let _ = git_output(&self.work, &["commit", "-q", "--no-edit"], None);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    fn sha1(&self, rev: &str) -> Sha1 {
        let hex = self.git(&["rev-parse", rev]);
        Sha1::from_hex(hex.trim().as_bytes()).unwrap()
    }

    /// Imports the repository into a fresh data directory, before git's merge-tree writes
    /// its result into the repository (an import takes every object there, reachable or
    /// not).
    fn import(&self) {
        if !self.data.exists() {
            Forge::new(&self.data).ok(&["import", "t/case", self.work.to_str().unwrap()]);
        }
    }

    /// Merges `theirs` into `ours` in the forge's store, with git's labels.
    fn forge_merge(&self, limits: MergeLimits) -> Result<MergeOutcome, MergeError> {
        self.import();
        let data = DataDir::open(&self.data).unwrap();
        let repo = data.open_repo(&RepoName::parse("t/case").unwrap()).unwrap();
        forge::gitx::merge_commits(
            &repo,
            self.sha1("ours"),
            self.sha1("theirs"),
            &MergeLabels::new("ours", "theirs"),
            limits,
        )
    }
}

/// What `git merge-tree --write-tree -z ours theirs` printed.
#[derive(Debug)]
struct GitMerge {
    clean: bool,
    tree: String,
    /// (mode, id, stage, path), as git lists them.
    stages: Vec<(String, String, u8, String)>,
    /// (paths, type) of every message, e.g. `CONFLICT (contents)`.
    messages: Vec<(Vec<String>, String)>,
}

fn git_merge_tree(work: &Path) -> GitMerge {
    let out = git_output(
        work,
        &["merge-tree", "--write-tree", "-z", "ours", "theirs"],
        None,
    );
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "git merge-tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split('\0');
    let tree = fields.next().unwrap().to_owned();
    let mut stages = Vec::new();
    for field in fields.by_ref() {
        if field.is_empty() {
            break;
        }
        let (info, path) = field.split_once('\t').unwrap();
        let parts: Vec<&str> = info.split(' ').collect();
        stages.push((
            parts[0].to_owned(),
            parts[1].to_owned(),
            parts[2].parse().unwrap(),
            path.to_owned(),
        ));
    }
    let mut messages = Vec::new();
    while let Some(count) = fields.next().filter(|f| !f.is_empty()) {
        let count: usize = count.parse().unwrap();
        let paths = (0..count)
            .map(|_| fields.next().unwrap().to_owned())
            .collect();
        let kind = fields.next().unwrap().to_owned();
        let _message = fields.next().unwrap();
        messages.push((paths, kind));
    }
    GitMerge {
        clean: code == Some(0),
        tree,
        stages,
        messages,
    }
}

/// The message type git gives each conflict kind.
fn git_type(kind: ConflictKind) -> &'static [&'static str] {
    match kind {
        ConflictKind::Content | ConflictKind::AddAdd => &["CONFLICT (contents)"],
        ConflictKind::Binary | ConflictKind::Symlink => &["CONFLICT (binary)"],
        ConflictKind::ModifyDelete => &["CONFLICT (modify/delete)"],
        ConflictKind::RenameDelete => &["CONFLICT (rename/delete)"],
        ConflictKind::RenameRename => &["CONFLICT (rename/rename)"],
        ConflictKind::RenameCollision => &[
            "CONFLICT (rename involved in collision)",
            "CONFLICT (contents)",
        ],
        ConflictKind::DirectoryFile => &["CONFLICT (file/directory)"],
        ConflictKind::TypeMismatch => &["CONFLICT (distinct modes)"],
        ConflictKind::Submodule => &[
            "CONFLICT (submodule)",
            "CONFLICT (submodule not initialized)",
            "CONFLICT (submodule history not available)",
            "CONFLICT (submodule lacks merge base)",
            "CONFLICT (submodule may have rewinds)",
        ],
        ConflictKind::FileLocation => &[
            "CONFLICT (file location)",
            "CONFLICT (directory rename suggested)",
        ],
        ConflictKind::Unknown => &[],
    }
}

/// Merges in the forge and with git and checks they agree in everything git shows; then
/// checks the new objects are what storing the tree takes. Returns both for the case's own
/// checks.
fn compare(case: &Case) -> (MergeOutcome, GitMerge) {
    case.import();
    let expected = git_merge_tree(&case.work);
    let outcome = case.forge_merge(MergeLimits::default()).unwrap();
    assert_eq!(
        outcome.tree.to_hex(),
        expected.tree,
        "tree ids: {expected:#?}"
    );
    assert_eq!(outcome.clean, expected.clean, "{expected:#?}");

    let stages: Vec<(String, String, u8, String)> = outcome
        .conflicts
        .iter()
        .flat_map(|c| {
            c.stages.iter().enumerate().filter_map(move |(i, stage)| {
                stage.map(|s| {
                    (
                        format!("{:06o}", s.mode),
                        s.id.to_hex(),
                        i as u8 + 1,
                        c.path.to_string(),
                    )
                })
            })
        })
        .collect();
    assert_eq!(stages, expected.stages, "conflicted file info");
    for conflict in &outcome.conflicts {
        let path = conflict.path.to_string();
        let types: BTreeSet<&str> = expected
            .messages
            .iter()
            .filter(|(paths, _)| paths.contains(&path))
            .map(|(_, kind)| kind.as_str())
            .collect();
        assert!(
            git_type(conflict.kind).iter().any(|t| types.contains(t)),
            "{path}: {} but git says {types:?}",
            conflict.kind
        );
    }
    // The merge bases are git's.
    let mut bases: Vec<String> = outcome.merge_bases.iter().map(Sha1::to_hex).collect();
    bases.sort();
    let mut git_bases: Vec<String> = case
        .git(&["merge-base", "--all", "ours", "theirs"])
        .lines()
        .map(str::to_owned)
        .collect();
    git_bases.sort();
    assert_eq!(bases, git_bases);

    check_new_objects(case, &outcome);
    (outcome, expected)
}

/// The new objects are exactly what the tree needs beyond the repository, in an order a
/// writer can take: into a clone by git (ids, fsck, completeness), and into the forge's
/// store as native objects, read back as the same git bytes.
fn check_new_objects(case: &Case, outcome: &MergeOutcome) {
    let clone = case.dir.path().join(format!("check-{}", outcome.tree));
    git(
        case.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--no-local",
            case.work.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let mut seen: BTreeSet<Sha1> = BTreeSet::new();
    for object in &outcome.new_objects {
        // Each object's children are in the clone already or came before it.
        if object.kind == Kind::Tree {
            for entry in tree_entries(&object.body) {
                let (mode, id) = entry;
                if mode != "160000" {
                    let present = git_output(&clone, &["cat-file", "-e", &id.to_hex()], None);
                    assert!(
                        present.status.success() || seen.contains(&id),
                        "{id} is named by {} before it is written",
                        object.sha1
                    );
                }
            }
        }
        let written = common::literally(&clone, object.kind.as_str(), &object.body);
        assert_eq!(written, object.sha1.to_hex());
        assert!(seen.insert(object.sha1), "{} is listed twice", object.sha1);
    }
    // Nothing listed was in the repository already, and the tree is complete now.
    let before = common::reachable_objects(&case.work);
    assert!(
        outcome
            .new_objects
            .iter()
            .all(|o| !before.contains(&o.sha1.to_hex()))
    );
    git(&clone, &["ls-tree", "-r", "-t", &outcome.tree.to_hex()]);
    let fsck = git_output(&clone, &["fsck", "--strict", "--no-dangling"], None);
    assert!(
        fsck.status.success() && fsck.stdout.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );

    // Into the forge's store, as a writer would: children's native ids first.
    let data = DataDir::open(&case.data).unwrap();
    let repo = data.open_repo(&RepoName::parse("t/case").unwrap()).unwrap();
    let mut native: std::collections::HashMap<Sha1, ObjectId> = Default::default();
    let mut segment = repo.new_segment().unwrap();
    for object in &outcome.new_objects {
        let (id, content) = match object.kind {
            Kind::Blob => (ObjectId::for_blob(&object.body), object.body.clone()),
            kind => {
                let translated = git_to_native(kind, &object.body, |child| {
                    native
                        .get(&child)
                        .copied()
                        .or_else(|| repo.id_of_sha1(&child))
                        .ok_or(child)
                })
                .unwrap();
                let encoded = encode(&translated);
                (native_id(kind, &encoded), encoded)
            }
        };
        native.insert(object.sha1, id);
        segment
            .append_full(id, object.sha1, object.kind, &content)
            .unwrap();
    }
    repo.commit(Some(segment), &[]).unwrap();
    for object in &outcome.new_objects {
        let location = repo.locate_sha1(&object.sha1).unwrap();
        assert_eq!(
            repo.git_object(&location).unwrap(),
            (object.kind, object.body.clone())
        );
    }
}

fn tree_entries(body: &[u8]) -> Vec<(String, Sha1)> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').unwrap();
        let nul = rest.iter().position(|&b| b == 0).unwrap();
        let mode = String::from_utf8(rest[..space].to_vec()).unwrap();
        out.push((mode, Sha1::from_bytes(&rest[nul + 1..nul + 21]).unwrap()));
        rest = &rest[nul + 21..];
    }
    out
}

fn lines(n: usize, tag: &str) -> String {
    (1..=n).map(|i| format!("line {i} {tag}\n")).collect()
}

/// `lines(n)` with line `at` replaced.
fn edited(n: usize, at: usize, text: &str) -> String {
    (1..=n)
        .map(|i| {
            if i == at {
                format!("{text}\n")
            } else {
                format!("line {i} base\n")
            }
        })
        .collect()
}

/// A base commit on main, `ours` and `theirs` branched from it, each given its changes.
fn diverge(
    case: &Case,
    base: impl FnOnce(&Case),
    ours: impl FnOnce(&Case),
    theirs: impl FnOnce(&Case),
) {
    base(case);
    case.commit("base");
    case.branch("ours", "main");
    ours(case);
    case.commit("ours");
    case.branch("theirs", "main");
    theirs(case);
    case.commit("theirs");
}

fn kinds(outcome: &MergeOutcome) -> Vec<(String, ConflictKind)> {
    outcome
        .conflicts
        .iter()
        .map(|c| (c.path.to_string(), c.kind))
        .collect()
}

#[test]
fn disjoint_edits_and_new_directories_merge_clean() {
    let case = Case::new();
    diverge(
        &case,
        |c| {
            c.write("a.txt", lines(5, "base"));
            c.write("dir/b.txt", lines(5, "base"));
        },
        |c| c.write("a.txt", lines(5, "ours")),
        |c| {
            c.write("dir/b.txt", lines(5, "theirs"));
            c.write("new/deep/c.txt", "added by theirs\n");
        },
    );
    let (outcome, _) = compare(&case);
    assert!(outcome.clean && outcome.conflicts.is_empty());
    // Every blob is one side's: only trees are new, the root last.
    assert!(outcome.new_objects.iter().all(|o| o.kind == Kind::Tree));
    assert_eq!(outcome.new_objects.last().unwrap().sha1, outcome.tree);
}

#[test]
fn different_hunks_of_one_file_merge_into_a_new_blob() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("f.txt", lines(12, "base")),
        |c| c.write("f.txt", edited(12, 1, "first, by ours")),
        |c| c.write("f.txt", edited(12, 11, "eleventh, by theirs")),
    );
    let (outcome, _) = compare(&case);
    assert!(outcome.clean);
    let blob = outcome
        .new_objects
        .iter()
        .find(|o| o.kind == Kind::Blob)
        .expect("the merged file is new");
    let text = String::from_utf8(blob.body.clone()).unwrap();
    assert!(text.starts_with("first, by ours\n") && text.contains("eleventh, by theirs\n"));
}

#[test]
fn files_added_on_both_sides_merge_clean() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("README", "base\n"),
        |c| {
            c.write("x/ours.txt", "ours\n");
            c.write("same.txt", "identical on both sides\n");
        },
        |c| {
            c.write("x/theirs.txt", "theirs\n");
            c.write("same.txt", "identical on both sides\n");
        },
    );
    let (outcome, _) = compare(&case);
    assert!(outcome.clean);
}

#[test]
fn overlapping_edits_conflict_with_git_s_markers() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("f.txt", lines(6, "base")),
        |c| c.write("f.txt", edited(6, 3, "three, by ours")),
        |c| c.write("f.txt", edited(6, 3, "three, by theirs")),
    );
    let (outcome, _) = compare(&case);
    assert!(!outcome.clean);
    assert_eq!(kinds(&outcome), [("f.txt".into(), ConflictKind::Content)]);
    let blob = outcome
        .new_objects
        .iter()
        .find(|o| o.kind == Kind::Blob)
        .unwrap();
    let text = String::from_utf8(blob.body.clone()).unwrap();
    assert!(
        text.contains("<<<<<<< ours\nthree, by ours\n=======\nthree, by theirs\n>>>>>>> theirs\n")
    );
}

#[test]
fn a_file_modified_on_one_side_and_deleted_on_the_other_conflicts() {
    let case = Case::new();
    diverge(
        &case,
        |c| {
            c.write("kept.txt", "kept\n");
            c.write("gone.txt", lines(4, "base"));
        },
        |c| c.write("gone.txt", lines(4, "ours")),
        |c| c.remove("gone.txt"),
    );
    let (outcome, _) = compare(&case);
    assert_eq!(
        kinds(&outcome),
        [("gone.txt".into(), ConflictKind::ModifyDelete)]
    );
    // Reversed sides: the same conflict, seen from the other side.
    let case = Case::new();
    diverge(
        &case,
        |c| {
            c.write("kept.txt", "kept\n");
            c.write("gone.txt", lines(4, "base"));
        },
        |c| c.remove("gone.txt"),
        |c| c.write("gone.txt", lines(4, "theirs")),
    );
    let (outcome, _) = compare(&case);
    assert_eq!(
        kinds(&outcome),
        [("gone.txt".into(), ConflictKind::ModifyDelete)]
    );
}

#[test]
fn a_file_added_on_both_sides_with_different_content_conflicts() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("README", "base\n"),
        |c| c.write("new.txt", "added by ours\n"),
        |c| c.write("new.txt", "added by theirs\n"),
    );
    let (outcome, _) = compare(&case);
    assert_eq!(kinds(&outcome), [("new.txt".into(), ConflictKind::AddAdd)]);
    // No base stage: both sides added it.
    assert!(outcome.conflicts[0].stages[0].is_none());
}

#[test]
fn a_rename_on_one_side_takes_the_other_side_s_edit_along() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("old/name.txt", lines(20, "base")),
        |c| {
            c.git(&["mv", "old/name.txt", "new-name.txt"]);
        },
        |c| c.write("old/name.txt", edited(20, 10, "ten, by theirs")),
    );
    let (outcome, _) = compare(&case);
    assert!(outcome.clean);
    // The listing reads the tree merge-tree wrote: the same id.
    let tree = case.git(&["ls-tree", "-r", "--name-only", &outcome.tree.to_hex()]);
    assert_eq!(tree, "new-name.txt\n");
    let merged = case.git(&[
        "cat-file",
        "blob",
        &format!("{}:new-name.txt", outcome.tree),
    ]);
    assert!(merged.contains("ten, by theirs\n"));
}

#[test]
fn a_file_renamed_differently_on_both_sides_conflicts() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("f.txt", lines(20, "base")),
        |c| {
            c.git(&["mv", "f.txt", "by-ours.txt"]);
        },
        |c| {
            c.git(&["mv", "f.txt", "by-theirs.txt"]);
        },
    );
    let (outcome, _) = compare(&case);
    assert!(!outcome.clean);
    assert!(
        outcome
            .conflicts
            .iter()
            .all(|c| c.kind == ConflictKind::RenameRename),
        "{:?}",
        kinds(&outcome)
    );
    let paths: Vec<String> = outcome
        .conflicts
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(paths, ["by-ours.txt", "by-theirs.txt", "f.txt"]);
}

/// git calls two files renamed to one path an add/add conflict.
#[test]
fn two_files_renamed_to_one_path_conflict() {
    let case = Case::new();
    diverge(
        &case,
        |c| {
            c.write("a.txt", lines(20, "a"));
            c.write("b.txt", lines(20, "b"));
        },
        |c| {
            c.git(&["mv", "a.txt", "c.txt"]);
        },
        |c| {
            c.git(&["mv", "b.txt", "c.txt"]);
        },
    );
    let (outcome, expected) = compare(&case);
    assert!(!outcome.clean, "{expected:#?}");
    assert_eq!(kinds(&outcome), [("c.txt".into(), ConflictKind::AddAdd)]);
}

/// A directory renamed on one side, a file added to it on the other: git moves the file
/// along, and (`merge.directoryRenames=conflict`, its default) calls that a conflict.
#[test]
fn a_file_added_to_a_directory_the_other_side_renamed_follows_it() {
    let case = Case::new();
    diverge(
        &case,
        |c| {
            c.write("old/one.txt", lines(10, "one"));
            c.write("old/two.txt", lines(10, "two"));
        },
        |c| {
            c.git(&["mv", "old", "new"]);
        },
        |c| c.write("old/three.txt", lines(10, "three")),
    );
    let (outcome, expected) = compare(&case);
    assert!(!outcome.clean, "{expected:#?}");
    assert_eq!(
        kinds(&outcome),
        [("new/three.txt".into(), ConflictKind::FileLocation)]
    );
}

#[test]
fn a_renamed_file_deleted_on_the_other_side_conflicts() {
    for ours_renames in [true, false] {
        let rename = |c: &Case| {
            c.git(&["mv", "f.txt", "moved.txt"]);
        };
        let delete = |c: &Case| c.remove("f.txt");
        let case = Case::new();
        if ours_renames {
            diverge(
                &case,
                |c| c.write("f.txt", lines(20, "base")),
                rename,
                delete,
            );
        } else {
            diverge(
                &case,
                |c| c.write("f.txt", lines(20, "base")),
                delete,
                rename,
            );
        }
        let (outcome, _) = compare(&case);
        assert_eq!(
            kinds(&outcome),
            [("moved.txt".into(), ConflictKind::RenameDelete)]
        );
        // The base at the new path, beside the renaming side's stage.
        let present: Vec<bool> = outcome.conflicts[0]
            .stages
            .iter()
            .map(Option::is_some)
            .collect();
        assert_eq!(present, [true, ours_renames, !ours_renames]);
    }
}

#[test]
fn binary_files_changed_on_both_sides_conflict_keeping_ours() {
    let binary = |tag: u8| {
        let mut bytes = common::noise(u64::from(tag) + 1, 4096, |s| s as u8);
        bytes[0] = 0;
        bytes
    };
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("image.bin", binary(1)),
        |c| c.write("image.bin", binary(2)),
        |c| c.write("image.bin", binary(3)),
    );
    let (outcome, _) = compare(&case);
    assert_eq!(
        kinds(&outcome),
        [("image.bin".into(), ConflictKind::Binary)]
    );
    // git keeps ours in the tree; no blob is new.
    assert!(outcome.new_objects.iter().all(|o| o.kind == Kind::Tree));
}

#[test]
fn an_executable_bit_on_one_side_and_an_edit_on_the_other_both_apply() {
    let case = Case::new();
    diverge(
        &case,
        |c| {
            c.write("run.sh", lines(8, "base"));
            c.write("tool.sh", "#!/bin/sh\n");
        },
        |c| {
            c.make_executable("run.sh");
            c.write("tool.sh", "#!/bin/sh\necho ours\n");
        },
        |c| {
            c.write("run.sh", edited(8, 8, "eight, by theirs"));
            c.make_executable("tool.sh");
        },
    );
    let (outcome, _) = compare(&case);
    assert!(outcome.clean);
    let listing = case.git(&["ls-tree", &outcome.tree.to_hex()]);
    assert!(
        listing.lines().all(|l| l.starts_with("100755")),
        "{listing}"
    );
}

#[test]
fn a_file_on_one_side_where_the_other_has_a_directory_conflicts() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("README", "base\n"),
        |c| c.write("p", "a file named p\n"),
        |c| c.write("p/q.txt", "a file in directory p\n"),
    );
    let (outcome, expected) = compare(&case);
    assert!(!outcome.clean, "{expected:#?}");
    assert!(
        outcome
            .conflicts
            .iter()
            .all(|c| c.kind == ConflictKind::DirectoryFile),
        "{:?}",
        kinds(&outcome)
    );
}

#[test]
fn a_link_and_a_file_added_at_one_path_conflict() {
    let case = Case::new();
    diverge(
        &case,
        |c| c.write("README", "base\n"),
        |c| {
            std::os::unix::fs::symlink("README", c.work.join("entry")).unwrap();
        },
        |c| c.write("entry", "a regular file\n"),
    );
    let (outcome, expected) = compare(&case);
    assert!(!outcome.clean, "{expected:#?}");
    assert!(
        outcome
            .conflicts
            .iter()
            .all(|c| c.kind == ConflictKind::TypeMismatch),
        "{:?}",
        kinds(&outcome)
    );
}

#[test]
fn a_submodule_moved_to_different_commits_on_both_sides_conflicts() {
    // Gitlinks to commits this repository does not have, committed from the index (there
    // is no checkout of them for `add -A` to see).
    let commit_gitlink = |c: &Case, byte: char, message: &str| {
        let id: String = std::iter::repeat_n(byte, 40).collect();
        let entry = format!("160000,{id},sub");
        c.git(&["update-index", "--add", "--cacheinfo", &entry]);
        c.git(&["commit", "-q", "-m", message]);
    };
    let case = Case::new();
    case.write("README", "base\n");
    case.git(&["add", "README"]);
    commit_gitlink(&case, '1', "base");
    case.branch("ours", "main");
    commit_gitlink(&case, '2', "ours");
    case.branch("theirs", "main");
    commit_gitlink(&case, '3', "theirs");
    let (outcome, expected) = compare(&case);
    assert!(!outcome.clean, "{expected:#?}");
    assert_eq!(kinds(&outcome), [("sub".into(), ConflictKind::Submodule)]);
}

/// Two merge bases: `ours` and `theirs` each merged the other's first commit (a criss-cross),
/// so git merges the bases into a virtual one first.
fn criss_cross(case: &Case, resolve_ours: &str, resolve_theirs: &str) {
    case.write("shared.txt", lines(12, "base"));
    case.write("other.txt", lines(4, "base"));
    case.commit("base");
    case.branch("x", "main");
    case.write("shared.txt", edited(12, 2, "two, by x"));
    case.commit("x1");
    case.branch("y", "main");
    case.write("shared.txt", edited(12, 2, "two, by y"));
    case.write("other.txt", lines(4, "y"));
    case.commit("y1");
    // Each side merges the other's first commit, resolving the conflict its own way.
    case.branch("ours", "x");
    case.merge("y", |c| c.write("shared.txt", edited(12, 2, resolve_ours)));
    case.branch("theirs", "y");
    case.merge("x", |c| {
        c.write("shared.txt", edited(12, 2, resolve_theirs))
    });
    case.checkout("ours");
    case.write("ours.txt", "after the criss-cross\n");
    case.commit("ours after");
    case.checkout("theirs");
    case.write("shared.txt", {
        let mut text = edited(12, 2, resolve_theirs);
        text = text.replace("line 11 base", "line 11 theirs");
        text
    });
    case.commit("theirs after");
}

#[test]
fn a_criss_cross_history_merges_its_two_bases_first() {
    // Both resolved the same way: the virtual base has it, the merge is clean.
    let case = Case::new();
    criss_cross(&case, "two, agreed", "two, agreed");
    let (outcome, _) = compare(&case);
    assert_eq!(outcome.merge_bases.len(), 2);
    assert!(outcome.clean);

    // Resolved differently: the bases conflict among themselves (nested markers in the
    // virtual base), and so does the merge.
    let case = Case::new();
    criss_cross(
        &case,
        "two, as ours resolved it",
        "two, as theirs resolved it",
    );
    let (outcome, _) = compare(&case);
    assert_eq!(outcome.merge_bases.len(), 2);
    assert!(!outcome.clean);
    assert_eq!(
        kinds(&outcome),
        [("shared.txt".into(), ConflictKind::Content)]
    );
}

/// The bases of a criss-cross conflict among themselves, and each side resolved that
/// conflict its own way (one of them as a base had it): git keeps the bases' conflict, with
/// markers, in the virtual base, so the merge conflicts whichever side kept a base's text.
/// (gix-merge's own virtual base resolves it with one base's text, and would call two of
/// these merges clean: `gitx/merge.rs` merges the bases itself, as git does.)
#[test]
fn a_criss_cross_whose_bases_conflict_stays_conflicted_whatever_the_sides_kept() {
    for (ours, theirs) in [
        ("two, by x", "two, by z"),
        ("two, by y", "two, by z"),
        ("two, by z", "two, by x"),
        ("two, by z", "two, by y"),
    ] {
        let case = Case::new();
        criss_cross(&case, ours, theirs);
        let (outcome, _) = compare(&case);
        assert!(!outcome.clean, "{ours} / {theirs}");
        assert_eq!(
            kinds(&outcome),
            [("shared.txt".into(), ConflictKind::Content)]
        );
        // The base stage is the virtual base's blob, markers and all (made by the merge,
        // in memory only: not a new object the tree needs).
        let base = outcome.conflicts[0].stages[0].unwrap().id;
        assert!(outcome.new_objects.iter().all(|o| o.sha1 != base));
        let text = case.git(&["cat-file", "blob", &base.to_hex()]);
        assert!(
            text.contains("<<<<<<<<< Temporary merge branch 1\n"),
            "{text}"
        );
    }
}

#[test]
fn unrelated_histories_are_refused() {
    let case = Case::new();
    case.write("a.txt", "main\n");
    case.commit("main");
    case.git(&["branch", "ours"]);
    case.git(&["checkout", "-q", "--orphan", "theirs"]);
    case.git(&["rm", "-q", "-r", "-f", "."]);
    case.write("b.txt", "elsewhere\n");
    case.commit("unrelated");
    let out = git_output(
        &case.work,
        &["merge-tree", "--write-tree", "ours", "theirs"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrelated histories"));
    let err = case.forge_merge(MergeLimits::default()).unwrap_err();
    assert!(
        matches!(err, MergeError::UnrelatedHistories { .. }),
        "{err}"
    );
    assert_eq!(err.code(), "unrelated_histories");
}

#[test]
fn a_merge_beyond_its_limits_is_refused_before_it_finishes() {
    let case = Case::new();
    diverge(
        &case,
        |c| {
            for i in 0..20 {
                c.write(&format!("d{i}/f.txt"), lines(30, "base"));
            }
        },
        |c| {
            for i in 0..20 {
                c.write(&format!("d{i}/f.txt"), edited(30, 1, "ours"));
            }
        },
        |c| {
            for i in 0..20 {
                c.write(&format!("d{i}/f.txt"), edited(30, 30, "theirs"));
            }
        },
    );
    let full = case.forge_merge(MergeLimits::default()).unwrap();
    assert!(full.clean);
    for limits in [
        MergeLimits {
            max_objects: full.read.objects / 2,
            ..MergeLimits::default()
        },
        MergeLimits {
            max_bytes: full.read.bytes / 2,
            ..MergeLimits::default()
        },
    ] {
        let err = case.forge_merge(limits).unwrap_err();
        assert!(matches!(err, MergeError::TooLarge { .. }), "{err}");
        assert_eq!(err.code(), "merge_too_large");
    }
    // A commit the repository does not have is not merged.
    let data = DataDir::open(&case.data).unwrap();
    let repo = data.open_repo(&RepoName::parse("t/case").unwrap()).unwrap();
    let err = forge::gitx::merge_commits(
        &repo,
        Sha1([0x42; 20]),
        case.sha1("theirs"),
        &MergeLabels::new("a", "b"),
        MergeLimits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "not_a_commit");
}
