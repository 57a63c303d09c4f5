//! upload-pack: what `git clone`, `fetch` and `ls-remote` talk to. Protocol v2 (`ls-refs`,
//! `fetch`) and the v0/v1 stateless flow, answered from the native store.
//!
//! A request is answered in two parts: `Response::head`, the pkt-lines computed up front
//! (refs, acknowledgments, shallow info — anything that can fail with an `ERR` line), then an
//! optional `PackPlan` that streams the pack (enumeration happens there, with keep-alives).

pub mod advertise;
pub mod enumerate;
pub mod negotiate;
pub mod request;

use std::io::{self, Write};
use std::sync::Arc;

use bstr::{BString, ByteSlice};

use crate::history::{CommitGraph, CommitIndex};
use crate::object::{IdSet, Kind, ObjectId, Sha1};
use crate::packing::write::Bases;
use crate::packing::{ClonePack, PackItem, PackJob, PackOptions};
use crate::protocol::pktline::{self, Band, Packet, PktError, PktReader, Sideband};
use crate::served::RepoState;
use crate::store::{RefTarget, StoreError};

use enumerate::Enumeration;
use request::{FetchArgs, Filter};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The client asked for something malformed or unsupported.
    #[error("{0}")]
    Request(String),
    #[error("upload-pack: not our ref {0}")]
    NotOurRef(Sha1),
    #[error(transparent)]
    Pkt(#[from] PktError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RepoState {
    /// Whether `id` may be fetched: a ref tip (`tips`), a peeled tip, or reachable from a
    /// ref.
    fn allowed(
        &self,
        graph: &mut CommitGraph,
        refs: &[(BString, RefTarget)],
        tips: &IdSet<ObjectId>,
        id: ObjectId,
    ) -> Result<bool, UploadError> {
        if tips.contains(&id) {
            return Ok(true);
        }
        Ok(self.reachable_set(graph, refs)?.contains(&id))
    }
}

/// The answer to one upload-pack request.
pub struct Response {
    pub head: Vec<u8>,
    pub pack: Option<PackPlan>,
}

/// A pack to stream after the head.
pub struct PackPlan {
    band: Band,
    progress: bool,
    source: PackSource,
    /// A clone was walked because the clone pack is missing or stale: worth rebuilding it.
    pub repack_wanted: bool,
}

enum PackSource {
    /// The clone pack covers exactly what was asked: send its bytes.
    Verbatim(Arc<ClonePack>),
    Walk(Box<Walk>),
}

struct Walk {
    commits: Vec<CommitIndex>,
    boundary: Vec<CommitIndex>,
    want_other: Vec<ObjectId>,
    have_other: Vec<ObjectId>,
    filter: Option<Filter>,
    include_tags: Vec<ObjectId>,
    options: PackOptions,
    tier: Option<Arc<ClonePack>>,
}

/// Parses and answers a protocol v2 request (`ls-refs` or `fetch`).
pub fn serve_v2(state: &RepoState, body: &[u8]) -> Result<Response, UploadError> {
    let mut reader = PktReader::new(body);
    let mut command = None;
    loop {
        match reader.next_packet()? {
            Some(packet @ Packet::Data(_)) => {
                let line = packet.text().unwrap_or_default();
                if let Some(name) = line.strip_prefix(b"command=") {
                    command = Some(name.to_vec());
                } else if let Some(format) = line.strip_prefix(b"object-format=")
                    && format != b"sha1"
                {
                    return Err(UploadError::Request(format!(
                        "unsupported object format '{}'",
                        format.as_bstr()
                    )));
                }
            }
            Some(Packet::Delim) | Some(Packet::Flush) | None => break,
            Some(Packet::ResponseEnd) => {
                return Err(UploadError::Request("unexpected response-end".into()));
            }
        }
    }
    match command.as_deref() {
        Some(b"ls-refs") => Ok(Response {
            head: advertise::ls_refs(state, &mut reader)?,
            pack: None,
        }),
        Some(b"fetch") => fetch_v2(state, request::parse_v2_fetch(&mut reader)?),
        Some(other) => Err(UploadError::Request(format!(
            "invalid command '{}'",
            other.as_bstr()
        ))),
        None => Err(UploadError::Request("no command requested".into())),
    }
}

fn hex_line(out: &mut Vec<u8>, prefix: &str, sha1: &Sha1) {
    pktline::text(out, &format!("{prefix}{sha1}"));
}

/// What negotiation decided, before the pack.
struct Negotiated {
    resolved: negotiate::Resolved,
    shallow: negotiate::ShallowUpdate,
    refs: Vec<(BString, RefTarget)>,
}

fn negotiate(state: &RepoState, args: &FetchArgs) -> Result<Negotiated, UploadError> {
    let repo = &state.repo;
    let refs = repo.refs()?;
    let mut deepen_not = Vec::new();
    for name in &args.deepen_not {
        let id = advertise::expand_ref(&refs, name).ok_or_else(|| {
            UploadError::Request(format!("git upload-pack: ambiguous deepen-not: {}", name))
        })?;
        deepen_not.push(id);
    }
    state.with_graph(|graph| {
        let mut tips = None;
        let resolved = negotiate::resolve(repo, graph, args, |graph, _, id| {
            let tips = match &mut tips {
                Some(tips) => tips,
                empty => empty.insert(state.ref_tips(&refs)?),
            };
            state.allowed(graph, &refs, tips, id)
        })?;
        let client = negotiate::client_shallows(repo, graph, args)?;
        let mut not_commits = Vec::new();
        for id in deepen_not {
            let (_, target, _) = crate::history::peel(repo, id)?;
            if let Some(c) = graph.load(repo, target)? {
                not_commits.push(c);
            }
        }
        let shallow =
            negotiate::shallow_update(graph, args, &resolved.want_commits, &client, &not_commits)?;
        Ok(Negotiated {
            resolved,
            shallow,
            refs,
        })
    })
}

fn shallow_lines(state: &RepoState, update: &negotiate::ShallowUpdate, out: &mut Vec<u8>) {
    state.with_graph(|graph| {
        for &c in &update.shallow {
            if let Some(sha1) = state.repo.sha1_of(&graph.node(c).id) {
                hex_line(out, "shallow ", &sha1);
            }
        }
        for &c in &update.unshallow {
            if let Some(sha1) = state.repo.sha1_of(&graph.node(c).id) {
                hex_line(out, "unshallow ", &sha1);
            }
        }
    });
}

fn fetch_v2(state: &RepoState, args: FetchArgs) -> Result<Response, UploadError> {
    let mut head = Vec::new();
    if args.wants.is_empty() && !args.wait_for_done {
        return Ok(Response { head, pack: None });
    }
    let negotiated = negotiate(state, &args)?;
    if !args.haves.is_empty() && !args.done {
        pktline::text(&mut head, "acknowledgments");
        if negotiated.resolved.common.is_empty() {
            pktline::text(&mut head, "NAK");
        }
        for common in &negotiated.resolved.common {
            hex_line(&mut head, "ACK ", &common.sha1);
        }
        let resolved = &negotiated.resolved;
        let ready = !args.wait_for_done
            && state.with_graph(|graph| {
                negotiate::ready(graph, &resolved.want_commits, &resolved.common)
            });
        if !ready {
            pktline::flush(&mut head);
            return Ok(Response { head, pack: None });
        }
        pktline::text(&mut head, "ready");
        pktline::delim(&mut head);
    }
    if args.deepens() || !args.shallows.is_empty() {
        pktline::text(&mut head, "shallow-info");
        shallow_lines(state, &negotiated.shallow, &mut head);
        pktline::delim(&mut head);
    }
    pktline::text(&mut head, "packfile");
    let plan = plan_pack(state, &args, negotiated)?;
    Ok(Response {
        head,
        pack: Some(plan),
    })
}

fn plan_pack(
    state: &RepoState,
    args: &FetchArgs,
    negotiated: Negotiated,
) -> Result<PackPlan, UploadError> {
    let band = args.band.unwrap_or(Band::Large);
    let progress = !args.no_progress;
    let tier = state.clone_pack()?;
    let clone_like = clone_like(args, &negotiated);
    if clone_like
        && let Some(tier) = &tier
        && verbatim_fits(tier, args)
    {
        return Ok(PackPlan {
            band,
            progress,
            source: PackSource::Verbatim(tier.clone()),
            repack_wanted: false,
        });
    }
    let repack_wanted = clone_like && tier_is_stale(state, tier.as_deref(), &negotiated.refs);
    let Negotiated {
        resolved,
        shallow,
        refs,
    } = negotiated;
    let mut wants = resolved.want_commits.clone();
    wants.extend(&shallow.extra_wants);
    let mut haves: Vec<CommitIndex> = negotiate::have_commits(&resolved.common).collect();
    haves.extend(&shallow.extra_edges);
    let (commits, mut boundary) = state
        .with_graph(|graph| negotiate::commits_to_send(graph, &wants, &haves, &shallow.grafts));
    boundary.extend(&shallow.extra_edges);
    let include_tags = if args.include_tag {
        refs.iter()
            .filter(|(name, _)| name.starts_with(b"refs/tags/"))
            .filter_map(|(_, target)| match target {
                RefTarget::Direct(id) => Some(*id),
                RefTarget::Symbolic(_) => None,
            })
            .filter(|id| {
                state
                    .repo
                    .locate(id)
                    .is_some_and(|l| l.kind() == Some(Kind::Tag))
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(PackPlan {
        band,
        progress,
        source: PackSource::Walk(Box::new(Walk {
            commits,
            boundary,
            want_other: resolved.want_other,
            have_other: resolved.have_other,
            filter: args.filter,
            include_tags,
            options: PackOptions {
                thin: args.thin_pack,
                ofs_delta: args.ofs_delta,
            },
            tier,
        })),
        repack_wanted,
    })
}

/// A request the clone pack could answer: nothing to subtract and nothing to filter.
fn clone_like(args: &FetchArgs, negotiated: &Negotiated) -> bool {
    args.ofs_delta
        && args.filter.is_none()
        && !args.deepens()
        && args.shallows.is_empty()
        && negotiated.resolved.common.is_empty()
}

/// The clone pack answers a clone-like request that wants exactly its tips.
fn verbatim_fits(tier: &ClonePack, args: &FetchArgs) -> bool {
    let mut wants = args.wants.clone();
    wants.sort_unstable();
    wants.dedup();
    wants == tier.manifest.tips()
}

/// Whether the clone pack (if any) no longer covers the current branches and tags.
fn tier_is_stale(
    state: &RepoState,
    tier: Option<&ClonePack>,
    refs: &[(BString, RefTarget)],
) -> bool {
    let mut tips: Vec<Sha1> = refs
        .iter()
        .filter(|(name, _)| name.starts_with(b"refs/heads/") || name.starts_with(b"refs/tags/"))
        .filter_map(|(_, target)| match target {
            RefTarget::Direct(id) => state.repo.sha1_of(id),
            RefTarget::Symbolic(_) => None,
        })
        .collect();
    tips.sort_unstable();
    tips.dedup();
    match tier {
        Some(tier) => tier.manifest.tips() != tips,
        None => !tips.is_empty(),
    }
}

impl PackPlan {
    /// Streams the pack (side-band framed unless the client asked for none). An error
    /// after the first byte goes to band 3, which git prints and dies on, and the pack
    /// stays without its trailer. Without a side band there is no way to say why: the
    /// error is returned so the caller cuts the response off.
    pub fn run<W: Write>(self, state: &RepoState, out: W) -> io::Result<()> {
        let band = self.band;
        let mut sideband =
            Sideband::new(out, band, self.progress).with_keepalive(state.settings.keepalive);
        match self.stream(state, &mut sideband) {
            Ok(()) => sideband.finish().map(|_| ()),
            Err(e) => {
                tracing::warn!("upload-pack of {} failed: {e}", state.repo.name());
                match sideband.fatal(&format!("upload-pack: {e}")) {
                    Ok(()) if band != Band::None => Ok(()),
                    Ok(()) => Err(io::Error::other(e.to_string())),
                    Err(sending) => Err(sending),
                }
            }
        }
    }

    fn stream<W: Write>(
        self,
        state: &RepoState,
        sideband: &mut Sideband<W>,
    ) -> Result<(), crate::packing::PackError> {
        match self.source {
            PackSource::Verbatim(tier) => {
                let count = tier.manifest.objects;
                sideband.progress(&format!(
                    "Enumerating objects: {count}, done.\nTotal {count}, pack-reused {count}\n"
                ))?;
                sideband.write_all(tier.bytes())?;
                Ok(())
            }
            PackSource::Walk(walk) => walk.stream(state, sideband),
        }
    }
}

impl Walk {
    fn stream<W: Write>(
        self,
        state: &RepoState,
        sideband: &mut Sideband<W>,
    ) -> Result<(), crate::packing::PackError> {
        let repo = &state.repo;
        let graph = state.graph.read();
        let mut last_report = std::time::Instant::now();
        let mut tick = |count: usize| -> io::Result<()> {
            if last_report.elapsed() >= std::time::Duration::from_secs(1) {
                last_report = std::time::Instant::now();
                sideband.progress(&format!("Enumerating objects: {count}\r"))?;
            }
            sideband.keepalive()
        };
        let mut enumeration = Enumeration {
            repo,
            graph: &graph,
            filter: self.filter,
            tick: &mut tick,
        };
        let client_has = if self.boundary.is_empty() && self.have_other.is_empty() {
            IdSet::default()
        } else {
            enumeration.client_has(&self.boundary, &self.have_other)?
        };
        let mut selection = enumeration.select(&self.commits, &self.want_other, client_has)?;
        if !self.include_tags.is_empty() {
            enumeration.include_tags(&self.include_tags, &mut selection)?;
        }
        // Blobs the client has an older version of deserve a delta against it (an
        // incremental fetch); a clone has no such bases.
        if self.options.thin && !selection.client_has.is_empty() {
            enumeration.delta_hints(&self.commits, &mut selection)?;
        }
        drop(graph);
        let count = selection.objects.len();
        sideband.progress(&format!("Enumerating objects: {count}, done.\n"))?;
        let items: Vec<PackItem> = selection
            .objects
            .into_iter()
            .map(|s| PackItem {
                location: s.location,
                kind: s.kind,
            })
            .collect();
        let job = PackJob {
            repo,
            tier: self.tier.as_deref(),
            options: self.options,
            bases: Bases {
                chosen: &selection.chosen,
                client_has: &selection.client_has,
                hints: Some(&selection.hints),
            },
        };
        let (_, _, _, stats) = job.write(&items, &mut *sideband, &mut |_| Ok(()))?;
        sideband.progress(&format!(
            "Total {} (delta {}), reused {}, pack-reused {}\n",
            stats.objects,
            stats.deltas,
            stats.reused + stats.copied,
            stats.reused
        ))?;
        Ok(())
    }
}

/// Parses and answers a v0/v1 stateless upload-pack request.
pub fn serve_v0(state: &RepoState, body: &[u8]) -> Result<Response, UploadError> {
    let args = request::parse_v0(body)?;
    let mut head = Vec::new();
    let negotiated = negotiate(state, &args)?;
    if args.deepens() {
        shallow_lines(state, &negotiated.shallow, &mut head);
        pktline::flush(&mut head);
    }
    if !args.negotiates {
        return Ok(Response { head, pack: None });
    }
    // git's get_common_commits, for one stateless round.
    let resolved = &negotiated.resolved;
    let by_sha1: std::collections::HashMap<Sha1, negotiate::Common> =
        resolved.common.iter().map(|c| (c.sha1, *c)).collect();
    let mut known: Vec<negotiate::Common> = Vec::new();
    let mut acked: std::collections::HashSet<Sha1> = std::collections::HashSet::new();
    let mut last: Option<Sha1> = None;
    let mut got_other = false;
    let mut sent_ready = false;
    let is_ready = |known: &[negotiate::Common]| {
        state.with_graph(|graph| negotiate::ready(graph, &resolved.want_commits, known))
    };
    // `ready` only changes when a common have is added: (haves known, answer) of the last check.
    let mut checked: Option<(usize, bool)> = None;
    let multi_ack = args.multi_ack || args.multi_ack_detailed;
    for sha1 in &args.haves {
        if let Some(common) = by_sha1.get(sha1) {
            if !acked.insert(*sha1) {
                continue;
            }
            known.push(*common);
            last = Some(*sha1);
            if args.multi_ack_detailed {
                pktline::text(&mut head, &format!("ACK {sha1} common"));
            } else if args.multi_ack {
                pktline::text(&mut head, &format!("ACK {sha1} continue"));
            } else if known.len() == 1 {
                hex_line(&mut head, "ACK ", sha1);
            }
        } else {
            got_other = true;
            let ready_now = match checked {
                Some((n, answer)) if n == known.len() => answer,
                _ if !multi_ack || sent_ready => false,
                _ => {
                    let answer = is_ready(&known);
                    checked = Some((known.len(), answer));
                    answer
                }
            };
            if multi_ack && !sent_ready && ready_now {
                if args.multi_ack_detailed {
                    sent_ready = true;
                    pktline::text(&mut head, &format!("ACK {sha1} ready"));
                } else {
                    pktline::text(&mut head, &format!("ACK {sha1} continue"));
                }
            }
        }
    }
    if !args.done {
        if args.multi_ack_detailed
            && let Some(last) = last
            && !got_other
            && is_ready(&known)
        {
            sent_ready = true;
            pktline::text(&mut head, &format!("ACK {last} ready"));
        }
        if known.is_empty() || multi_ack {
            pktline::text(&mut head, "NAK");
        }
        match (args.no_done && sent_ready, last) {
            (true, Some(last)) => hex_line(&mut head, "ACK ", &last),
            _ => return Ok(Response { head, pack: None }),
        }
    } else {
        match last {
            Some(last) if multi_ack => hex_line(&mut head, "ACK ", &last),
            Some(_) => {}
            None => pktline::text(&mut head, "NAK"),
        }
    }
    let plan = plan_pack(state, &args, negotiated)?;
    Ok(Response {
        head,
        pack: Some(plan),
    })
}

/// The `ERR` response for a request that failed before any pack byte.
pub fn error_response(e: &UploadError) -> Vec<u8> {
    let mut out = Vec::new();
    pktline::error_line(&mut out, &e.to_string());
    out
}
