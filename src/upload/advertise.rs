//! What a client sees before it fetches: the v2 capability list, the v0/v1 ref
//! advertisement, and v2 `ls-refs`.

use bstr::{BStr, BString, ByteSlice};

use crate::object::{ObjectId, Sha1};
use crate::protocol::pktline::{self, PktReader};
use crate::store::{RefTarget, StoreError};

use super::request::next_arg;
use super::{RepoState, UploadError};
use crate::protocol::AGENT;

/// How many symbolic refs are followed before giving up (git: 5).
const MAX_SYMREF_DEPTH: usize = 5;

/// A ref as advertised: its object, the object it peels to (annotated tags), and the
/// target of a symbolic ref.
struct Advertised {
    name: BString,
    sha1: Sha1,
    peeled: Option<Sha1>,
    symref_target: Option<BString>,
}

/// HEAD when it names a branch that does not exist yet.
struct Unborn(BString);

/// Follows `name` to a direct ref in `refs` (sorted by name).
fn resolve(
    refs: &[(BString, RefTarget)],
    name: &BStr,
) -> Result<Option<(ObjectId, Option<BString>)>, StoreError> {
    let mut current: &BStr = name;
    let mut symref = None;
    for _ in 0..MAX_SYMREF_DEPTH {
        let Ok(i) = refs.binary_search_by(|(n, _)| n.as_bstr().cmp(current)) else {
            return Ok(None);
        };
        match &refs[i].1 {
            RefTarget::Direct(id) => return Ok(Some((*id, symref))),
            RefTarget::Symbolic(target) => {
                symref.get_or_insert_with(|| target.clone());
                current = target.as_bstr();
            }
        }
    }
    Ok(None)
}

/// Every ref, HEAD first, as the store has them.
fn list(state: &RepoState) -> Result<(Vec<Advertised>, Option<Unborn>), StoreError> {
    let repo = &state.repo;
    let mut refs = repo.refs()?;
    // Refs stored before names were bounded (or HEAD naming one) could not be advertised
    // in a pkt-line; they are left out rather than breaking every fetch.
    refs.retain(|(name, target)| {
        let fits = name.len() <= crate::git::MAX_REF_NAME_BYTES
            && match target {
                RefTarget::Symbolic(to) => to.len() <= crate::git::MAX_REF_NAME_BYTES,
                RefTarget::Direct(_) => true,
            };
        if !fits {
            tracing::warn!(
                "{}: not advertising a ref with a name over the limit",
                repo.name()
            );
        }
        fits
    });
    let mut out = Vec::with_capacity(refs.len());
    let mut unborn = None;
    let advertised = |name: &BString, id: ObjectId, symref_target| -> Result<_, StoreError> {
        let sha1 = repo.sha1_of(&id).ok_or_else(|| StoreError::DanglingRef {
            name: name.to_string(),
            target: id.to_hex(),
        })?;
        let peeled = match state.peeled(id)? {
            Some(target) => repo.sha1_of(&target),
            None => None,
        };
        Ok(Advertised {
            name: name.clone(),
            sha1,
            peeled,
            symref_target,
        })
    };
    let head = BString::from("HEAD");
    match resolve(&refs, head.as_bstr())? {
        Some((id, symref)) => out.push(advertised(&head, id, symref)?),
        None => {
            if let Ok(i) = refs.binary_search_by(|(n, _)| n.as_slice().cmp(b"HEAD"))
                && let RefTarget::Symbolic(target) = &refs[i].1
            {
                unborn = Some(Unborn(target.clone()));
            }
        }
    }
    for (name, target) in &refs {
        if name.as_slice() == b"HEAD" {
            continue;
        }
        match target {
            RefTarget::Direct(id) => out.push(advertised(name, *id, None)?),
            RefTarget::Symbolic(_) => {
                if let Some((id, symref)) = resolve(&refs, name.as_bstr())? {
                    out.push(advertised(name, id, symref)?);
                }
            }
        }
    }
    Ok((out, unborn))
}

/// Appends an advertisement line. Names are bounded so that every line fits; one that
/// still does not is left out rather than failing the request.
fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    if let Err(e) = pktline::data(out, line) {
        tracing::warn!("left a line out of an advertisement: {e}");
    }
}

/// The v2 capability advertisement.
pub fn capabilities_v2() -> Vec<u8> {
    let mut out = Vec::new();
    pktline::text(&mut out, "version 2");
    pktline::text(&mut out, &format!("agent={AGENT}"));
    pktline::text(&mut out, "ls-refs=unborn");
    pktline::text(&mut out, "fetch=shallow wait-for-done filter");
    pktline::text(&mut out, "server-option");
    pktline::text(&mut out, "object-format=sha1");
    pktline::flush(&mut out);
    out
}

/// v2 `ls-refs`.
pub fn ls_refs(state: &RepoState, reader: &mut PktReader<'_>) -> Result<Vec<u8>, UploadError> {
    let (mut peel, mut symrefs, mut unborn_wanted) = (false, false, false);
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    // git always ends the arguments with a flush; a body that simply ends is taken as well.
    while !reader.at_end()
        && let Some(line) = next_arg(reader, "ls-refs arguments")?
    {
        match line {
            b"peel" => peel = true,
            b"symrefs" => symrefs = true,
            b"unborn" => unborn_wanted = true,
            _ => match line.strip_prefix(b"ref-prefix ") {
                // Past git's own limit, prefixes only cost time: list everything.
                Some(prefix) if prefixes.len() < 65536 => prefixes.push(prefix.to_vec()),
                Some(_) => {}
                None => {
                    return Err(UploadError::Request(format!(
                        "unexpected line: '{}'",
                        line.as_bstr()
                    )));
                }
            },
        }
    }
    let wanted = |name: &[u8]| prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p));
    let (refs, unborn) = list(state)?;
    let mut out = Vec::with_capacity(refs.len() * 64);
    let mut line = Vec::with_capacity(256);
    if let Some(Unborn(target)) = &unborn
        && unborn_wanted
        && wanted(b"HEAD")
    {
        line.clear();
        line.extend_from_slice(b"unborn HEAD");
        if symrefs {
            line.extend_from_slice(b" symref-target:");
            line.extend_from_slice(target);
        }
        line.push(b'\n');
        push_line(&mut out, &line);
    }
    for r in refs.iter().filter(|r| wanted(&r.name)) {
        line.clear();
        r.sha1.write_hex(&mut line);
        line.push(b' ');
        line.extend_from_slice(&r.name);
        if symrefs && let Some(target) = &r.symref_target {
            line.extend_from_slice(b" symref-target:");
            line.extend_from_slice(target);
        }
        if peel && let Some(peeled) = &r.peeled {
            line.extend_from_slice(b" peeled:");
            peeled.write_hex(&mut line);
        }
        line.push(b'\n');
        push_line(&mut out, &line);
    }
    pktline::flush(&mut out);
    Ok(out)
}

/// The v0/v1 advertisement of `git-upload-pack` (after the `# service=` header, which the
/// HTTP layer adds).
pub fn advertisement_v0(state: &RepoState) -> Result<Vec<u8>, StoreError> {
    let (refs, _) = list(state)?;
    let mut caps = String::from(
        "multi_ack thin-pack side-band side-band-64k ofs-delta shallow deepen-since deepen-not \
         deepen-relative no-progress include-tag multi_ack_detailed allow-tip-sha1-in-want \
         allow-reachable-sha1-in-want no-done",
    );
    if let Some(head) = refs.first().filter(|r| r.name.as_slice() == b"HEAD")
        && let Some(target) = &head.symref_target
    {
        caps.push_str(&format!(" symref=HEAD:{target}"));
    }
    caps.push_str(&format!(" filter object-format=sha1 agent={AGENT}"));
    let mut out = Vec::with_capacity(refs.len() * 64 + caps.len());
    let mut line = Vec::with_capacity(256);
    if refs.is_empty() {
        line.extend_from_slice(format!("{} capabilities^{{}}\0{caps}\n", Sha1([0; 20])).as_bytes());
        push_line(&mut out, &line);
    }
    for (i, r) in refs.iter().enumerate() {
        line.clear();
        r.sha1.write_hex(&mut line);
        line.push(b' ');
        line.extend_from_slice(&r.name);
        if i == 0 {
            line.push(0);
            line.extend_from_slice(caps.as_bytes());
        }
        line.push(b'\n');
        push_line(&mut out, &line);
        if let Some(peeled) = &r.peeled {
            line.clear();
            peeled.write_hex(&mut line);
            line.push(b' ');
            line.extend_from_slice(&r.name);
            line.extend_from_slice(b"^{}\n");
            push_line(&mut out, &line);
        }
    }
    pktline::flush(&mut out);
    Ok(out)
}

/// Resolves a ref the way git's `expand_ref` does for `deepen-not`: the full name, or a
/// short name under `refs/`, `refs/tags/`, `refs/heads/`, `refs/remotes/`; exactly one
/// must exist. `refs` is sorted by name, as `Repo::refs` returns them.
pub fn expand_ref(refs: &[(BString, RefTarget)], name: &[u8]) -> Option<ObjectId> {
    let candidates: Vec<Vec<u8>> = ["", "refs/", "refs/tags/", "refs/heads/", "refs/remotes/"]
        .iter()
        .map(|p| [p.as_bytes(), name].concat())
        .chain(std::iter::once([b"refs/remotes/", name, b"/HEAD"].concat()))
        .collect();
    let found: Vec<ObjectId> = candidates
        .iter()
        .filter_map(|c| resolve(refs, c.as_bstr()).ok().flatten().map(|(id, _)| id))
        .collect();
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}
