//! Negotiation on the commit graph: which haves are common, whether the server may stop
//! asking (`ready`), the shallow boundary of a deepen request, and the commits to send.

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::ops::ControlFlow;

use crate::history::{CommitGraph, CommitIndex, peel};
use crate::object::{Kind, ObjectId, Sha1};
use crate::store::{Repo, StoreError};

use super::UploadError;
use super::request::FetchArgs;

/// git's "infinite" depth (`--unshallow` sends it).
const INFINITE_DEPTH: u32 = 0x7fff_ffff;

/// A have the store has.
#[derive(Debug, Clone, Copy)]
pub struct Common {
    pub sha1: Sha1,
    /// The commit it is or peels to.
    pub commit: Option<CommitIndex>,
}

/// The commits among the haves, tags peeled.
pub fn have_commits(common: &[Common]) -> impl Iterator<Item = CommitIndex> + '_ {
    common.iter().filter_map(|c| c.commit)
}

/// The client's wants and haves, resolved against the store.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Wanted commits, tags peeled.
    pub want_commits: Vec<CommitIndex>,
    /// Wanted objects that are not commits: tags (and the tags they chain through), trees,
    /// blobs. They are sent whatever the filter says.
    pub want_other: Vec<ObjectId>,
    /// Haves the store has, in the order the client sent them (each is acknowledged).
    pub common: Vec<Common>,
    /// Trees and blobs among the haves.
    pub have_other: Vec<ObjectId>,
}

/// Resolves wants and haves. A want the store does not have is refused; `allowed` decides
/// whether a want may be fetched (it must be reachable from a ref).
pub fn resolve(
    repo: &Repo,
    graph: &mut CommitGraph,
    args: &FetchArgs,
    mut allowed: impl FnMut(&mut CommitGraph, &Sha1, ObjectId) -> Result<bool, UploadError>,
) -> Result<Resolved, UploadError> {
    let mut resolved = Resolved::default();
    let mut seen = HashSet::new();
    for sha1 in &args.wants {
        if !seen.insert(*sha1) {
            continue; // git sends duplicates
        }
        let id = repo.id_of_sha1(sha1).ok_or(UploadError::NotOurRef(*sha1))?;
        if !allowed(graph, sha1, id)? {
            return Err(UploadError::NotOurRef(*sha1));
        }
        let (tags, target, kind) = peel(repo, id)?;
        resolved.want_other.extend(tags);
        match kind {
            Some(Kind::Commit) => {
                let index = graph
                    .load(repo, target)?
                    .ok_or_else(|| StoreError::MissingObject(target.to_hex()))?;
                resolved.want_commits.push(index);
            }
            Some(_) => resolved.want_other.push(target),
            // A tag git cannot peel either: only the tags themselves are sent.
            None => {}
        }
    }
    let mut seen = HashSet::new();
    for sha1 in &args.haves {
        if !seen.insert(*sha1) {
            continue;
        }
        let Some(id) = repo.id_of_sha1(sha1) else {
            continue;
        };
        let (_, target, kind) = peel(repo, id)?;
        let mut commit = None;
        match kind {
            Some(Kind::Commit) => commit = graph.load(repo, target)?,
            Some(_) => resolved.have_other.push(target),
            None => {}
        }
        resolved.common.push(Common {
            sha1: *sha1,
            commit,
        });
    }
    Ok(resolved)
}

/// git's `ok_to_give_up`: every wanted commit reaches something the client has (a have or
/// the parent of a have), so the server can build a good pack without more rounds.
pub fn ready(graph: &CommitGraph, wants: &[CommitIndex], common: &[Common]) -> bool {
    if common.is_empty() {
        return false;
    }
    let mut they_have: HashSet<CommitIndex> = HashSet::new();
    for h in have_commits(common) {
        they_have.insert(h);
        they_have.extend(graph.parents(h));
    }
    let Some(min_generation) = they_have.iter().map(|&c| graph.node(c).generation).min() else {
        return false;
    };
    // Depth-first from each want, remembering which commits reach a have and which were
    // fully explored without finding one.
    let mut reaching: HashSet<CommitIndex> = HashSet::new();
    let mut dead: HashSet<CommitIndex> = HashSet::new();
    for &want in wants {
        if reaching.contains(&want) {
            continue;
        }
        let mut stack: Vec<(CommitIndex, usize)> = vec![(want, 0)];
        let mut found = false;
        while let Some((c, next)) = stack.last_mut() {
            if they_have.contains(c) || reaching.contains(c) {
                found = true;
                break;
            }
            let parents = graph.parents(*c);
            if *next < parents.len() {
                let p = parents[*next];
                *next += 1;
                if graph.node(p).generation >= min_generation && !dead.contains(&p) {
                    stack.push((p, 0));
                }
            } else {
                dead.insert(*c);
                stack.pop();
            }
        }
        if !found {
            return false;
        }
        reaching.extend(stack.iter().map(|&(c, _)| c));
    }
    true
}

/// The outcome of `deepen`, `deepen-since`, `deepen-not` and the client's `shallow` lines.
#[derive(Debug, Default)]
pub struct ShallowUpdate {
    /// Commits that become the client's new shallow boundary (`shallow` lines).
    pub shallow: Vec<CommitIndex>,
    /// Client shallow commits whose history is now sent (`unshallow` lines).
    pub unshallow: Vec<CommitIndex>,
    /// Commits the walk treats as having no parents.
    pub grafts: HashSet<CommitIndex>,
    /// Parents of unshallowed commits: wanted too.
    pub extra_wants: Vec<CommitIndex>,
    /// Unshallowed commits: the client has them and their trees.
    pub extra_edges: Vec<CommitIndex>,
}

/// Resolves the client's shallow commits (unknown ones are ignored, as git does).
pub fn client_shallows(
    repo: &Repo,
    graph: &mut CommitGraph,
    args: &FetchArgs,
) -> Result<Vec<CommitIndex>, UploadError> {
    let mut out = Vec::new();
    for sha1 in &args.shallows {
        let Some(id) = repo.id_of_sha1(sha1) else {
            continue;
        };
        match graph.load(repo, id)? {
            Some(index) => out.push(index),
            None => {
                return Err(UploadError::Request(format!(
                    "invalid shallow object {sha1}"
                )));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Computes the shallow boundary as git's upload-pack does (`deepen`, `deepen_by_rev_list`,
/// `send_unshallow`). `deepen_not` are the commits named by `deepen-not`.
pub fn shallow_update(
    graph: &CommitGraph,
    args: &FetchArgs,
    wants: &[CommitIndex],
    client: &[CommitIndex],
    deepen_not: &[CommitIndex],
) -> Result<ShallowUpdate, UploadError> {
    let client_set: HashSet<CommitIndex> = client.iter().copied().collect();
    let mut update = ShallowUpdate::default();
    let mut not_shallow: HashSet<CommitIndex> = HashSet::new();
    let mut boundary: Vec<CommitIndex> = Vec::new();
    if let Some(depth) = args.depth {
        if depth >= INFINITE_DEPTH {
            not_shallow.extend(client.iter().copied());
        } else {
            let mut depth = depth;
            if args.deepen_relative {
                match depth_of_first(graph, wants, &client_set) {
                    Some(current) => depth = depth.saturating_add(current),
                    None => depth = 0,
                }
            }
            if depth > 0 {
                let (inside, border) = within_depth(graph, wants, depth);
                not_shallow = inside;
                boundary = border;
            }
        }
    } else if args.deepen_since.is_some() || !args.deepen_not.is_empty() {
        let excluded = ancestors(graph, deepen_not);
        let since = args.deepen_since.unwrap_or(i64::MIN);
        let mut list = Vec::new();
        let mut stack: Vec<CommitIndex> = wants.to_vec();
        let mut seen = HashSet::new();
        while let Some(c) = stack.pop() {
            if excluded.contains(&c) || graph.node(c).time < since || !seen.insert(c) {
                continue;
            }
            list.push(c);
            stack.extend(graph.parents(c));
        }
        if list.is_empty() {
            return Err(UploadError::Request(
                "no commits selected for shallow requests".into(),
            ));
        }
        let included: HashSet<CommitIndex> = list.iter().copied().collect();
        for &c in &list {
            if graph.parents(c).iter().any(|p| !included.contains(p)) {
                boundary.push(c);
            } else {
                not_shallow.insert(c);
            }
        }
    } else {
        update.grafts.extend(client.iter().copied());
        return Ok(update);
    }
    boundary.sort_by_key(|&c| std::cmp::Reverse(graph.node(c).generation));
    for c in boundary {
        if !client_set.contains(&c) && !not_shallow.contains(&c) {
            update.shallow.push(c);
            update.grafts.insert(c);
        }
    }
    for &c in client {
        if not_shallow.contains(&c) {
            update.unshallow.push(c);
            update.extra_wants.extend(graph.parents(c));
            update.extra_edges.push(c);
        }
        update.grafts.insert(c);
    }
    Ok(update)
}

/// Visits the commits reachable from the wants breadth first, each once with its smallest
/// depth (a want is at depth 1). `visit` says whether to go on to the commit's parents, or
/// stops the walk with a value.
fn by_depth<T>(
    graph: &CommitGraph,
    wants: &[CommitIndex],
    mut visit: impl FnMut(CommitIndex, u32) -> ControlFlow<T, bool>,
) -> Option<T> {
    let mut at: HashMap<CommitIndex, u32> = HashMap::new();
    let mut queue: VecDeque<CommitIndex> = VecDeque::new();
    for &w in wants {
        if at.insert(w, 1).is_none() {
            queue.push_back(w);
        }
    }
    while let Some(c) = queue.pop_front() {
        let d = at[&c];
        match visit(c, d) {
            ControlFlow::Break(value) => return Some(value),
            ControlFlow::Continue(false) => {}
            ControlFlow::Continue(true) => {
                for &p in graph.parents(c) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = at.entry(p) {
                        slot.insert(d + 1);
                        queue.push_back(p);
                    }
                }
            }
        }
    }
    None
}

/// Commits within `depth` of the wants, and the commits exactly at `depth`: the boundary.
fn within_depth(
    graph: &CommitGraph,
    wants: &[CommitIndex],
    depth: u32,
) -> (HashSet<CommitIndex>, Vec<CommitIndex>) {
    let mut inside = HashSet::new();
    let mut border = Vec::new();
    by_depth::<()>(graph, wants, |c, d| {
        if d >= depth {
            border.push(c);
            ControlFlow::Continue(false)
        } else {
            inside.insert(c);
            ControlFlow::Continue(true)
        }
    });
    (inside, border)
}

/// The smallest depth at which a walk from the wants meets one of the client's shallow
/// commits (for `deepen-relative`).
fn depth_of_first(
    graph: &CommitGraph,
    wants: &[CommitIndex],
    client: &HashSet<CommitIndex>,
) -> Option<u32> {
    by_depth(graph, wants, |c, d| {
        if client.contains(&c) {
            ControlFlow::Break(d)
        } else {
            ControlFlow::Continue(true)
        }
    })
}

fn ancestors(graph: &CommitGraph, tips: &[CommitIndex]) -> HashSet<CommitIndex> {
    let mut out = HashSet::new();
    let mut stack = tips.to_vec();
    while let Some(c) = stack.pop() {
        if out.insert(c) {
            stack.extend(graph.parents(c));
        }
    }
    out
}

/// The commits to send: reachable from `wants`, not from `haves`, not through a graft.
/// Returns them newest first, and the boundary: commits the client has whose children are
/// sent (their trees tell which trees and blobs the client already has).
pub fn commits_to_send(
    graph: &CommitGraph,
    wants: &[CommitIndex],
    haves: &[CommitIndex],
    grafts: &HashSet<CommitIndex>,
) -> (Vec<CommitIndex>, Vec<CommitIndex>) {
    const INTERESTING: u8 = 1;
    const UNINTERESTING: u8 = 2;
    let mut flags: HashMap<CommitIndex, u8> = HashMap::new();
    let mut heap: BinaryHeap<(u32, CommitIndex)> = BinaryHeap::new();
    // Queued nodes that are interesting and not (yet) known to be uninteresting.
    let mut interesting_queued = 0usize;
    for &h in haves {
        if flags.insert(h, UNINTERESTING).is_none() {
            heap.push((graph.node(h).generation, h));
        }
    }
    for &w in wants {
        if let std::collections::hash_map::Entry::Vacant(slot) = flags.entry(w) {
            slot.insert(INTERESTING);
            interesting_queued += 1;
            heap.push((graph.node(w).generation, w));
        }
    }
    let mut send = Vec::new();
    while interesting_queued > 0 {
        let Some((_, c)) = heap.pop() else { break };
        let flag = flags[&c];
        if flag == INTERESTING {
            interesting_queued -= 1;
            send.push(c);
        }
        if grafts.contains(&c) {
            continue;
        }
        for &p in graph.parents(c) {
            match flags.get(&p).copied() {
                None => {
                    flags.insert(p, flag);
                    if flag == INTERESTING {
                        interesting_queued += 1;
                    }
                    heap.push((graph.node(p).generation, p));
                }
                Some(INTERESTING) if flag == UNINTERESTING => {
                    flags.insert(p, UNINTERESTING);
                    interesting_queued -= 1;
                }
                Some(_) => {}
            }
        }
    }
    let mut boundary: Vec<CommitIndex> = Vec::new();
    let mut in_boundary = HashSet::new();
    for &c in &send {
        if grafts.contains(&c) {
            continue;
        }
        for &p in graph.parents(c) {
            if flags.get(&p) == Some(&UNINTERESTING) && in_boundary.insert(p) {
                boundary.push(p);
            }
        }
    }
    (send, boundary)
}
