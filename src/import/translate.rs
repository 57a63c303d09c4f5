//! Translating trees, commits and tags into native objects, children first, on every core.
//!
//! A planner (this thread) walks the history depth-first from the refs, parents before
//! children's parents, and hands the objects out in post-order: every object after all of
//! its children. Workers translate them in that order; one that needs a child another worker
//! still has in hand waits for it (children always come earlier, so someone is working on
//! it). Each result carries its number in the walk, so the writer can restore the order.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use parking_lot::Mutex;

use bstr::BString;

use crate::git::format::{self, tree_entries};
use crate::git::{git_to_native, tree_to_native_encoding};
use crate::object::{IdMap, Kind, NativeObject, Node, ObjectId, Sha1, encode, native_id};
use crate::progress::Progress;

use super::write::{NodeWrite, Results};
use super::{ImportError, Known, Scan, StashedNode};

const TRANSLATE_WORKERS: usize = 1;
/// Objects handed to a worker at a time, to keep thread hand-offs rare.
const BATCH: usize = 32;

/// What an id stands for during translation.
#[derive(Clone, Copy)]
enum Slot {
    Blob(ObjectId),
    /// Index into `Plan::nodes`.
    Node(u32),
}

struct Plan<'a> {
    nodes: Vec<(Sha1, StashedNode)>,
    /// Objects the store already has (left out of the scan).
    known: Known<'a>,
    slots: IdMap<Sha1, Slot>,
    stash: &'a [u8],
    /// Per node: its native id once translated, `None` if it could not be (missing objects).
    results: Vec<OnceLock<Option<ObjectId>>>,
}

impl Plan<'_> {
    fn body(&self, node: u32) -> (Kind, &[u8]) {
        let n = &self.nodes[node as usize].1;
        (n.kind, &self.stash[n.at..n.at + n.len])
    }

    fn node_of(&self, id: &Sha1) -> Option<u32> {
        match self.slots.get(id) {
            Some(Slot::Node(i)) => Some(*i),
            _ => None,
        }
    }

    /// The native id of a child, waiting for it if another worker is translating it.
    fn resolve(&self, child: Sha1) -> Result<ObjectId, ()> {
        match self.slots.get(&child) {
            Some(Slot::Blob(id)) => Ok(*id),
            Some(Slot::Node(i)) => wait(&self.results[*i as usize]).ok_or(()),
            None => (self.known)(&child).ok_or(()),
        }
    }

    /// Whether an id is neither in the scan nor in the store.
    fn is_missing(&self, id: &Sha1) -> bool {
        !self.slots.contains_key(id) && (self.known)(id).is_none()
    }
}

fn wait(cell: &OnceLock<Option<ObjectId>>) -> Option<ObjectId> {
    let mut spins = 0u32;
    loop {
        if let Some(result) = cell.get() {
            return *result;
        }
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// One object to translate, in walk order.
struct Work {
    seq: u64,
    node: u32,
    path: BString,
    /// The same path in the first parent's commit: its translation is the best delta base.
    counterpart: Option<u32>,
}

pub(super) struct Translation {
    /// Native ids of the translated trees, commits and tags.
    pub ids: IdMap<Sha1, ObjectId>,
    pub verbatim: u64,
    pub skipped_unreachable: u64,
}

pub(super) fn translate(
    scan: &Scan,
    stash: &[u8],
    roots: &[(String, Sha1)],
    known: Known<'_>,
    out: SyncSender<Results>,
    progress: &Progress,
) -> Result<Translation, ImportError> {
    progress.phase("Translating objects", Some(scan.nodes.len() as u64));
    let mut nodes: Vec<(Sha1, StashedNode)> = scan.nodes.iter().map(|(s, n)| (*s, *n)).collect();
    // Stash order (the source pack's order) for the objects no ref reaches.
    nodes.sort_unstable_by_key(|(_, n)| n.at);
    let mut slots = IdMap::default();
    slots.reserve(nodes.len() + scan.blobs.len());
    for (sha1, blob) in &scan.blobs {
        slots.insert(*sha1, Slot::Blob(blob.id));
    }
    for (i, (sha1, _)) in nodes.iter().enumerate() {
        slots.insert(*sha1, Slot::Node(i as u32));
    }
    let results = (0..nodes.len()).map(|_| OnceLock::new()).collect();
    let plan = Plan {
        nodes,
        known,
        slots,
        stash,
        results,
    };

    let verbatim = AtomicU64::new(0);
    let writer_gone = AtomicBool::new(false);
    let (work, queue) = std::sync::mpsc::sync_channel::<Vec<Work>>(64);
    let queue = Mutex::new(queue);
    // One worker: the walk's order is nearly one dependency chain (each commit's trees use
    // the previous commit's), so a second worker mostly waits; measured slower on git.git.
    // The walk itself and the writer run beside it.
    let workers = TRANSLATE_WORKERS;
    let walk = std::thread::scope(|scope| {
        for i in 0..workers {
            let (plan, queue, out) = (&plan, &queue, out.clone());
            let (verbatim, writer_gone) = (&verbatim, &writer_gone);
            std::thread::Builder::new()
                .name(format!("forge-translate-{i}"))
                .spawn_scoped(scope, move || {
                    translate_worker(plan, queue, out, verbatim, writer_gone, progress)
                })
                .expect("spawning a thread");
        }
        drop(out);
        walk(&plan, roots, work, &writer_gone)
    });

    if let Some(reference) = walk.broken_ref(&plan, roots) {
        let mut missing = walk.missing;
        missing.sort_unstable();
        missing.dedup();
        let mut list: Vec<String> = missing.iter().take(10).map(Sha1::to_hex).collect();
        if missing.len() > 10 {
            list.push(format!("… and {} more", missing.len() - 10));
        }
        return Err(ImportError::Missing {
            reference,
            count: missing.len(),
            list: list.join(", "),
        });
    }
    let mut ids = IdMap::default();
    ids.reserve(plan.nodes.len());
    let mut skipped_unreachable = 0;
    for ((sha1, _), result) in plan.nodes.iter().zip(&plan.results) {
        match result.get() {
            Some(Some(id)) => {
                ids.insert(*sha1, *id);
            }
            _ => skipped_unreachable += 1,
        }
    }
    Ok(Translation {
        ids,
        verbatim: verbatim.into_inner(),
        skipped_unreachable,
    })
}

fn translate_worker(
    plan: &Plan<'_>,
    queue: &Mutex<Receiver<Vec<Work>>>,
    out: SyncSender<Results>,
    verbatim: &AtomicU64,
    writer_gone: &AtomicBool,
    progress: &Progress,
) {
    loop {
        let batch = queue.lock().recv();
        let Ok(batch) = batch else {
            return;
        };
        let mut done = Vec::with_capacity(batch.len());
        for work in batch {
            let result = translate_one(plan, &work, verbatim);
            let set = plan.results[work.node as usize].set(result.as_ref().map(|r| r.id));
            debug_assert!(set.is_ok(), "each object is translated once");
            done.push((work.seq, result));
            progress.inc(1);
        }
        // After a writer failure the walk still has to finish; keep draining the queue.
        if !writer_gone.load(Ordering::Relaxed) && out.send(done).is_err() {
            writer_gone.store(true, Ordering::Relaxed);
        }
    }
}

fn translate_one(plan: &Plan<'_>, work: &Work, verbatim: &AtomicU64) -> Option<NodeWrite> {
    let (sha1, _) = plan.nodes[work.node as usize];
    let (kind, body) = plan.body(work.node);
    let resolve = |child| plan.resolve(child);
    let fast = if kind == Kind::Tree {
        tree_to_native_encoding(body, resolve).ok()?
    } else {
        None
    };
    let encoded = match fast {
        Some(encoded) => encoded,
        None => {
            let native = git_to_native(kind, body, resolve).ok()?;
            let is_verbatim = match &native {
                NativeObject::Parsed { git_verbatim, .. } => git_verbatim.is_some(),
                NativeObject::Unparsed { .. } => true,
            };
            if is_verbatim {
                verbatim.fetch_add(1, Ordering::Relaxed);
            }
            encode(&native)
        }
    };
    let id = native_id(kind, &encoded);
    let base_hint = work
        .counterpart
        .and_then(|c| plan.results[c as usize].get().copied().flatten());
    Some(NodeWrite {
        sha1,
        id,
        kind,
        path: work.path.clone(),
        base_hint,
        encoded,
    })
}

/// The outcome of the walk: objects found missing under a ref.
struct Walk {
    missing: Vec<Sha1>,
}

impl Walk {
    /// The first ref whose history could not be translated.
    fn broken_ref(&self, plan: &Plan<'_>, roots: &[(String, Sha1)]) -> Option<String> {
        roots.iter().find_map(|(name, root)| {
            let ok = match plan.slots.get(root) {
                Some(Slot::Blob(_)) => true,
                Some(Slot::Node(i)) => matches!(plan.results[*i as usize].get(), Some(Some(_))),
                None => (plan.known)(root).is_some(),
            };
            (!ok).then(|| name.clone())
        })
    }
}

struct Frame {
    node: u32,
    path: BString,
    counterpart: Option<u32>,
    expanded: bool,
}

const UNSEEN: u8 = 0;
const EXPANDED: u8 = 1;
const HANDED_OUT: u8 = 2;

/// Walks from the refs (then the objects no ref reaches) and hands out every tree, commit
/// and tag after its children. Returns when all are handed out; dropping `work` then lets
/// the workers finish.
fn walk(
    plan: &Plan<'_>,
    roots: &[(String, Sha1)],
    work: SyncSender<Vec<Work>>,
    writer_gone: &AtomicBool,
) -> Walk {
    let mut state = vec![UNSEEN; plan.nodes.len()];
    let mut missing = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut seq = 0u64;
    let mut stack: Vec<Frame> = Vec::new();
    let ref_roots = roots.iter().map(|(_, id)| (true, Some(*id)));
    let all_nodes = (0..plan.nodes.len() as u32).map(|i| (false, Some(plan.nodes[i as usize].0)));
    for (from_ref, root) in ref_roots.chain(all_nodes) {
        if writer_gone.load(Ordering::Relaxed) {
            break;
        }
        let root = root.expect("roots are ids");
        let Some(node) = plan.node_of(&root) else {
            if from_ref && plan.is_missing(&root) {
                missing.push(root);
            }
            continue;
        };
        stack.push(Frame {
            node,
            path: BString::default(),
            counterpart: None,
            expanded: false,
        });
        while let Some(frame) = stack.pop() {
            let i = frame.node as usize;
            if !frame.expanded {
                if state[i] != UNSEEN {
                    continue;
                }
                state[i] = EXPANDED;
                let (path, counterpart) = (frame.path.clone(), frame.counterpart);
                stack.push(Frame {
                    expanded: true,
                    ..frame
                });
                let mut on_missing = |id: Sha1| {
                    if from_ref {
                        missing.push(id);
                    }
                };
                push_children(
                    plan,
                    frame.node,
                    &path,
                    counterpart,
                    &state,
                    &mut stack,
                    &mut on_missing,
                );
                continue;
            }
            state[i] = HANDED_OUT;
            batch.push(Work {
                seq,
                node: frame.node,
                path: frame.path,
                counterpart: frame.counterpart,
            });
            seq += 1;
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if work.send(full).is_err() {
                    return Walk { missing };
                }
            }
        }
    }
    if !batch.is_empty() {
        let _ = work.send(batch);
    }
    Walk { missing }
}

/// Pushes the children of a node that are not handed out yet, each with its counterpart in
/// the first parent. Parents go on top of the tree, so history is walked oldest first.
fn push_children(
    plan: &Plan<'_>,
    node: u32,
    path: &BString,
    counterpart: Option<u32>,
    state: &[u8],
    stack: &mut Vec<Frame>,
    on_missing: &mut impl FnMut(Sha1),
) {
    let (kind, body) = plan.body(node);
    let mut pending = |id: &Sha1| match plan.slots.get(id) {
        Some(Slot::Node(i)) => (state[*i as usize] == UNSEEN).then_some(*i),
        Some(Slot::Blob(_)) => None,
        None => {
            if plan.is_missing(id) {
                on_missing(*id);
            }
            None
        }
    };
    match kind {
        Kind::Tree => {
            // Trees list their entries in git's order, so each subtree's old version is found
            // by walking the counterpart alongside (unsorted trees just find fewer).
            let mut old = counterpart
                .map(|c| plan.body(c))
                .filter(|(kind, _)| *kind == Kind::Tree)
                .map(|(_, body)| tree_entries(body).map_while(Result::ok))
                .into_iter()
                .flatten()
                .filter(|e| e.is_directory())
                .peekable();
            for entry in tree_entries(body).map_while(Result::ok) {
                if entry.is_gitlink() {
                    continue;
                }
                let Some(child) = pending(&entry.id) else {
                    continue;
                };
                while old.peek().is_some_and(|o| {
                    git_tree_order(o.name, true, entry.name, entry.is_directory()).is_lt()
                }) {
                    old.next();
                }
                let counterpart = old
                    .peek()
                    .filter(|o| o.name == entry.name)
                    .and_then(|o| plan.node_of(&o.id));
                let mut child_path = path.clone();
                if !child_path.is_empty() {
                    child_path.push(b'/');
                }
                child_path.extend_from_slice(entry.name);
                stack.push(Frame {
                    node: child,
                    path: child_path,
                    counterpart,
                    expanded: false,
                });
            }
        }
        Kind::Commit => {
            let Some(Node::Commit(commit)) = format::parse(kind, body) else {
                return;
            };
            let parent_tree = commit
                .parents
                .first()
                .and_then(|p| plan.node_of(p))
                .map(|p| plan.body(p))
                .filter(|(kind, _)| *kind == Kind::Commit)
                .and_then(|(_, body)| format::commit_tree(body))
                .and_then(|tree| plan.node_of(&tree));
            let tree = pending(&commit.tree);
            if let Some(tree) = tree {
                stack.push(Frame {
                    node: tree,
                    path: BString::default(),
                    counterpart: parent_tree,
                    expanded: false,
                });
            }
            for parent in commit.parents.iter().rev() {
                if let Some(parent) = pending(parent) {
                    stack.push(Frame {
                        node: parent,
                        path: BString::default(),
                        counterpart: None,
                        expanded: false,
                    });
                }
            }
        }
        _ => {
            if let Some(Node::Tag(tag)) = format::parse(kind, body)
                && let Some(target) = pending(&tag.target)
            {
                stack.push(Frame {
                    node: target,
                    path: BString::default(),
                    counterpart: None,
                    expanded: false,
                });
            }
        }
    }
}

/// git's order of tree entries: by name, a directory's name compared as if it ended in '/'.
fn git_tree_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let next = |name: &[u8], dir: bool| match name.get(n) {
            Some(&c) => Some(c),
            None if dir => Some(b'/'),
            None => None,
        };
        next(a, a_dir).cmp(&next(b, b_dir))
    })
}

#[cfg(test)]
mod tests {
    use super::git_tree_order;
    use std::cmp::Ordering::*;

    #[test]
    fn tree_order_is_gits() {
        assert_eq!(git_tree_order(b"foo", true, b"foo.c", false), Greater);
        assert_eq!(git_tree_order(b"foo", false, b"foo.c", false), Less);
        assert_eq!(git_tree_order(b"foo", true, b"foo0", false), Less);
        assert_eq!(git_tree_order(b"a", true, b"a", true), Equal);
        assert_eq!(git_tree_order(b"a", false, b"a", true), Less);
        assert_eq!(git_tree_order(b"b", true, b"a", true), Greater);
    }
}
