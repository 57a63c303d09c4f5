//! The one function every ref update of a push passes through. Later rules (token scopes,
//! signed-attestation policies) belong here too, so nothing can update a ref around them.

use bstr::{BStr, ByteSlice};

use crate::git::check_ref_name;
use crate::object::{Kind, ObjectId, Sha1};
use crate::store::{Expected, RefTarget, RefUpdate};

use super::request::PushCommand;

/// What the repository allows.
#[derive(Debug, Clone, Default)]
pub struct RepoPolicy {
    /// Non-fast-forward updates of the default branch (other refs may always be forced).
    pub allow_force: bool,
    /// The branch `HEAD` names.
    pub default_branch: Option<bstr::BString>,
}

/// One update as the server sees it.
pub struct Proposed<'a> {
    pub command: &'a PushCommand,
    /// The ref now, with its SHA-1.
    pub current: Option<(RefTarget, Sha1)>,
    /// The new object's native id and kind (`None` for a delete, or when it is missing).
    pub new: Option<(ObjectId, Kind)>,
}

/// Checks one update; `may_update(ref)` answers whether the pusher's token allows that
/// ref, `is_ancestor(old, new)` whether the current commit is in the new one's history.
/// The error is the reason git shows as `[remote rejected] (reason)`.
pub fn check_update(
    policy: &RepoPolicy,
    proposed: &Proposed<'_>,
    may_update: &dyn Fn(&str) -> Result<(), String>,
    is_ancestor: &mut dyn FnMut(ObjectId, Sha1) -> Result<bool, String>,
) -> Result<RefUpdate, String> {
    let command = proposed.command;
    let name: &BStr = command.name.as_bstr();
    // git's receive-pack checks the name after `refs/` as a ref of its own, which needs two
    // levels: `refs/heads` itself (a directory of every branch) is refused.
    if !name.starts_with(b"refs/") || !name[5..].contains(&b'/') {
        return Err("funny refname: only names of two levels below refs/ can be pushed".into());
    }
    check_ref_name(name).map_err(|reason| format!("invalid ref name: {reason}"))?;
    let text = name
        .to_str()
        .map_err(|_| "invalid ref name: not UTF-8".to_owned())?;
    may_update(text)?;
    match (&proposed.current, command.old.is_zero()) {
        (None, true) => {}
        (Some((_, sha1)), false) if *sha1 == command.old => {}
        (Some((_, sha1)), _) => {
            return Err(format!(
                "fetch first: the ref is at {} on the server",
                &sha1.to_hex()[..12]
            ));
        }
        (None, false) => return Err("fetch first: the ref does not exist on the server".into()),
    }
    let expected = match &proposed.current {
        Some((target, _)) => Expected::Value(target.clone()),
        None => Expected::Absent,
    };
    let is_default = policy
        .default_branch
        .as_ref()
        .is_some_and(|b| b.as_bstr() == name);
    if command.is_delete() {
        if proposed.current.is_none() {
            return Err("the ref does not exist".into());
        }
        if is_default {
            return Err("refusing to delete the current branch".into());
        }
        return Ok(RefUpdate {
            name: command.name.clone(),
            expected,
            new: None,
        });
    }
    let Some((new_id, new_kind)) = proposed.new else {
        return Err(format!("missing object {}", command.new));
    };
    if name.starts_with(b"refs/heads/") && new_kind != Kind::Commit {
        return Err(format!("a branch must point to a commit, not a {new_kind:?}").to_lowercase());
    }
    if let Some((RefTarget::Direct(old_id), _)) = &proposed.current
        && *old_id != new_id
        && is_default
        && !policy.allow_force
        && !is_ancestor(*old_id, command.new)?
    {
        return Err("non-fast-forward updates of the default branch are not allowed".into());
    }
    Ok(RefUpdate {
        name: command.name.clone(),
        expected,
        new: Some(RefTarget::Direct(new_id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> Sha1 {
        Sha1::from_hex(c.to_string().repeat(40).as_bytes()).unwrap()
    }

    fn id(byte: u8) -> ObjectId {
        ObjectId([byte; 32])
    }

    fn command(old: Sha1, new: Sha1, name: &str) -> PushCommand {
        PushCommand {
            old,
            new,
            name: name.into(),
        }
    }

    #[test]
    fn stale_names_deletes_kinds_and_fast_forwards() {
        let zero = Sha1([0; 20]);
        let policy = RepoPolicy {
            allow_force: false,
            default_branch: Some("refs/heads/main".into()),
        };
        let current = Some((RefTarget::Direct(id(1)), sha('1')));
        let new = Some((id(2), Kind::Commit));
        let mut never = |_: ObjectId, _: Sha1| Ok(false);
        let mut always = |_: ObjectId, _: Sha1| Ok(true);
        let check =
            |cmd: &PushCommand,
             current: Option<(RefTarget, Sha1)>,
             new,
             anc: &mut dyn FnMut(ObjectId, Sha1) -> Result<bool, String>| {
                check_update(
                    &policy,
                    &Proposed {
                        command: cmd,
                        current,
                        new,
                    },
                    &|_| Ok(()),
                    anc,
                )
            };

        let main = command(sha('1'), sha('2'), "refs/heads/main");
        assert!(check(&main, current.clone(), new, &mut always).is_ok());
        let err = check(&main, current.clone(), new, &mut never).unwrap_err();
        assert!(err.starts_with("non-fast-forward"), "{err}");
        // Other branches may be forced; the default one when the repository allows it.
        let topic = command(sha('1'), sha('2'), "refs/heads/topic");
        assert!(check(&topic, current.clone(), new, &mut never).is_ok());
        let lenient = RepoPolicy {
            allow_force: true,
            ..policy.clone()
        };
        assert!(
            check_update(
                &lenient,
                &Proposed {
                    command: &main,
                    current: current.clone(),
                    new
                },
                &|_| Ok(()),
                &mut never
            )
            .is_ok()
        );
        // The pusher's token is asked about every ref, and its refusal is the reason.
        let refused = check_update(
            &lenient,
            &Proposed {
                command: &topic,
                current: current.clone(),
                new,
            },
            &|name| Err(format!("not allowed by token: {name}")),
            &mut always,
        );
        assert_eq!(
            refused.unwrap_err(),
            "not allowed by token: refs/heads/topic"
        );

        let stale = command(sha('3'), sha('2'), "refs/heads/main");
        let err = check(&stale, current.clone(), new, &mut always).unwrap_err();
        assert!(err.starts_with("fetch first"), "{err}");
        let create_existing = command(zero, sha('2'), "refs/heads/main");
        assert!(
            check(&create_existing, current.clone(), new, &mut always)
                .unwrap_err()
                .starts_with("fetch first")
        );

        let bad = command(zero, sha('2'), "refs/heads/a..b");
        assert!(
            check(&bad, None, new, &mut always)
                .unwrap_err()
                .starts_with("invalid ref name")
        );
        for outside in ["HEAD", "refs/heads", "refs/x", "refs/"] {
            let outside = command(zero, sha('2'), outside);
            assert!(
                check(&outside, None, new, &mut always)
                    .unwrap_err()
                    .starts_with("funny refname")
            );
        }

        let delete_main = command(sha('1'), zero, "refs/heads/main");
        assert_eq!(
            check(&delete_main, current.clone(), None, &mut always).unwrap_err(),
            "refusing to delete the current branch"
        );
        let delete_topic = command(sha('1'), zero, "refs/heads/topic");
        let update = check(&delete_topic, current.clone(), None, &mut always).unwrap();
        assert_eq!(update.new, None);

        let blob = command(zero, sha('2'), "refs/heads/blob");
        let err = check(&blob, None, Some((id(2), Kind::Blob)), &mut always).unwrap_err();
        assert!(err.contains("must point to a commit"), "{err}");
        let tag = command(zero, sha('2'), "refs/tags/blob");
        assert!(check(&tag, None, Some((id(2), Kind::Blob)), &mut always).is_ok());
    }
}
