//! git-receive-pack over smart HTTP (git always pushes with protocol v0 over HTTP).
//!
//! 1. `request.rs` parses the commands, the client's capabilities and push options.
//! 2. The pack is indexed into a quarantine directory beside the repository, thin packs
//!    completed from the store (`gitx::index_pack`: pack checksum and every SHA-1 checked,
//!    allocations bounded).
//! 3. `import::ingest` translates what the store lacks into an unpublished segment, refusing
//!    hostile tree entries and oversized objects; a new tip whose history is incomplete
//!    fails it (the connectivity check).
//! 4. Under the repository's push lock every update goes through the gate
//!    (`crate::gate::decide`, asking a `PushContext` about the objects brought), then the
//!    segment is registered and the authorized refs move in one transaction.
//! 5. The report (`unpack ok`, `ok REF` / `ng REF reason`), inside band 1 when asked.
//!
//! Nothing of a failed or rejected push is published; the quarantine is removed on drop.

mod error;
pub mod request;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::sync::atomic::AtomicBool;

use bstr::{BString, ByteSlice};

use crate::evidence::{self, Uploader};
use crate::gate::{
    self, Caller, Claim, GateContext, NewValue, Proposal, RefChange, Refusal, RefusalCode, Via,
};
use crate::gitx::{IndexStage, SourcePack};
use crate::import::{IngestRules, Ingested, ingest};
use crate::object::{IdMap, IdSet, Kind, ObjectId, Sha1};
use crate::progress::Progress;
use crate::protocol::pktline::{self, SIDEBAND_64K_DATA};
use crate::served::{PushLimits, RepoState};
use crate::store::backend::AttestationRecord;
use crate::store::policy::RefRule;
use crate::store::{Authorized, DataDir, Identity, RefTarget, RepoSettings, StoreError};

pub use error::{PushError, RefError};
use request::{PushCommand, PushRequest};

/// Trees kept as delta bases while a push is stored. Measured pushing tokio's whole
/// history (49k objects): 4 MiB instead of an import's 256 MiB lowers the server's peak
/// from 109 to 85 MiB for 0.6 % more bytes on disk (16 MiB saves nothing there).
const PUSH_TREE_BASE_CACHE: usize = 4 << 20;

/// git's receive-pack capabilities, as this server supports them.
pub fn capabilities() -> String {
    format!(
        "report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta push-options object-format=sha1 agent={}",
        crate::protocol::AGENT
    )
}

/// The ref advertisement (after the `# service=` header): every ref, the first with the
/// capabilities; an empty repository advertises `capabilities^{}` with the zero id.
pub fn advertisement(state: &RepoState) -> Result<Vec<u8>, StoreError> {
    let repo = &state.repo;
    let mut out = Vec::new();
    let caps = capabilities();
    let mut first = true;
    for (name, target) in repo.refs()? {
        let RefTarget::Direct(id) = target else {
            continue;
        };
        let Some(sha1) = repo.sha1_of(&id) else {
            continue;
        };
        let line = if first {
            format!("{sha1} {}\0{caps}\n", name.as_bstr())
        } else {
            format!("{sha1} {}\n", name.as_bstr())
        };
        // A name stored before names were bounded cannot be advertised; git is not told of
        // it, and the capabilities go on the next line that fits.
        match pktline::data(&mut out, line.as_bytes()) {
            Ok(()) => first = false,
            Err(e) => tracing::warn!("{}: ref left out of the advertisement: {e}", repo.name()),
        }
    }
    if first {
        let line = format!("{} capabilities^{{}}\0{caps}\n", Sha1([0; 20]));
        pktline::text(&mut out, line.trim_end_matches('\n'));
    }
    pktline::flush(&mut out);
    Ok(out)
}

/// Who pushes, as the gate and the evidence rules need to know.
pub struct Pusher<'a> {
    pub caller: Caller,
    /// The identity a token names (`None` without one), and whether it administers the
    /// repository: who may attach attestations signed by whom (`git push -o attest=…`).
    pub identity: Option<&'a str>,
    pub admin: bool,
    /// The registry, for the signers' keys.
    pub data: &'a DataDir,
    /// Whether the pusher's token allows updating a ref.
    pub may_update: &'a dyn Fn(&str) -> Result<(), Refusal>,
    /// `scheme://host` of the server as the pusher reaches it, for hints naming a URL.
    pub base_url: Option<&'a str>,
}

/// The push option that carries an attestation: `attest=<base64url of the envelope>`.
const ATTEST_OPTION: &str = "attest=";
/// The push option that carries the pusher's claim lease on an approach: `claim=<lease>`.
const CLAIM_OPTION: &str = "claim=";

/// The lease a push carries (`-o claim=<lease>`), the last one given; a malformed one is
/// refused as a whole.
fn claim_lease(request: &PushRequest) -> Result<Option<u64>, Refusal> {
    let mut lease = None;
    for option in &request.options {
        let Some(value) = option.strip_prefix(CLAIM_OPTION.as_bytes()) else {
            continue;
        };
        let parsed = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0);
        match parsed {
            Some(value) => lease = Some(value),
            None => {
                return Err(Refusal::new(
                    RefusalCode::ClaimLost,
                    format!(
                        "the push option claim={} is not a lease (claim=<number>)",
                        value.to_str_lossy()
                    ),
                ));
            }
        }
    }
    Ok(lease)
}

/// What a push did, for the server's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Whether any ref moved.
    pub moved: bool,
    /// The code of every ref update refused (by the gate, a lost compare-and-swap or a
    /// refused attestation); refs of a pack that failed as a whole are not counted.
    pub refused: Vec<&'static str>,
}

/// Runs a parsed push and writes git's report to `out` (band 1 when the client asked for a
/// side band, with progress on band 2 unless `quiet`).
pub fn receive<W>(
    state: &RepoState,
    request: &PushRequest,
    pack: &mut dyn BufRead,
    limits: PushLimits,
    pusher: &Pusher<'_>,
    out: W,
) -> io::Result<PushOutcome>
where
    W: Write + Clone + Send + 'static,
{
    let progress = if request.side_band && !request.quiet {
        let sink = parking_lot::Mutex::new(out.clone());
        Progress::remote(move |line| {
            let mut sink = sink.lock();
            let _ = sink.write_all(&band_packet(2, line.as_bytes()));
        })
    } else {
        Progress::new(false)
    };
    let received = receive_objects(state, request, pack, limits, &progress);
    let mut notes = Vec::new();
    if received.is_err() {
        // git sends the whole body before it reads the answer: let it finish, so it is told
        // why instead of seeing the connection drop.
        let _ = io::copy(pack, &mut io::sink());
    }
    let results = match received {
        Ok(received) => {
            let results = match attestations(state, request, &received, pusher) {
                Ok(evidence) => apply(state, request, received, pusher, evidence, &mut notes),
                Err(error) => {
                    tracing::info!("push to {}: {error}", state.repo.name());
                    request
                        .commands
                        .iter()
                        .map(|c| (c.name.clone(), Err(error.clone())))
                        .collect()
                }
            };
            (None, results)
        }
        Err(reason) => {
            tracing::info!("push to {} refused: {reason}", state.repo.name());
            let results = request
                .commands
                .iter()
                .map(|c| (c.name.clone(), Err(RefError::Unpack)))
                .collect();
            (Some(reason), results)
        }
    };
    progress.finish();
    for (name, result) in &results.1 {
        if let Err(reason) = result {
            tracing::info!(
                "push to {}: {} refused: {reason}",
                state.repo.name(),
                name.as_bstr()
            );
        }
    }
    // What the gate noted, and what a refused ref needs, as `remote:` lines.
    if request.side_band {
        let mut lines: Vec<String> = notes.iter().map(|note| format!("forge: {note}")).collect();
        for (name, result) in &results.1 {
            if let Err(RefError::Refused(refusal)) = result {
                for hint in &refusal.hints {
                    lines.push(format!("forge: {}: {hint}", name.as_bstr()));
                }
            }
        }
        let mut sink = out.clone();
        for line in lines {
            let line = format!("{}\n", one_line(&line));
            for chunk in line.as_bytes().chunks(SIDEBAND_64K_DATA) {
                sink.write_all(&band_packet(2, chunk))?;
            }
        }
    }
    let report = report(&results.0, &results.1);
    let mut out = out;
    if request.side_band {
        for chunk in report.chunks(SIDEBAND_64K_DATA) {
            out.write_all(&band_packet(1, chunk))?;
        }
        out.write_all(b"0000")?;
    } else {
        out.write_all(&report)?;
    }
    out.flush()?;
    Ok(PushOutcome {
        moved: results.1.iter().any(|(_, r)| r.is_ok()),
        refused: results
            .1
            .iter()
            .filter_map(|(_, r)| match r {
                Err(
                    e @ (RefError::Refused(_)
                    | RefError::Concurrent(_)
                    | RefError::Attestation { .. }),
                ) => Some(e.code()),
                _ => None,
            })
            .collect(),
    })
}

fn band_packet(band: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = format!("{:04x}", payload.len() + 5).into_bytes();
    packet.push(band);
    packet.extend_from_slice(payload);
    packet
}

/// `unpack ok|reason`, then `ok REF` or `ng REF reason` per command, then a flush.
fn report(unpack_error: &Option<PushError>, results: &[RefResult]) -> Vec<u8> {
    let mut out = Vec::new();
    let unpack = match unpack_error {
        None => "unpack ok\n".to_owned(),
        Some(reason) => format!("unpack {}\n", one_line(&reason.to_string())),
    };
    pktline::text(&mut out, unpack.trim_end_matches('\n'));
    for (name, result) in results {
        // Cut to one pkt-line when a refused name is too long for one.
        let line = match result {
            Ok(()) => format!("ok {}", name.as_bstr()),
            Err(reason) => format!("ng {} {}", name.as_bstr(), one_line(&reason.to_string())),
        };
        pktline::text(&mut out, &line);
    }
    pktline::flush(&mut out);
    out
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// One command's outcome: `ok`, or `ng` with the reason.
type RefResult = (BString, Result<(), RefError>);

/// What the pack brought, translated but not yet published.
struct Received {
    ingested: Option<Ingested>,
    /// The indexed pack, to read new commits' parents for fast-forward checks.
    pack: Option<SourcePack>,
    _quarantine: Option<crate::store::Quarantine>,
}

fn receive_objects(
    state: &RepoState,
    request: &PushRequest,
    pack: &mut dyn BufRead,
    limits: PushLimits,
    progress: &Progress,
) -> Result<Received, PushError> {
    let repo = &state.repo;
    if !request.shallow.is_empty() {
        return Err(PushError::Shallow);
    }
    let at_end = pack.fill_buf().map_err(PushError::Read)?.is_empty();
    if !request.expects_pack() {
        if !at_end {
            return Err(PushError::UnexpectedPack);
        }
        return Ok(Received {
            ingested: None,
            pack: None,
            _quarantine: None,
        });
    }
    if at_end {
        return Err(PushError::NoPack);
    }
    if let Err(e) = repo.remove_unregistered_files() {
        tracing::warn!(
            "{}: cannot remove what an interrupted write left: {e}",
            repo.name()
        );
    }
    let quarantine = repo.quarantine().map_err(PushError::Quarantine)?;
    let objects = quarantine.path().join("objects");
    let pack_dir = objects.join("pack");
    std::fs::create_dir_all(&pack_dir)
        .map_err(|e| PushError::Quarantine(StoreError::io("create", &pack_dir, e)))?;
    let alloc_limit = usize::try_from(limits.max_object_bytes).unwrap_or(usize::MAX);
    let interrupt = AtomicBool::new(false);
    let stage = parking_lot::Mutex::new(None);
    let on_progress = |now: IndexStage, count: u64, total: Option<u64>| {
        let mut stage = stage.lock();
        if *stage != Some(now) {
            *stage = Some(now);
            progress.phase(
                match now {
                    IndexStage::Receiving => "Receiving objects",
                    IndexStage::Resolving => "Checking objects",
                },
                total,
            );
        }
        progress.set(count);
    };
    let indexed = crate::gitx::index_pack(
        pack,
        &pack_dir,
        |sha1, buf| {
            let location = repo.locate_sha1(sha1)?;
            let (kind, bytes) = repo.git_object(&location).ok()?;
            buf.extend_from_slice(&bytes);
            Some(kind)
        },
        crate::gitx::IndexLimits {
            alloc_bytes: alloc_limit,
            threads: limits.index_threads,
        },
        &interrupt,
        &on_progress,
    )?;
    tracing::debug!(
        "push to {}: {} objects indexed",
        repo.name(),
        indexed.objects
    );
    let roots: Vec<(String, Sha1)> = request
        .commands
        .iter()
        .filter(|c| !c.is_delete())
        .map(|c| (c.name.to_str_lossy().into_owned(), c.new))
        .collect();
    let rules = IngestRules {
        max_object_bytes: Some(limits.max_object_bytes),
        fsck_objects: repo.settings()?.fsck_objects,
        tree_base_cache: Some(PUSH_TREE_BASE_CACHE),
    };
    let ingested = ingest(repo, &[objects], &roots, rules, progress)?;
    let pack = match &indexed.index_path {
        Some(idx) => Some(SourcePack::open(idx)?),
        None => None,
    };
    Ok(Received {
        ingested: Some(ingested),
        pack,
        _quarantine: Some(quarantine),
    })
}

/// Passes every update through the gate and applies those it authorizes (all or none with
/// `atomic`).
fn apply(
    state: &RepoState,
    request: &PushRequest,
    received: Received,
    pusher: &Pusher<'_>,
    evidence: Vec<AttestationRecord>,
    notes: &mut Vec<String>,
) -> Vec<RefResult> {
    let repo = &state.repo;
    let _push = state.push_lock();
    let outcome = (|| -> Result<Vec<RefResult>, StoreError> {
        let rules = repo.rules()?;
        let identities = gate::identities_for(&rules, pusher.data)?;
        let mut ctx = PushContext {
            state,
            received: &received,
            rules,
            identities,
            carried: &evidence,
            notes: Vec::new(),
            refs: repo.refs()?.into_iter().collect(),
            settings: repo.settings()?,
            brought: IdMap::default(),
            may_update: pusher.may_update,
            base_url: pusher.base_url,
        };
        let mut changes = Vec::with_capacity(request.commands.len());
        for command in &request.commands {
            changes.push(ctx.change(command));
        }
        let lease = match claim_lease(request) {
            Ok(lease) => lease,
            Err(refusal) => {
                return Ok(request
                    .commands
                    .iter()
                    .map(|c| (c.name.clone(), Err(RefError::Refused(refusal.clone()))))
                    .collect());
            }
        };
        let proposal = Proposal {
            via: Via::Push,
            caller: pusher.caller.clone(),
            changes,
            goal: gate::GoalPart {
                lease,
                ..gate::GoalPart::default()
            },
        };
        let verdicts = gate::decide(&mut ctx, &proposal)?;
        notes.append(&mut ctx.notes);
        let refused = verdicts.iter().any(Result::is_err);
        if refused && let Err(e) = repo.record_events(gate::refusal_events(&proposal, &verdicts)) {
            // The push is answered all the same; only its record is lost.
            tracing::error!("push to {}: recording its refusals: {e}", repo.name());
        }
        if request.atomic && refused {
            return Ok(request
                .commands
                .iter()
                .zip(verdicts)
                .map(|(c, v)| {
                    let refusal = match v {
                        Err(refusal) => refusal,
                        Ok(_) => Refusal::new(
                            RefusalCode::Atomic,
                            "atomic push failed: another ref was rejected",
                        ),
                    };
                    (c.name.clone(), Err(RefError::Refused(refusal)))
                })
                .collect());
        }
        let updates: Vec<Authorized> = verdicts
            .iter()
            .filter_map(|v| v.as_ref().ok())
            .cloned()
            .collect();
        let segment = received.ingested.map(|i| i.writer);
        let committed = if updates.is_empty() {
            Ok(())
        } else {
            repo.commit_with(segment, &updates, &evidence, &proposal.caller.actor())
                .map_err(|e| match e {
                    StoreError::RefConflict { name, .. } => RefError::Concurrent(name),
                    // The approach's claim moved between the gate's decision and the commit.
                    StoreError::GoalRefused { code, message } => {
                        RefError::Refused(Refusal::of_goal(code, message))
                    }
                    other => RefError::Store(other.to_string()),
                })
        };
        Ok(request
            .commands
            .iter()
            .zip(verdicts)
            .map(|(c, v)| {
                let result = match (v, &committed) {
                    (Err(refusal), _) => Err(RefError::Refused(refusal)),
                    (Ok(_), Ok(())) => Ok(()),
                    (Ok(_), Err(error)) => Err(error.clone()),
                };
                (c.name.clone(), result)
            })
            .collect())
    })();
    outcome.unwrap_or_else(|e| {
        tracing::error!("push to {}: {e}", repo.name());
        request
            .commands
            .iter()
            .map(|c| (c.name.clone(), Err(RefError::Store(e.to_string()))))
            .collect()
    })
}

/// The attestations the push carries (`-o attest=…`), each checked as an upload is
/// (`evidence::accept`), commits the push brings counting as the repository's. One that
/// fails refuses every ref of the push, with the rule it broke.
fn attestations(
    state: &RepoState,
    request: &PushRequest,
    received: &Received,
    pusher: &Pusher<'_>,
) -> Result<Vec<AttestationRecord>, RefError> {
    let repo = &state.repo;
    let mut records = Vec::new();
    // Read from the registry at the first attestation, once for all of them.
    let mut identities: Option<Vec<Identity>> = None;
    for (n, option) in request.options.iter().enumerate() {
        let Some(encoded) = option.strip_prefix(ATTEST_OPTION.as_bytes()) else {
            continue;
        };
        let refused = |why: String| RefError::Attestation {
            number: n + 1,
            reason: why,
        };
        let Some(identity) = pusher.identity else {
            return Err(refused("attestations need a token".into()));
        };
        let decoded = std::str::from_utf8(encoded)
            .ok()
            .and_then(crate::attest::dsse::decode_base64);
        let json = decoded.ok_or_else(|| {
            refused("the option is not base64 (attest=<base64url envelope>)".into())
        })?;
        let brought = |sha1: &Sha1| {
            received
                .ingested
                .as_ref()
                .and_then(|ingested| ingested.ids.typed(repo, sha1))
                .is_some_and(|(_, kind)| kind == Kind::Commit)
        };
        let uploader = Uploader {
            identity,
            admin: pusher.admin,
        };
        let identities = match &mut identities {
            Some(read) => read,
            None => identities.insert(
                pusher
                    .data
                    .list_identities()
                    .map_err(|e| refused(e.to_string()))?,
            ),
        };
        let record = evidence::accept(identities, repo, &json, &uploader, &brought)
            .map_err(|e| refused(e.to_string()))?;
        records.push(record);
    }
    Ok(records)
}

/// What the gate asks of a push, answered from the store and from the objects the push
/// brought (translated, not yet published).
struct PushContext<'a> {
    state: &'a RepoState,
    received: &'a Received,
    rules: Vec<RefRule>,
    identities: Vec<Identity>,
    /// The attestations the push carries, not yet stored.
    carried: &'a [AttestationRecord],
    notes: Vec<String>,
    refs: BTreeMap<BString, RefTarget>,
    settings: RepoSettings,
    /// The new tips the push brought: native id → (SHA-1, kind).
    brought: IdMap<ObjectId, (Sha1, Kind)>,
    may_update: &'a dyn Fn(&str) -> Result<(), Refusal>,
    base_url: Option<&'a str>,
}

impl PushContext<'_> {
    /// A command as the gate sees it: git's SHA-1s turned into what the store holds.
    fn change(&mut self, command: &PushCommand) -> RefChange {
        let repo = &self.state.repo;
        let claim = if command.old.is_zero() {
            Claim::Absent
        } else {
            match repo.id_of_sha1(&command.old) {
                Some(id) => Claim::Target(RefTarget::Direct(id)),
                None => Claim::Unknown,
            }
        };
        let new = if command.is_delete() {
            NewValue::Delete
        } else {
            let typed = match &self.received.ingested {
                Some(ingested) => ingested.ids.typed(repo, &command.new),
                None => None,
            };
            match typed {
                Some((id, kind)) => {
                    self.brought.insert(id, (command.new, kind));
                    NewValue::Set(RefTarget::Direct(id))
                }
                None => NewValue::Missing(command.new.to_string()),
            }
        };
        RefChange {
            name: command.name.clone(),
            claim,
            new,
        }
    }

    fn sha1_of(&self, id: &ObjectId) -> Option<Sha1> {
        match self.brought.get(id) {
            Some((sha1, _)) => Some(*sha1),
            None => self.state.repo.sha1_of(id),
        }
    }
}

impl GateContext for PushContext<'_> {
    fn repo_name(&self) -> &str {
        self.state.repo.name()
    }

    fn url_of(&self, path: &str) -> String {
        match self.base_url {
            Some(base) => format!("{base}{path}"),
            None => path.to_owned(),
        }
    }

    fn refs(&self) -> &BTreeMap<BString, RefTarget> {
        &self.refs
    }

    fn settings(&self) -> &RepoSettings {
        &self.settings
    }

    fn kind_of(&self, id: &ObjectId) -> Option<Kind> {
        match self.brought.get(id) {
            Some((_, kind)) => Some(*kind),
            None => self.state.repo.locate(id)?.kind(),
        }
    }

    fn is_ancestor(&mut self, old: &ObjectId, new: &ObjectId) -> Result<bool, StoreError> {
        let Some(new) = self.sha1_of(new) else {
            return Ok(false);
        };
        is_ancestor(self.state, self.received, *old, new)
    }

    fn merge_brought(
        &mut self,
        new: &ObjectId,
        known: &[ObjectId],
    ) -> Result<Option<String>, StoreError> {
        let Some(new) = self.sha1_of(new) else {
            return Ok(None);
        };
        merge_brought(self.state, self.received, new, known)
    }

    fn may_update(&self, name: &str) -> Result<(), Refusal> {
        (self.may_update)(name)
    }

    fn show(&self, id: &ObjectId) -> String {
        gate::abbreviated(self.sha1_of(id), id)
    }

    fn show_full(&self, id: &ObjectId) -> String {
        self.sha1_of(id).map_or_else(|| id.to_hex(), |s| s.to_hex())
    }

    fn rules(&self) -> &[RefRule] {
        &self.rules
    }

    fn identities(&self) -> &[Identity] {
        &self.identities
    }

    fn attestations(&mut self, commit: &ObjectId) -> Result<Vec<AttestationRecord>, StoreError> {
        let Some(sha1) = self.sha1_of(commit) else {
            return Ok(Vec::new());
        };
        let mut records = self.state.repo.attestations(&sha1)?;
        let hex = sha1.to_hex();
        records.extend(
            self.carried
                .iter()
                .filter(|r| r.commits.contains(&hex) && !records.iter().any(|s| s.id == r.id))
                .cloned()
                .collect::<Vec<_>>(),
        );
        Ok(records)
    }

    fn note(&mut self, text: String) {
        tracing::info!("push to {}: {text}", self.state.repo.name());
        self.notes.push(text);
    }

    fn goals(&self) -> Option<&dyn crate::store::goals::GoalStore> {
        Some(self.state.repo.meta())
    }
}

/// The history of `new` (a pushed commit, or one the store has) as far as the push
/// brings it: each pushed commit with its parents' count, read from the pack, and the
/// stored commits where the walk reaches the store.
struct PushedHistory {
    pushed: Vec<(Sha1, usize)>,
    stored: Vec<ObjectId>,
}

fn pushed_history(state: &RepoState, received: &Received, new: Sha1) -> PushedHistory {
    let repo = &state.repo;
    let mut history = PushedHistory {
        pushed: Vec::new(),
        stored: Vec::new(),
    };
    let mut seen: IdSet<Sha1> = IdSet::default();
    let mut stack = vec![new];
    while let Some(sha1) = stack.pop() {
        if !seen.insert(sha1) {
            continue;
        }
        if let Some(id) = repo.id_of_sha1(&sha1) {
            history.stored.push(id);
            continue;
        }
        let Some(pack) = &received.pack else {
            continue;
        };
        let Ok(body) = pack.decode(&sha1) else {
            continue;
        };
        if let Some((_, parents)) = crate::git::format::commit_links(&body) {
            history.pushed.push((sha1, parents.len()));
            stack.extend(parents);
        }
    }
    history
}

/// Whether the stored commit `old` is in the history of `new`: new commits' parents are
/// read from the pushed pack, stored ones from the commit graph.
fn is_ancestor(
    state: &RepoState,
    received: &Received,
    old: ObjectId,
    new: Sha1,
) -> Result<bool, StoreError> {
    let repo = &state.repo;
    let stored = pushed_history(state, received, new).stored;
    state.with_graph(|graph| {
        let Some(target) = graph.load(repo, old)? else {
            return Ok(false);
        };
        let mut from = Vec::with_capacity(stored.len());
        for id in stored {
            if let Some(i) = graph.load(repo, id)? {
                from.push(i);
            }
        }
        Ok(graph.reaches(&from, target))
    })
}

/// A merge commit in the history of `new` that none of the stored commits `known` has:
/// one the push brings, or a stored one the commit graph finds.
fn merge_brought(
    state: &RepoState,
    received: &Received,
    new: Sha1,
    known: &[ObjectId],
) -> Result<Option<String>, StoreError> {
    let repo = &state.repo;
    let history = pushed_history(state, received, new);
    if let Some((merge, _)) = history.pushed.iter().find(|(_, parents)| *parents > 1) {
        return Ok(Some(merge.to_hex()));
    }
    state.with_graph(|graph| {
        let mut load = |ids: &[ObjectId]| -> Result<Vec<_>, StoreError> {
            let mut loaded = Vec::with_capacity(ids.len());
            for id in ids {
                loaded.extend(graph.load(repo, *id)?);
            }
            Ok(loaded)
        };
        let from = load(&history.stored)?;
        let known = load(known)?;
        let merge = graph.first_merge(&from, &known);
        Ok(merge.map(|i| {
            let id = graph.node(i).id;
            repo.sha1_of(&id)
                .map_or_else(|| id.to_hex(), |s| s.to_hex())
        }))
    })
}
