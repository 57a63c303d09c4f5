//! The contract of the metadata store and the registry (`store::backend`), checked through
//! the traits only, so that every implementation runs the same suite: redb now, PostgreSQL
//! when it comes (a second `Harness` beside `redb_harness`).

use std::sync::Arc;

use forge::object::ObjectId;
use forge::store::backend::{
    AttestationRecord, AttestationSigner, MetaStore, MetaWrite, SegmentEntry,
};
use forge::store::events::{Actor, EventFilter, EventKind, NewEvent, RefUpdated};
use forge::store::goals::{Approach, ApproachState, GoalError, GoalState, NewGoal, claim_ttl};
use forge::store::{
    DataDir, Expected, Identity, IdentityError, IdentityKey, IdentityKind, RefTarget, RefUpdate,
    RepoName, Setting, Standing, StoreError,
};

/// Fresh stores of one implementation, with as many handles on each as a test asks for.
struct Harness {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Harness {
    /// A new repository's metadata store, opened `handles` times.
    fn meta(&self, name: &str, handles: usize) -> Vec<Box<dyn MetaStore>> {
        let data = DataDir::open_or_init(&self.root).unwrap();
        let record = data.create_repo(&RepoName::parse(name).unwrap()).unwrap();
        (0..handles)
            .map(|_| {
                DataDir::open(&self.root)
                    .unwrap()
                    .open_meta(&record)
                    .unwrap()
            })
            .collect()
    }

    /// Handles on one registry (each a data directory opened on its own).
    fn registries(&self, handles: usize) -> Vec<DataDir> {
        (0..handles)
            .map(|_| DataDir::open_or_init(&self.root).unwrap())
            .collect()
    }
}

fn redb_harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    Harness { _dir: dir, root }
}

fn id(n: u64) -> ObjectId {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[31] = 0xee;
    ObjectId(bytes)
}

fn direct(n: u64) -> RefTarget {
    RefTarget::Direct(id(n))
}

fn update(name: &str, expected: Expected, new: Option<RefTarget>) -> RefUpdate {
    RefUpdate {
        name: name.into(),
        expected,
        new,
    }
}

fn write(meta: &dyn MetaStore, updates: &[RefUpdate]) -> Result<(), StoreError> {
    meta.commit(&MetaWrite {
        refs: updates.iter().collect(),
        segment: None,
        needs: Vec::new(),
        attestations: Vec::new(),
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    })
    .map(|_| ())
}

fn segment(name: &str, added_at: u64) -> SegmentEntry {
    SegmentEntry {
        name: name.to_owned(),
        objects: 3,
        bytes: 300,
        added_at,
    }
}

fn refs_of(meta: &dyn MetaStore) -> Vec<(String, RefTarget)> {
    meta.refs()
        .unwrap()
        .into_iter()
        .map(|(name, target)| (name.to_string(), target))
        .collect()
}

fn head() -> (String, RefTarget) {
    (
        "HEAD".to_owned(),
        RefTarget::Symbolic("refs/heads/main".into()),
    )
}

/// Every expected value against every state of the ref: absent and present.
fn compare_and_swap_cases(h: &Harness) {
    let meta = h.meta("cas/cases", 1).remove(0);
    let m = meta.as_ref();
    assert_eq!(refs_of(m), [head()], "a new repository has HEAD only");
    let name = "refs/heads/x";
    // On an absent ref: Absent and Any apply, Value conflicts.
    let conflict = write(
        m,
        &[update(name, Expected::Value(direct(1)), Some(direct(2)))],
    );
    assert!(
        matches!(&conflict, Err(StoreError::RefConflict { name: n, .. }) if n == name),
        "{conflict:?}"
    );
    assert_eq!(m.read_ref(name.as_bytes()).unwrap(), None);
    write(m, &[update(name, Expected::Absent, Some(direct(1)))]).unwrap();
    assert_eq!(m.read_ref(name.as_bytes()).unwrap(), Some(direct(1)));
    write(m, &[update("refs/heads/y", Expected::Any, Some(direct(7)))]).unwrap();
    assert_eq!(m.read_ref(b"refs/heads/y").unwrap(), Some(direct(7)));
    // On a present ref: Absent and a wrong Value conflict, the right Value and Any apply.
    for wrong in [Expected::Absent, Expected::Value(direct(9))] {
        let result = write(m, &[update(name, wrong.clone(), Some(direct(5)))]);
        assert!(
            matches!(result, Err(StoreError::RefConflict { .. })),
            "{wrong:?}"
        );
        assert_eq!(m.read_ref(name.as_bytes()).unwrap(), Some(direct(1)));
    }
    write(
        m,
        &[update(name, Expected::Value(direct(1)), Some(direct(2)))],
    )
    .unwrap();
    write(m, &[update(name, Expected::Any, Some(direct(3)))]).unwrap();
    assert_eq!(m.read_ref(name.as_bytes()).unwrap(), Some(direct(3)));
    // Deletes are held to the same expectations.
    let stale_delete = write(m, &[update(name, Expected::Value(direct(2)), None)]);
    assert!(matches!(stale_delete, Err(StoreError::RefConflict { .. })));
    write(m, &[update(name, Expected::Value(direct(3)), None)]).unwrap();
    assert_eq!(m.read_ref(name.as_bytes()).unwrap(), None);
    // A symbolic value compares as itself.
    let symbolic = RefTarget::Symbolic("refs/heads/y".into());
    write(
        m,
        &[update(
            "HEAD",
            Expected::Value(head().1),
            Some(symbolic.clone()),
        )],
    )
    .unwrap();
    let wrong = write(
        m,
        &[update("HEAD", Expected::Value(head().1), Some(direct(1)))],
    );
    assert!(matches!(wrong, Err(StoreError::RefConflict { .. })));
    assert_eq!(m.read_ref(b"HEAD").unwrap(), Some(symbolic));
}

/// A batch applies whole or not at all, including the refs before the one that failed.
fn batches_are_atomic(h: &Harness) {
    let meta = h.meta("cas/batch", 1).remove(0);
    let m = meta.as_ref();
    write(
        m,
        &[update("refs/heads/a", Expected::Absent, Some(direct(1)))],
    )
    .unwrap();
    let before = refs_of(m);
    let failing = write(
        m,
        &[
            update("refs/heads/b", Expected::Absent, Some(direct(2))),
            update("refs/heads/a", Expected::Value(direct(1)), None),
            update("refs/heads/c", Expected::Value(direct(3)), Some(direct(3))),
        ],
    );
    assert!(matches!(failing, Err(StoreError::RefConflict { .. })));
    assert_eq!(refs_of(m), before);
    // A name that would be a directory of another ref, as the batch leaves them.
    let directory = write(
        m,
        &[update("refs/heads/a/b", Expected::Absent, Some(direct(2)))],
    );
    assert!(
        matches!(&directory, Err(StoreError::RefNameConflict { existing, .. }) if existing == "refs/heads/a"),
        "{directory:?}"
    );
    let below = write(
        m,
        &[
            update("refs/tags/t", Expected::Absent, Some(direct(4))),
            update("refs/heads", Expected::Absent, Some(direct(2))),
        ],
    );
    assert!(
        matches!(below, Err(StoreError::RefNameConflict { .. })),
        "{below:?}"
    );
    assert_eq!(refs_of(m), before);
    // Deleting the directory's ref in the same batch makes room.
    write(
        m,
        &[
            update("refs/heads/a", Expected::Value(direct(1)), None),
            update("refs/heads/a/b", Expected::Absent, Some(direct(2))),
        ],
    )
    .unwrap();
    assert_eq!(
        refs_of(m),
        [head(), ("refs/heads/a/b".to_owned(), direct(2))]
    );
}

/// A segment is registered in the same transaction as the refs that need it, and the
/// generation counts registrations: up by one each, never otherwise.
fn segments_register_with_refs_and_generations_rise(h: &Harness) {
    let meta = h.meta("seg/gen", 1).remove(0);
    let m = meta.as_ref();
    assert_eq!(m.segments().unwrap(), (Vec::new(), Some(0)));
    assert_eq!(m.generation().unwrap(), Some(0));
    let ref_a = update("refs/heads/a", Expected::Absent, Some(direct(1)));
    let step = m
        .commit(&MetaWrite {
            refs: vec![&ref_a],
            segment: Some(segment("s1", 10)),
            needs: Vec::new(),
            attestations: Vec::new(),
            events: Vec::new(),
            actor: None,
            ..MetaWrite::default()
        })
        .unwrap();
    assert_eq!(step, Some((Some(0), 1)));
    assert_eq!(m.read_ref(b"refs/heads/a").unwrap(), Some(direct(1)));
    // A refused compare-and-swap registers nothing and moves no generation.
    let stale = update("refs/heads/a", Expected::Absent, Some(direct(2)));
    let refused = m.commit(&MetaWrite {
        refs: vec![&stale],
        segment: Some(segment("s-refused", 20)),
        needs: Vec::new(),
        attestations: Vec::new(),
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    });
    assert!(matches!(refused, Err(StoreError::RefConflict { .. })));
    assert_eq!(m.generation().unwrap(), Some(1));
    // Ref-only writes leave the generation; a segment alone moves it.
    write(
        m,
        &[update("refs/heads/b", Expected::Absent, Some(direct(2)))],
    )
    .unwrap();
    assert_eq!(m.generation().unwrap(), Some(1));
    let step = m
        .commit(&MetaWrite {
            refs: Vec::new(),
            segment: Some(segment("s2", 30)),
            needs: Vec::new(),
            attestations: Vec::new(),
            events: Vec::new(),
            actor: None,
            ..MetaWrite::default()
        })
        .unwrap();
    assert_eq!(step, Some((Some(1), 2)));
    let (listed, generation) = m.segments().unwrap();
    assert_eq!(generation, Some(2));
    assert_eq!(
        listed,
        [segment("s2", 30), segment("s1", 10)],
        "newest first"
    );
    // A ref to an object of a segment that is no longer registered is refused whole.
    let to_gone = update("refs/heads/c", Expected::Absent, Some(direct(3)));
    let gone = m.commit(&MetaWrite {
        refs: vec![&to_gone],
        segment: None,
        needs: vec!["s1".into(), "gone".into()],
        attestations: Vec::new(),
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    });
    assert!(
        matches!(&gone, Err(StoreError::SegmentUnregistered(name)) if name == "gone"),
        "{gone:?}"
    );
    assert_eq!(m.read_ref(b"refs/heads/c").unwrap(), None);
    m.commit(&MetaWrite {
        refs: vec![&to_gone],
        segment: None,
        needs: vec!["s1".into(), "s2".into()],
        attestations: Vec::new(),
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    })
    .unwrap();
    assert_eq!(m.read_ref(b"refs/heads/c").unwrap(), Some(direct(3)));
}

fn settings_round_trip(h: &Harness) {
    let meta = h.meta("settings/x", 2);
    let (a, b) = (meta[0].as_ref(), meta[1].as_ref());
    let defaults = a.settings().unwrap();
    assert!(!defaults.allow_force);
    assert_eq!(a.stored_setting(Setting::AllowForce).unwrap(), None);
    a.set_setting(Setting::AllowForce, true, &op()).unwrap();
    assert!(b.settings().unwrap().allow_force, "another handle sees it");
    assert_eq!(
        b.stored_setting(Setting::AllowForce).unwrap().as_deref(),
        Some("true")
    );
    b.set_setting(Setting::FsckObjects, false, &op()).unwrap();
    let both = a.settings().unwrap();
    assert!(both.allow_force && !both.fsck_objects);
}

/// Two handles racing on one ref and registering segments: no update is lost, none applied
/// twice, and every registration is counted.
fn two_handles_commit_concurrently(h: &Harness) {
    let handles: Vec<Arc<dyn MetaStore>> = h.meta("race/x", 2).into_iter().map(Arc::from).collect();
    const ROUNDS: u64 = 40;
    let workers: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(worker, meta)| {
            let meta = meta.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                let mut done = 0;
                while done < ROUNDS {
                    let current = meta.read_ref(b"refs/heads/counter").unwrap();
                    let n = match &current {
                        Some(RefTarget::Direct(id)) => {
                            u64::from_le_bytes(id.0[..8].try_into().unwrap())
                        }
                        _ => 0,
                    };
                    let expected = match current {
                        Some(target) => Expected::Value(target),
                        None => Expected::Absent,
                    };
                    let bump = update("refs/heads/counter", expected, Some(direct(n + 1)));
                    let registered = segment(&format!("w{worker}-{done}"), n + 1);
                    match meta.commit(&MetaWrite {
                        refs: vec![&bump],
                        segment: Some(registered),
                        needs: Vec::new(),
                        attestations: Vec::new(),
                        events: Vec::new(),
                        actor: None,
                        ..MetaWrite::default()
                    }) {
                        Ok(_) => done += 1,
                        Err(StoreError::RefConflict { .. }) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let total = 2 * ROUNDS;
    assert_eq!(
        handles[0].read_ref(b"refs/heads/counter").unwrap(),
        Some(direct(total))
    );
    let (segments, generation) = handles[1].segments().unwrap();
    assert_eq!(segments.len() as u64, total);
    assert_eq!(generation, Some(total));
}

fn repositories_in_the_registry(h: &Harness) {
    let handles = h.registries(2);
    let (a, b) = (handles[0].registry(), handles[1].registry());
    let name = RepoName::parse("alice/app").unwrap();
    let mut laid_out = Vec::new();
    let first = a
        .create_repo(
            &name,
            100,
            &mut |id| {
                laid_out.push(id);
                Ok(())
            },
            &op(),
        )
        .unwrap();
    assert_eq!(laid_out, [first.id]);
    assert_eq!((first.name.as_str(), first.created_at), ("alice/app", 100));
    assert_eq!(first.public, Some(false));
    let same = RepoName::parse("Alice/App").unwrap();
    let again = b.create_repo(&same, 101, &mut |_| Ok(()), &op());
    assert!(matches!(again, Err(StoreError::RepoExists(_))), "{again:?}");
    assert_eq!(b.find_repo(&same).unwrap().map(|r| r.id), Some(first.id));
    // A layout that fails registers nothing, and its id is not handed out again.
    let broken = RepoName::parse("alice/broken").unwrap();
    let failed = a.create_repo(
        &broken,
        102,
        &mut |_| Err(StoreError::Corrupt("disk".into())),
        &op(),
    );
    assert!(failed.is_err());
    assert_eq!(a.find_repo(&broken).unwrap().map(|r| r.id), None);
    // `public` lives in the record, so listing reads it without opening anything.
    let changed = b
        .update_repo(&name, &mut |r| r.public = Some(true), None)
        .unwrap();
    assert_eq!(changed.public, Some(true));
    let listed = a.list_repos().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].public, Some(true));
    let removed = a.remove_repo(&name, &op()).unwrap();
    assert_eq!(removed.id, first.id);
    assert!(matches!(
        b.remove_repo(&name, &op()),
        Err(StoreError::RepoNotFound(_))
    ));
    assert!(matches!(
        b.update_repo(&name, &mut |_| (), None),
        Err(StoreError::RepoNotFound(_))
    ));
    let recreated = b.create_repo(&name, 103, &mut |_| Ok(()), &op()).unwrap();
    assert!(recreated.id > first.id, "ids are never reused");
    // Two handles creating at once get distinct ids.
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let root = h.root.clone();
            std::thread::spawn(move || {
                let data = DataDir::open(&root).unwrap();
                (0..20)
                    .map(|i| {
                        let name = RepoName::parse(&format!("race/r{worker}-{i}")).unwrap();
                        data.registry()
                            .create_repo(&name, 0, &mut |_| Ok(()), &op())
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

fn identity(name: &str, kind: IdentityKind, owner: Option<&str>) -> Identity {
    Identity {
        name: name.to_owned(),
        kind,
        owner: owner.map(str::to_owned),
        keys: Vec::new(),
        created_at: 1,
        disabled: false,
        incarnation: 7,
    }
}

fn identities_and_revocations(h: &Harness) {
    let handles = h.registries(2);
    let (a, b) = (handles[0].registry(), handles[1].registry());
    let alice = identity("alice", IdentityKind::Human, None);
    assert_eq!(a.add_identity(&alice, &op()).unwrap(), alice);
    assert!(matches!(
        b.add_identity(&identity("ALICE", IdentityKind::Human, None), &op()),
        Err(IdentityError::Exists(_))
    ));
    let bot = identity("bot", IdentityKind::Agent, Some("alice"));
    b.add_identity(&bot, &op()).unwrap();
    assert!(matches!(
        a.add_identity(
            &identity("orphan", IdentityKind::Agent, Some("nobody")),
            &op()
        ),
        Err(IdentityError::NotFound(_))
    ));
    assert!(matches!(
        a.add_identity(&identity("sub", IdentityKind::Agent, Some("bot")), &op()),
        Err(IdentityError::Invalid(_))
    ));
    assert_eq!(a.find_identity("Bot").unwrap(), Some(bot.clone()));
    let mut names: Vec<String> = a
        .list_identities()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    names.sort();
    assert_eq!(names, ["alice", "bot"]);
    // A key belongs to one identity, for good; revoking marks it and keeps it.
    let key = |hex: char, at: u64| IdentityKey {
        key: hex.to_string().repeat(64),
        added_at: at,
        revoked_at: None,
    };
    let with_key = a.add_identity_key("alice", &key('a', 10), &op()).unwrap();
    assert_eq!(with_key.keys, [key('a', 10)]);
    for (name, taken) in [("bot", 'a'), ("alice", 'a')] {
        assert!(
            matches!(
                b.add_identity_key(name, &key(taken, 11), &op()),
                Err(IdentityError::Invalid(message)) if message.contains("already belongs to identity alice")
            ),
            "{name}"
        );
    }
    let mut carol = identity("carol", IdentityKind::Human, None);
    carol.keys = vec![key('a', 12)];
    assert!(matches!(
        a.add_identity(&carol, &op()),
        Err(IdentityError::Invalid(_))
    ));
    assert_eq!(a.find_identity("carol").unwrap(), None);
    assert!(matches!(
        a.add_identity_key("nobody", &key('c', 13), &op()),
        Err(IdentityError::NotFound(_))
    ));
    let revoked = b
        .revoke_identity_key("alice", &key('a', 0).key, 20, &op())
        .unwrap();
    assert_eq!(revoked.keys[0].revoked_at, Some(20));
    assert_eq!(
        a.find_identity("alice").unwrap().unwrap().keys[0].revoked_at,
        Some(20)
    );
    assert!(
        matches!(
            a.revoke_identity_key("alice", &key('a', 0).key, 30, &op()),
            Err(IdentityError::Invalid(_))
        ),
        "already revoked"
    );
    for (name, hex) in [("alice", 'd'), ("bot", 'a')] {
        assert!(
            matches!(
                a.revoke_identity_key(name, &key(hex, 0).key, 30, &op()),
                Err(IdentityError::KeyNotFound { .. })
            ),
            "{name} {hex}"
        );
    }
    assert!(matches!(
        b.add_identity_key("bot", &key('a', 31), &op()),
        Err(IdentityError::Invalid(_))
    ));
    assert_eq!(
        a.find_identity("alice").unwrap().unwrap().keys[0].revoked_at,
        Some(20),
        "a failed revocation writes nothing"
    );
    assert!(
        b.set_identity_disabled("bot", true, &op())
            .unwrap()
            .disabled
    );
    assert!(a.find_identity("bot").unwrap().unwrap().disabled);
    assert!(matches!(
        a.remove_identity("alice", &op()),
        Err(IdentityError::Invalid(message)) if message.contains("owns the agents bot")
    ));
    b.remove_identity("bot", &op()).unwrap();
    a.remove_identity("alice", &op()).unwrap();
    assert!(matches!(
        a.remove_identity("alice", &op()),
        Err(IdentityError::NotFound(_))
    ));
    assert_eq!(b.find_identity("alice").unwrap(), None);

    let (one, two) = (vec![1u8; 64], vec![2u8; 64]);
    assert!(!a.any_revoked(std::slice::from_ref(&one)).unwrap());
    assert_eq!(
        a.revoke_token_blocks(&[one.clone(), two.clone()], 5, &revocation())
            .unwrap(),
        2
    );
    assert_eq!(
        b.revoke_token_blocks(std::slice::from_ref(&one), 6, &revocation())
            .unwrap(),
        0
    );
    assert!(b.any_revoked(&[vec![3u8; 64], two]).unwrap());
    assert!(!b.any_revoked(&[vec![3u8; 64]]).unwrap());
}

fn attestation(id: char, commits: &[char], stored_at: u64) -> AttestationRecord {
    AttestationRecord {
        id: id.to_string().repeat(64),
        commits: commits.iter().map(|c| c.to_string().repeat(40)).collect(),
        predicate_type: "https://in-toto.io/attestation/test-result/v0.1".into(),
        signers: vec![AttestationSigner {
            identity: "ci-bot".into(),
            key: "e".repeat(64),
        }],
        uploaded_by: "ci-bot".into(),
        stored_at,
        summary: Some("PASSED".into()),
        envelope: format!("{{\"payload\":\"{id}\"}}"),
    }
}

/// Attestations are stored once by id, listed per commit in the order stored (whatever
/// their timestamps say), and written with the refs of the same commit or not at all.
fn attestations_by_commit(h: &Harness) {
    let meta = h.meta("attest/x", 2);
    let (m, other) = (meta[0].as_ref(), meta[1].as_ref());
    let (first, second) = (
        attestation('1', &['a', 'b'], 20),
        attestation('2', &['a'], 10),
    );
    m.commit(&MetaWrite {
        attestations: vec![first.clone(), second.clone()],
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    })
    .unwrap();
    assert_eq!(
        other.attestations(&"a".repeat(40)).unwrap(),
        [first.clone(), second.clone()],
        "in the order stored"
    );
    assert_eq!(
        other.attestations(&"b".repeat(40)).unwrap(),
        std::slice::from_ref(&first)
    );
    assert_eq!(other.attestations(&"c".repeat(40)).unwrap(), []);
    // The same id again changes nothing, even with other fields.
    let mut again = first.clone();
    again.uploaded_by = "someone".into();
    again.stored_at = 5;
    other
        .commit(&MetaWrite {
            attestations: vec![again],
            events: Vec::new(),
            actor: None,
            ..MetaWrite::default()
        })
        .unwrap();
    assert_eq!(
        m.attestations(&"b".repeat(40)).unwrap(),
        std::slice::from_ref(&first)
    );
    // A write whose compare-and-swap fails stores none of its attestations.
    let stale = update("refs/heads/x", Expected::Value(direct(1)), Some(direct(2)));
    let refused = m.commit(&MetaWrite {
        refs: vec![&stale],
        attestations: vec![attestation('3', &['c'], 30)],
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    });
    assert!(matches!(refused, Err(StoreError::RefConflict { .. })));
    assert_eq!(m.attestations(&"c".repeat(40)).unwrap(), []);
    let fresh = update("refs/heads/x", Expected::Absent, Some(direct(2)));
    m.commit(&MetaWrite {
        refs: vec![&fresh],
        attestations: vec![attestation('3', &['c'], 30)],
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    })
    .unwrap();
    assert_eq!(other.attestations(&"c".repeat(40)).unwrap().len(), 1);
    assert_eq!(other.read_ref(b"refs/heads/x").unwrap(), Some(direct(2)));
}

fn op() -> Actor {
    Actor::operator()
}

fn revocation() -> NewEvent {
    NewEvent::now(
        op(),
        EventKind::TokenRevoked(forge::store::events::TokenChanged {
            identity: None,
            revocation_ids: Vec::new(),
        }),
    )
}

fn ref_event(name: &str) -> NewEvent {
    NewEvent::now(
        Actor::operator(),
        EventKind::RefUpdated(RefUpdated {
            name: name.into(),
            before: None,
            after: Some("ab".repeat(20)),
            created: true,
            deleted: false,
            forced: false,
            via: "admin".into(),
            policy_notes: Vec::new(),
        }),
    )
}

/// Events go into the outbox in the transaction of their change (a failed
/// compare-and-swap writes none), and relay into the log once, in order, whoever relays
/// and however often.
fn events_commit_with_their_change_and_relay_once(h: &Harness) {
    let metas = h.meta("alice/app", 2);
    let registries = h.registries(2);
    let record = registries[0]
        .find_repo(&RepoName::parse("alice/app").unwrap())
        .unwrap()
        .unwrap();
    let (m, other) = (metas[0].as_ref(), metas[1].as_ref());
    assert_eq!(m.outbox_end().unwrap(), 0);
    let created = update("refs/heads/a", Expected::Absent, Some(direct(1)));
    m.commit(&MetaWrite {
        refs: vec![&created],
        events: vec![ref_event("refs/heads/a")],
        ..MetaWrite::default()
    })
    .unwrap();
    let stale = update("refs/heads/a", Expected::Absent, Some(direct(2)));
    let refused = other.commit(&MetaWrite {
        refs: vec![&stale],
        events: vec![ref_event("refs/heads/a")],
        ..MetaWrite::default()
    });
    assert!(matches!(refused, Err(StoreError::RefConflict { .. })));
    assert_eq!(
        other.outbox_end().unwrap(),
        1,
        "a failed write leaves no event"
    );
    other
        .commit(&MetaWrite {
            events: vec![ref_event("refs/heads/b"), ref_event("refs/heads/c")],
            ..MetaWrite::default()
        })
        .unwrap();
    let outbox = m.outbox(1, 10).unwrap();
    assert_eq!(outbox.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3]);

    // Two relays of the same outbox, through two registry handles: each event once.
    let (a, b) = (registries[0].registry(), registries[1].registry());
    let everything = m.outbox(0, 10).unwrap();
    assert_eq!(
        a.relay_events(record.id, &record.name, &everything[..2])
            .unwrap(),
        2
    );
    assert_eq!(
        b.relay_events(record.id, &record.name, &everything)
            .unwrap(),
        1
    );
    assert_eq!(
        a.relay_events(record.id, &record.name, &everything)
            .unwrap(),
        0
    );
    assert_eq!(a.relayed(record.id).unwrap(), 3);
    assert_eq!(
        forge::store::backend::relay(b, other, record.id, &record.name).unwrap(),
        0
    );
    let log = b
        .events(&EventFilter {
            types: vec!["ref.updated".into()],
            limit: 10,
            ..EventFilter::default()
        })
        .unwrap();
    let names: Vec<String> = log
        .iter()
        .map(|e| match &e.kind {
            EventKind::RefUpdated(u) => u.name.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["refs/heads/a", "refs/heads/b", "refs/heads/c"]);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(log.iter().all(|e| e.repo.as_deref() == Some("alice/app")));
    assert_eq!(b.last_event().unwrap(), log[2].seq);

    // By repository, after a point, by type, with a limit.
    let second = h.meta("bob/lib", 1);
    let lib = registries[0]
        .find_repo(&RepoName::parse("bob/lib").unwrap())
        .unwrap()
        .unwrap();
    second[0]
        .commit(&MetaWrite {
            events: vec![ref_event("refs/heads/x")],
            ..MetaWrite::default()
        })
        .unwrap();
    forge::store::backend::relay(a, second[0].as_ref(), lib.id, &lib.name).unwrap();
    let of = |repo, after, limit| {
        a.events(&EventFilter {
            after,
            repo,
            types: vec!["ref.updated".into()],
            limit,
        })
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect::<Vec<_>>()
    };
    let (a_seq, b_seq, c_seq) = (log[0].seq, log[1].seq, log[2].seq);
    let x_seq = b.last_event().unwrap();
    assert_eq!(of(Some(lib.id), 0, 10), [x_seq]);
    assert_eq!(of(Some(record.id), a_seq, 10), [b_seq, c_seq]);
    assert_eq!(of(None, 0, 2), [a_seq, b_seq]);
    // Creating a repository is an event of the registry's own transaction.
    let created = a
        .events(&EventFilter {
            repo: Some(lib.id),
            types: vec!["repo.created".into()],
            limit: 10,
            ..EventFilter::default()
        })
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].repo.as_deref(), Some("bob/lib"));
    let refused_only = a
        .events(&EventFilter {
            types: vec!["ref.refused".into()],
            limit: 10,
            ..EventFilter::default()
        })
        .unwrap();
    assert!(refused_only.is_empty());
}

/// Webhooks: a new hook's cursor is past its own `hook.added`; queueing moves the cursor by
/// compare-and-swap; the pending index finds the oldest pending delivery; attempts of an old
/// chain are ignored after a redelivery; the log is bounded; a repository removed takes its
/// hooks along.
fn hooks_and_their_deliveries(h: &Harness) {
    use forge::store::hooks::{Attempt, DeliveryState, HookChange, HookScope, NewHook};
    let [data, other] = <[DataDir; 2]>::try_from(h.registries(2)).ok().unwrap();
    let name = RepoName::parse("alice/app").unwrap();
    let record = data.create_repo(&name).unwrap();
    let new = |scope| NewHook {
        scope,
        repo: match scope {
            HookScope::Repo(_) => Some("alice/app".to_owned()),
            HookScope::Site => None,
        },
        url: "https://hooks.example.com/x".into(),
        secret: Some("s".into()),
        events: Vec::new(),
        active: true,
        created_by: Some("alice".into()),
        creator_incarnation: Some(7),
    };
    let hook = data
        .hooks()
        .add_hook(&new(HookScope::Repo(record.id)), &op())
        .unwrap();
    let site = other
        .hooks()
        .add_hook(&new(HookScope::Site), &op())
        .unwrap();
    assert_ne!(hook.id, site.id);
    let added = data
        .events(&EventFilter {
            after: 0,
            repo: Some(record.id),
            types: vec!["hook.added".into()],
            limit: 10,
        })
        .unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(hook.cursor, added[0].seq);
    assert_eq!(site.cursor, data.last_event().unwrap());
    assert_eq!(
        data.hooks().hooks(Some(HookScope::Site)).unwrap(),
        vec![site.clone()]
    );
    assert_eq!(
        other.hooks().find_hook(hook.id).unwrap(),
        Some(hook.clone())
    );

    // Queued with the cursor; a stale cursor queues nothing.
    let events = data
        .events(&EventFilter {
            after: 0,
            repo: None,
            types: Vec::new(),
            limit: 3,
        })
        .unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(
        data.hooks()
            .queue_deliveries(hook.id, hook.cursor, hook.cursor + 5, &events, 7)
            .unwrap(),
        3
    );
    assert_eq!(
        other
            .hooks()
            .queue_deliveries(hook.id, hook.cursor, hook.cursor + 9, &events, 7)
            .unwrap(),
        0
    );
    assert_eq!(
        data.hooks().find_hook(hook.id).unwrap().unwrap().cursor,
        hook.cursor + 5
    );
    assert_eq!(data.hooks().pending_deliveries(hook.id).unwrap(), 3);
    let first = data.hooks().next_delivery(hook.id).unwrap().unwrap();
    assert_eq!(first.event, events[0]);
    assert_eq!(
        (first.state, first.chain, first.next_attempt_at),
        (DeliveryState::Pending, 0, 7)
    );
    // Claimed for an attempt: not due again (for another worker) until the claim ends.
    let claimed = data
        .hooks()
        .claim_delivery(hook.id, first.id, 7, 100)
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, first.id);
    assert_eq!(
        other
            .hooks()
            .claim_delivery(hook.id, first.id, 50, 200)
            .unwrap(),
        None
    );
    assert_eq!(
        other
            .hooks()
            .next_delivery(hook.id)
            .unwrap()
            .unwrap()
            .next_attempt_at,
        100
    );
    assert!(
        other
            .hooks()
            .claim_delivery(hook.id, first.id, 100, 200)
            .unwrap()
            .is_some()
    );
    let attempt = |chain| Attempt {
        at: 8,
        duration_ms: 1,
        status: Some(200),
        error: None,
        response: None,
        chain,
    };
    data.hooks()
        .record_attempt(hook.id, first.id, &attempt(0), DeliveryState::Delivered, 0)
        .unwrap();
    let second = data.hooks().next_delivery(hook.id).unwrap().unwrap();
    assert!(second.id > first.id);
    assert_eq!(second.event, events[1]);
    // Another hook's path does not reach it.
    assert_eq!(data.hooks().find_delivery(site.id, first.id).unwrap(), None);
    assert!(data.hooks().redeliver(site.id, first.id, 9).is_err());
    // A redelivery starts chain 1; an attempt of chain 0 finishing late is ignored.
    let again = other.hooks().redeliver(hook.id, first.id, 9).unwrap();
    assert_eq!((again.state, again.chain), (DeliveryState::Pending, 1));
    data.hooks()
        .record_attempt(hook.id, first.id, &attempt(0), DeliveryState::Failed, 0)
        .unwrap();
    let stored = data
        .hooks()
        .find_delivery(hook.id, first.id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, DeliveryState::Pending);
    assert_eq!(stored.attempts.len(), 1);
    assert_eq!(
        data.hooks().next_delivery(hook.id).unwrap().unwrap().id,
        first.id
    );
    // Newest first, paged by id.
    let page = data.hooks().deliveries(hook.id, None, 2).unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].id > page[1].id);
    let rest = data
        .hooks()
        .deliveries(hook.id, Some(page[1].id), 10)
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, first.id);

    // Changed: made active again, its cursor moves to the log's end.
    let off = data
        .hooks()
        .update_hook(
            hook.id,
            &HookChange {
                active: Some(false),
                ..HookChange::default()
            },
            &op(),
        )
        .unwrap();
    assert!(!off.active);
    let on = data
        .hooks()
        .update_hook(
            hook.id,
            &HookChange {
                active: Some(true),
                secret: Some(None),
                ..HookChange::default()
            },
            &op(),
        )
        .unwrap();
    assert_eq!(on.cursor, data.last_event().unwrap());
    assert_eq!(on.secret, None);

    // The log keeps the last MAX_DELIVERIES_KEPT: finished ones go, pending ones stay.
    let three = data.hooks().deliveries(hook.id, None, 10).unwrap();
    for delivery in &three[..2] {
        data.hooks()
            .record_attempt(
                hook.id,
                delivery.id,
                &attempt(delivery.chain),
                DeliveryState::Delivered,
                0,
            )
            .unwrap();
    }
    let cursor = on.cursor;
    let many: Vec<_> = (0..forge::store::hooks::MAX_DELIVERIES_KEPT)
        .map(|_| events[2].clone())
        .collect();
    data.hooks()
        .queue_deliveries(hook.id, cursor, cursor, &many, 10)
        .unwrap();
    let all = data.hooks().deliveries(hook.id, None, 5000).unwrap();
    // Two finished ones dropped; the oldest, pending, is kept past the bound.
    assert_eq!(all.len(), forge::store::hooks::MAX_DELIVERIES_KEPT + 1);
    assert!(all.iter().all(|d| d.state == DeliveryState::Pending));
    assert_eq!(all.last().unwrap().id, first.id);

    // Removed with the repository (its deliveries too); the site's stays.
    data.delete_repo(&name).unwrap();
    assert_eq!(other.hooks().find_hook(hook.id).unwrap(), None);
    assert_eq!(
        other.hooks().deliveries(hook.id, None, 10).unwrap(),
        Vec::new()
    );
    assert_eq!(other.hooks().hooks(None).unwrap(), vec![site.clone()]);
    let removed = other.hooks().remove_hook(site.id, &op()).unwrap();
    assert_eq!(removed.id, site.id);
    assert!(other.hooks().remove_hook(site.id, &op()).is_err());
    let kinds: Vec<&str> = data
        .events(&EventFilter {
            after: 0,
            repo: None,
            types: vec![
                "hook.added".into(),
                "hook.changed".into(),
                "hook.removed".into(),
            ],
            limit: 10,
        })
        .unwrap()
        .iter()
        .map(|e| e.kind.type_name())
        .collect();
    assert_eq!(
        kinds,
        [
            "hook.added",
            "hook.added",
            "hook.changed",
            "hook.changed",
            "hook.removed"
        ]
    );
}

/// The refs' version goes up by one in every write that changes refs, as every handle
/// sees, and in no other write.
fn refs_version_counts_ref_writes(h: &Harness) {
    let handles = h.meta("refs/version", 2);
    let (m, other) = (handles[0].as_ref(), handles[1].as_ref());
    assert_eq!(m.refs_version().unwrap(), 0);
    write(
        m,
        &[
            update("refs/heads/a", Expected::Absent, Some(direct(1))),
            update("refs/heads/b", Expected::Absent, Some(direct(2))),
        ],
    )
    .unwrap();
    assert_eq!(m.refs_version().unwrap(), 1, "one batch, one step");
    assert_eq!(other.refs_version().unwrap(), 1);
    let refused = write(
        other,
        &[update("refs/heads/a", Expected::Absent, Some(direct(3)))],
    );
    assert!(matches!(refused, Err(StoreError::RefConflict { .. })));
    assert_eq!(
        m.refs_version().unwrap(),
        1,
        "a refused write moves nothing"
    );
    write(
        other,
        &[update("refs/heads/b", Expected::Value(direct(2)), None)],
    )
    .unwrap();
    assert_eq!(m.refs_version().unwrap(), 2, "a deletion counts");
    m.commit(&MetaWrite {
        refs: Vec::new(),
        segment: Some(segment("s1", 10)),
        needs: Vec::new(),
        attestations: Vec::new(),
        events: Vec::new(),
        actor: None,
        ..MetaWrite::default()
    })
    .unwrap();
    m.set_setting(Setting::AllowForce, true, &Actor::operator())
        .unwrap();
    assert_eq!(m.refs_version().unwrap(), 2, "writes without refs leave it");
}

/// A token's standing, asked again and again through one handle, follows every change
/// made through another (as a server's does the `forge` commands'), at once.
fn standing_follows_changes_through_other_handles(h: &Harness) {
    let handles = h.registries(2);
    let (server, admin) = (&handles[0], &handles[1]);
    let alice = admin
        .add_identity(&identity("alice", IdentityKind::Human, None))
        .unwrap();
    let bot = admin
        .add_identity(&identity("bot", IdentityKind::Agent, Some("alice")))
        .unwrap();
    let ids = vec![b"block-0".to_vec(), b"block-1".to_vec()];
    let alices = vec![b"block-a".to_vec()];
    let standing = |name: &str, incarnation: u64| {
        let ids = if name == "bot" { &ids } else { &alices };
        // Twice: the second answer may be the kept one.
        let first = server.token_standing(name, incarnation, ids).unwrap();
        assert_eq!(
            server.token_standing(name, incarnation, ids).unwrap(),
            first
        );
        first
    };
    assert_eq!(
        standing("bot", bot.incarnation),
        Standing::Good(IdentityKind::Agent)
    );
    admin.set_identity_disabled("alice", true).unwrap();
    assert_eq!(
        standing("bot", bot.incarnation),
        Standing::Disabled("alice".into())
    );
    admin.set_identity_disabled("alice", false).unwrap();
    assert_eq!(
        standing("bot", bot.incarnation),
        Standing::Good(IdentityKind::Agent)
    );
    admin.revoke_token_blocks(&ids[1..]).unwrap();
    assert_eq!(standing("bot", bot.incarnation), Standing::Revoked);
    assert_eq!(
        standing("alice", alice.incarnation),
        Standing::Good(IdentityKind::Human),
        "other tokens stand"
    );
    admin.remove_identity("bot").unwrap();
    admin.remove_identity("alice").unwrap();
    assert_eq!(
        standing("alice", alice.incarnation),
        Standing::UnknownIdentity("alice".into())
    );
    let again = admin
        .add_identity(&identity("alice", IdentityKind::Human, None))
        .unwrap();
    assert_eq!(
        standing("alice", alice.incarnation),
        Standing::EarlierIncarnation("alice".into())
    );
    assert_eq!(
        standing("alice", again.incarnation),
        Standing::Good(IdentityKind::Human)
    );
}

fn agent(name: &str) -> Actor {
    Actor {
        identity: Some(name.to_owned()),
        kind: "agent".into(),
    }
}

/// Goals, their approaches (recorded only with their refs' creation) and claims: one live
/// holder per approach whichever handle asks, leases that only grow, heartbeats that
/// extend and never shorten, expiry computed from the time given, a stale or foreign lease
/// refused, and an event in the outbox for each change but a heartbeat.
fn goals_approaches_and_claims(h: &Harness) {
    let handles = h.meta("goals/app", 2);
    let (m, other) = (handles[0].as_ref(), handles[1].as_ref());
    let new_goal = |name: &str| NewGoal {
        name: name.to_owned(),
        title: "Make it faster".into(),
        description: "Any approach that halves p99.".into(),
        target: "refs/heads/main".into(),
        required: Vec::new(),
        max_approaches: Some(2),
        deadline: Some(10_000),
    };
    let alice = agent("alice");
    let goal = m.create_goal(&new_goal("speed"), &alice, 100).unwrap();
    assert_eq!(goal.state, GoalState::Open);
    assert_eq!(goal.created_by.as_deref(), Some("alice"));
    assert!(matches!(
        other.create_goal(&new_goal("speed"), &alice, 101),
        Err(GoalError::Exists(_))
    ));
    for bad in ["", "Speed", "a/b", "-x", "x..y", "x.lock", &"x".repeat(65)] {
        let refused = m.create_goal(&new_goal(bad), &alice, 100);
        assert!(matches!(refused, Err(GoalError::Invalid(_))), "{bad:?}");
    }
    let mut bad_target = new_goal("t");
    bad_target.target = "refs/tags/v1".into();
    assert!(matches!(
        m.create_goal(&bad_target, &alice, 100),
        Err(GoalError::Invalid(_))
    ));
    assert_eq!(other.find_goal("speed").unwrap(), Some(goal.clone()));
    assert_eq!(other.list_goals().unwrap(), [goal]);

    // An approach is recorded with its ref's creation, in the same write, or not at all.
    let approach = |name: &str| Approach {
        goal: "speed".into(),
        name: name.to_owned(),
        base: "ab".repeat(20),
        state: ApproachState::Active,
        created_by: Some("alice".into()),
        created_at: 200,
    };
    let add = |meta: &dyn MetaStore, name: &str, now: u64| {
        let created = update(
            &format!("refs/goals/speed/{name}"),
            Expected::Absent,
            Some(direct(1)),
        );
        meta.commit(&MetaWrite {
            refs: vec![&created],
            approaches: vec![approach(name)],
            actor: Some(agent("alice")),
            now,
            ..MetaWrite::default()
        })
        .map(|_| ())
    };
    let without_ref = m.commit(&MetaWrite {
        approaches: vec![approach("a")],
        now: 200,
        ..MetaWrite::default()
    });
    assert!(
        matches!(
            &without_ref,
            Err(StoreError::GoalRefused {
                code: "invalid_goal",
                ..
            })
        ),
        "{without_ref:?}"
    );
    add(m, "a", 200).unwrap();
    let other_ref = update("refs/goals/speed/a2", Expected::Absent, Some(direct(1)));
    let mismatched = other.commit(&MetaWrite {
        refs: vec![&other_ref],
        approaches: vec![approach("a")],
        now: 200,
        ..MetaWrite::default()
    });
    assert!(
        matches!(
            &mismatched,
            Err(StoreError::GoalRefused {
                code: "invalid_goal",
                ..
            })
        ),
        "the ref is not the approach's: {mismatched:?}"
    );
    // Its ref deleted, an approach's name is still taken.
    write(m, &[update("refs/goals/speed/a", Expected::Any, None)]).unwrap();
    let again = add(other, "a", 200);
    assert!(
        matches!(
            &again,
            Err(StoreError::GoalRefused {
                code: "approach_exists",
                ..
            })
        ),
        "{again:?}"
    );
    let reserved = add(m, "merge", 200);
    assert!(
        matches!(
            &reserved,
            Err(StoreError::GoalRefused {
                code: "invalid_goal",
                ..
            })
        ),
        "{reserved:?}"
    );
    add(other, "b", 200).unwrap();
    let third = add(m, "c", 200);
    assert!(
        matches!(
            &third,
            Err(StoreError::GoalRefused {
                code: "too_many_approaches",
                ..
            })
        ),
        "{third:?}"
    );
    assert_eq!(
        m.read_ref(b"refs/goals/speed/c").unwrap(),
        None,
        "refused whole"
    );
    let names: Vec<String> = other
        .approaches("speed")
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(m.approaches("spee").unwrap().is_empty());

    // One holder per approach, whichever handle asks.
    let taken = m.claim("speed", "a", &agent("bot-1"), 1_000, 300).unwrap();
    assert_eq!((taken.holder.as_str(), taken.expires_at), ("bot-1", 1_300));
    match other.claim("speed", "a", &agent("bot-2"), 1_000, 301) {
        Err(GoalError::Held { holder, lease, .. }) => {
            assert_eq!((holder.as_str(), lease), ("bot-1", taken.lease));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.claim("speed", "zz", &agent("bot-2"), 1_000, 301),
        Err(GoalError::ApproachNotFound { .. })
    ));
    assert!(matches!(
        m.claim("nope", "a", &agent("bot-2"), 1_000, 301),
        Err(GoalError::NotFound(_))
    ));
    assert!(matches!(
        m.claim("speed", "b", &Actor::operator(), 1_000, 301),
        Err(GoalError::Invalid(_))
    ));
    // Heartbeats extend from now by the TTL, never shorten; only the holder's lease does.
    let beat = other
        .heartbeat("speed", "a", taken.lease, "bot-1", 900)
        .unwrap();
    assert_eq!((beat.expires_at, beat.heartbeats), (1_900, 1));
    let early = m
        .heartbeat("speed", "a", taken.lease, "bot-1", 100)
        .unwrap();
    assert_eq!(early.expires_at, 1_900, "never shortened");
    assert!(matches!(
        m.heartbeat("speed", "a", taken.lease, "bot-2", 950),
        Err(GoalError::ClaimLost { .. })
    ));
    assert!(matches!(
        m.heartbeat("speed", "a", taken.lease + 7, "bot-1", 950),
        Err(GoalError::ClaimLost { .. })
    ));
    // Past its expiry the claim lapses by itself: its holder's heartbeat is refused, and
    // another agent takes the approach with a higher lease.
    let late = m.heartbeat("speed", "a", taken.lease, "bot-1", 1_900);
    assert!(matches!(late, Err(GoalError::ClaimLost { .. })), "{late:?}");
    let second = other
        .claim("speed", "a", &agent("bot-2"), 1_000, 1_901)
        .unwrap();
    assert!(second.lease > taken.lease);
    match m.heartbeat("speed", "a", taken.lease, "bot-1", 1_902) {
        Err(e @ GoalError::ClaimLost { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "claim lease {} on approach a is not current (holder bot-2, lease {})",
                taken.lease, second.lease
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.claim_of("speed", "a").unwrap(), Some(second.clone()));
    // A release frees the approach at once; the next claim gets a higher lease still.
    assert!(matches!(
        m.release("speed", "a", second.lease, &agent("bot-1"), 1_950),
        Err(GoalError::ClaimLost { .. })
    ));
    let released = m
        .release("speed", "a", second.lease, &agent("bot-2"), 1_950)
        .unwrap();
    assert!(released.released && !released.live(1_951));
    let third = m
        .claim("speed", "a", &agent("bot-1"), 1_000, 1_960)
        .unwrap();
    assert!(third.lease > second.lease);
    // A write fenced by a lease that is not current is refused in its transaction; one
    // fenced by the live claim's lease, or fenced unclaimed while claimed, as it should be.
    let fenced = |lease: Option<u64>| MetaWrite {
        fences: vec![forge::store::goals::ClaimFence {
            goal: "speed".into(),
            approach: "a".into(),
            lease,
        }],
        now: 1_970,
        ..MetaWrite::default()
    };
    for (lease, code) in [
        (Some(second.lease), "claim_lost"),
        (None, "approach_claimed"),
    ] {
        match m.commit(&fenced(lease)) {
            Err(StoreError::GoalRefused { code: got, .. }) => assert_eq!(got, code),
            other => panic!("a stale fence committed: {other:?}"),
        }
    }
    m.commit(&fenced(Some(third.lease))).unwrap();
    // TTLs are the caller's, bounded by `claim_ttl`.
    assert_eq!(claim_ttl(None), 300_000);
    assert_eq!(claim_ttl(Some(1)), 5_000);
    assert_eq!(claim_ttl(Some(u64::MAX)), 3_600_000);
    // Past the goal's deadline nothing more is claimed or added.
    assert!(matches!(
        other.claim("speed", "b", &agent("bot-2"), 1_000, 10_000),
        Err(GoalError::PastDeadline { .. })
    ));

    let types: Vec<&str> = m
        .outbox(0, 100)
        .unwrap()
        .iter()
        .map(|(_, e)| e.kind.type_name())
        .collect();
    assert_eq!(
        types,
        [
            "goal.created",
            "approach.created",
            "approach.created",
            "claim.taken",
            "claim.taken",
            "claim.released",
            "claim.taken"
        ]
    );
}

/// The suite, run against one implementation.
fn conformance(harness: impl Fn() -> Harness) {
    hooks_and_their_deliveries(&harness());
    events_commit_with_their_change_and_relay_once(&harness());
    compare_and_swap_cases(&harness());
    batches_are_atomic(&harness());
    segments_register_with_refs_and_generations_rise(&harness());
    refs_version_counts_ref_writes(&harness());
    settings_round_trip(&harness());
    attestations_by_commit(&harness());
    two_handles_commit_concurrently(&harness());
    repositories_in_the_registry(&harness());
    identities_and_revocations(&harness());
    standing_follows_changes_through_other_handles(&harness());
    goals_approaches_and_claims(&harness());
}

#[test]
fn redb_meets_the_metadata_store_and_registry_contract() {
    conformance(redb_harness);
}
