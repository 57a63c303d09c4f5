//! Webhook deliveries: a background worker of `forge serve` that follows the event log (the
//! source of the REST list and SSE streams, so events other `forge` processes write are
//! delivered too), queues a delivery of each event to each active hook that wants it
//! (`HookStore::queue_deliveries` moves the hook's cursor in the same transaction, so a
//! restart neither loses nor repeats one), and sends each hook's deliveries in order, one at
//! a time, retrying with exponential backoff. Hooks never wait for each other beyond the
//! bound on requests in flight, and a push never waits for any: the log is the queue.
//! `docs/webhooks.md` describes what receivers get.

pub mod client;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, watch};

use crate::store::DataDir;
use crate::store::events::{Event, EventFilter};
use crate::store::hooks::{Attempt, Delivery, DeliveryState, Hook, HookScope, check_url};
use target::{AllowedHost, Targets};

/// How `forge serve` delivers (`--hook-…` flags).
#[derive(Debug, Clone)]
pub struct HookSettings {
    /// Targets allowed beyond the default rules (`--hook-allow-host`).
    pub allow: Vec<AllowedHost>,
    /// Attempts of one delivery before it is failed (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    pub retry_delay: Duration,
    /// The longest one attempt takes: connecting, TLS, sending, and the answer's head.
    pub timeout: Duration,
}

impl Default for HookSettings {
    fn default() -> HookSettings {
        HookSettings {
            allow: Vec::new(),
            attempts: 5,
            retry_delay: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Requests in flight to all hooks together.
const IN_FLIGHT: usize = 16;
/// Pending deliveries a hook has queued before more are read from the log.
const QUEUE_WINDOW: usize = 64;
/// Events read from the log per queueing step.
const READ_BATCH: usize = 100;
/// The largest body sent; an event past it is sent as a notice (`truncated`).
pub const MAX_BODY: usize = 256 << 10;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often the worker looks at the log's end when nothing woke it.
const POLL: Duration = Duration::from_millis(200);
/// How long past its timeout an attempt holds its delivery.
const CLAIM_MARGIN_MS: u64 = 5000;
/// The longest a hook's task sleeps before it looks at its hook again (a redelivery, a
/// change, a removal are seen within it).
const NAP: Duration = Duration::from_secs(1);

/// The worker's handle: the API wakes it when hooks or deliveries change.
pub struct HookWorker {
    wake: Notify,
    targets: Targets,
}

impl HookWorker {
    pub fn new(settings: &HookSettings) -> Arc<HookWorker> {
        Arc::new(HookWorker {
            wake: Notify::new(),
            targets: Targets::new(settings.allow.clone()),
        })
    }

    /// Something changed (a hook added or changed, a redelivery): look now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Why a delivery to `url` would certainly be refused, when its host is a literal
    /// address the rules refuse (a name is checked when it is resolved, at delivery).
    pub fn refused_up_front(&self, url: &str) -> Option<String> {
        let url = check_url(url).ok()?;
        let ip = url.ip()?;
        self.targets.check(&url.host, ip).err()
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(
        self: Arc<HookWorker>,
        data: DataDir,
        settings: HookSettings,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let tls = match client::tls_connector() {
            Ok(tls) => tls,
            Err(e) => {
                tracing::error!("webhooks: no TLS client ({e}); deliveries are off");
                return;
            }
        };
        let shared = Arc::new(Shared {
            data,
            settings,
            targets: self.targets.clone(),
            tls,
            permits: Semaphore::new(IN_FLIGHT),
            running: Mutex::new(HashSet::new()),
        });
        // Hooks whose task ended with nothing to do, and the log's end then.
        let mut idle: HashMap<u64, (u64, Instant)> = HashMap::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let read = shared.clone();
            let listed = tokio::task::spawn_blocking(move || {
                let last = read.data.last_event()?;
                let hooks = read.data.hooks().hooks(None)?;
                Ok::<_, crate::store::StoreError>((last, hooks))
            })
            .await;
            match listed {
                Ok(Ok((last, hooks))) => {
                    let present: HashSet<u64> = hooks.iter().map(|h| h.id).collect();
                    idle.retain(|id, _| present.contains(id));
                    for hook in hooks.into_iter().filter(|h| h.active) {
                        if shared.running.lock().contains(&hook.id) {
                            continue;
                        }
                        // Nothing new since its task ended: no task (but a look now and
                        // then, for redeliveries asked through another process).
                        if let Some((seen, since)) = idle.get(&hook.id)
                            && *seen >= last
                            && hook.cursor >= last
                            && since.elapsed() < Duration::from_secs(5)
                        {
                            continue;
                        }
                        idle.insert(hook.id, (last, Instant::now()));
                        shared.running.lock().insert(hook.id);
                        tokio::spawn(shared.clone().deliver(hook.id));
                    }
                }
                Ok(Err(e)) => tracing::warn!("webhooks: reading hooks: {e}"),
                Err(e) => tracing::warn!("webhooks: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.wake.notified() => idle.clear(),
                _ = shutdown.changed() => return,
            }
        }
    }
}

struct Shared {
    data: DataDir,
    settings: HookSettings,
    targets: Targets,
    tls: tokio_rustls::TlsConnector,
    permits: Semaphore,
    /// Hooks with a task now: one per hook, so its deliveries go in order.
    running: Mutex<HashSet<u64>>,
}

/// What a hook's task does next.
enum Step {
    Send(Box<(Hook, Delivery)>),
    Wait(Duration),
    Done,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    /// One hook's deliveries, in order, until nothing is due.
    async fn deliver(self: Arc<Shared>, hook: u64) {
        /// Takes the hook off the running set however the task ends.
        struct Running<'a>(&'a Shared, u64);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.running.lock().remove(&self.1);
            }
        }
        let _running = Running(&self, hook);
        loop {
            // Taken before a delivery is claimed, so that the claim's time (the attempt
            // timeout and a margin) is spent on the attempt, not on waiting for a slot.
            let Ok(permit) = self.permits.acquire().await else {
                break;
            };
            let me = self.clone();
            let step = tokio::task::spawn_blocking(move || me.next_step(hook)).await;
            match step {
                Ok(Ok(Step::Send(next))) => {
                    let (hook, delivery) = *next;
                    self.attempt(&hook, &delivery, permit).await;
                }
                Ok(Ok(Step::Wait(wait))) => {
                    drop(permit);
                    tokio::time::sleep(wait.min(NAP)).await;
                }
                Ok(Ok(Step::Done)) => break,
                Ok(Err(e)) => {
                    tracing::warn!("webhooks: hook {hook}: {e}");
                    break;
                }
                Err(e) => {
                    tracing::warn!("webhooks: hook {hook}: {e}");
                    break;
                }
            }
        }
    }

    /// Queues what the log has for the hook (while its queue is short), then picks its
    /// oldest pending delivery.
    fn next_step(&self, id: u64) -> Result<Step, crate::store::StoreError> {
        let hooks = self.data.hooks();
        let Some(hook) = hooks.find_hook(id)? else {
            return Ok(Step::Done);
        };
        if !hook.active {
            return Ok(Step::Done);
        }
        // A hook acts for the identity that made it: while that identity does not stand
        // (as its tokens would not), its events pass it by and what it has queued waits.
        let creator_stands = self.creator_stands(&hook)?;
        if hooks.pending_deliveries(id)? < QUEUE_WINDOW {
            let end = self.data.last_event()?;
            let pruned = self.data.events_pruned_through()?;
            if hook.cursor < pruned {
                tracing::warn!(
                    "webhooks: hook {id} missed events {} to {pruned}: the log's retention bound removed them before they were delivered",
                    hook.cursor + 1
                );
            }
            if hook.cursor < end {
                let filter = EventFilter {
                    after: hook.cursor,
                    repo: match hook.scope {
                        HookScope::Repo(repo) => Some(repo),
                        HookScope::Site => None,
                    },
                    types: hook.events.clone(),
                    limit: READ_BATCH,
                };
                let events = self.data.events(&filter)?;
                let to = match events.last() {
                    Some(last) if events.len() == READ_BATCH => last.seq,
                    Some(last) => last.seq.max(end),
                    None => end,
                };
                let queued: &[Event] = if creator_stands { &events } else { &[] };
                hooks.queue_deliveries(id, hook.cursor, to, queued, now_ms())?;
            }
        }
        let Some(delivery) = hooks.next_delivery(id)? else {
            return Ok(Step::Done);
        };
        if !creator_stands {
            return Ok(Step::Done);
        }
        let now = now_ms();
        if delivery.next_attempt_at > now {
            return Ok(Step::Wait(Duration::from_millis(
                delivery.next_attempt_at - now,
            )));
        }
        // Held for the attempt (and a little past its timeout): another server on the data
        // directory leaves it alone, and one killed mid-attempt leaves it due again then.
        let until = now + self.settings.timeout.as_millis() as u64 + CLAIM_MARGIN_MS;
        match hooks.claim_delivery(id, delivery.id, now, until)? {
            Some(claimed) => Ok(Step::Send(Box::new((hook, claimed)))),
            None => Ok(Step::Wait(NAP)),
        }
    }

    /// Whether the identity that made `hook` stands as its tokens would have to: present,
    /// the same incarnation, enabled, and an agent's owner too (the operator's hooks
    /// always do).
    fn creator_stands(&self, hook: &Hook) -> Result<bool, crate::store::StoreError> {
        let Some(name) = &hook.created_by else {
            return Ok(true);
        };
        let incarnation = match hook.creator_incarnation {
            Some(incarnation) => incarnation,
            None => match self.data.find_identity(name)? {
                Some(identity) => identity.incarnation,
                None => return Ok(false),
            },
        };
        Ok(matches!(
            self.data.token_standing(name, incarnation, &[])?,
            crate::store::Standing::Good(_)
        ))
    }

    /// One attempt at a delivery, recorded with what came of it.
    async fn attempt(
        self: &Arc<Shared>,
        hook: &Hook,
        delivery: &Delivery,
        _in_flight: tokio::sync::SemaphorePermit<'_>,
    ) {
        let body = body_of(delivery);
        let mut headers: Vec<(&'static str, String)> = vec![
            ("content-type", "application/json".to_owned()),
            (
                "user-agent",
                format!("forge-hooks/{}", env!("CARGO_PKG_VERSION")),
            ),
            ("x-forge-event", delivery.event.kind.type_name().to_owned()),
            ("x-forge-delivery", delivery.id.to_string()),
            ("x-forge-hook-id", hook.id.to_string()),
        ];
        if let Some(secret) = &hook.secret {
            headers.push(("x-forge-signature-256", signature(secret, &body)));
        }
        let started = Instant::now();
        let at = now_ms();
        // A stored URL the rules no longer take fails at once, like a refused target.
        let mut unusable = false;
        let outcome = match check_url(&hook.url) {
            Err(e) => {
                unusable = true;
                Err(e.to_string())
            }
            Ok(url) => {
                let timeout = self.settings.timeout;
                client::post(&url, &self.targets, &self.tls, &headers, body, timeout).await
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let tries = delivery
            .attempts
            .iter()
            .filter(|a| a.chain == delivery.chain)
            .count() as u32
            + 1;
        let (attempt, success, final_failure) = match outcome {
            Ok(answer) => {
                let success = (200..300).contains(&answer.status);
                let attempt = Attempt {
                    at,
                    duration_ms,
                    status: Some(answer.status),
                    error: (!success)
                        .then(|| format!("HTTP {} is not a 2xx answer", answer.status)),
                    response: Some(answer.body).filter(|b| !b.is_empty()),
                    chain: delivery.chain,
                };
                (attempt, success, false)
            }
            Err(error) => {
                // The rules will refuse the target again: no point in waiting to.
                let refused = unusable || error.starts_with("target refused");
                let attempt = Attempt {
                    at,
                    duration_ms,
                    status: None,
                    error: Some(error),
                    response: None,
                    chain: delivery.chain,
                };
                (attempt, false, refused)
            }
        };
        let (state, next) = if success {
            (DeliveryState::Delivered, 0)
        } else if final_failure || tries >= self.settings.attempts.max(1) {
            (DeliveryState::Failed, 0)
        } else {
            let backoff = self
                .settings
                .retry_delay
                .saturating_mul(1u32 << (tries - 1).min(20))
                .min(MAX_BACKOFF);
            (
                DeliveryState::Pending,
                now_ms() + backoff.as_millis() as u64,
            )
        };
        match state {
            DeliveryState::Failed => tracing::warn!(
                "webhooks: delivery {} of event {} to hook {} failed: {}",
                delivery.id,
                delivery.event.seq,
                hook.id,
                attempt.error.as_deref().unwrap_or("-")
            ),
            _ => tracing::debug!(
                "webhooks: delivery {} to hook {}: {:?} {:?}",
                delivery.id,
                hook.id,
                attempt.status,
                attempt.error
            ),
        }
        let me = self.clone();
        let (hook_id, id) = (hook.id, delivery.id);
        let recorded = tokio::task::spawn_blocking(move || {
            me.data
                .hooks()
                .record_attempt(hook_id, id, &attempt, state, next)
        })
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("webhooks: recording delivery {id}: {e}"),
            Err(e) => tracing::warn!("webhooks: recording delivery {id}: {e}"),
        }
    }
}

/// The body of a delivery: `{"id", "seq", "repo", "at", "actor", "type", "data"}`, the event
/// as the REST API shows it with the delivery's id, the same bytes on every attempt. Past
/// `MAX_BODY` the event's `data` is left out (`"data": null, "truncated": true`): the
/// receiver reads it from `GET /api/v1/events`.
pub fn body_of(delivery: &Delivery) -> Bytes {
    #[derive(Serialize)]
    struct Payload<'a> {
        id: String,
        #[serde(flatten)]
        event: &'a Event,
    }
    let id = delivery.id.to_string();
    let body = serde_json::to_vec(&Payload {
        id: id.clone(),
        event: &delivery.event,
    })
    .expect("serialisable");
    if body.len() <= MAX_BODY {
        return body.into();
    }
    let event = &delivery.event;
    let notice = serde_json::json!({
        "id": id,
        "seq": event.seq,
        "repo": event.repo,
        "at": event.at,
        "actor": event.actor,
        "type": event.kind.type_name(),
        "data": null,
        "truncated": true,
        "bytes": body.len(),
    });
    serde_json::to_vec(&notice).expect("serialisable").into()
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed by `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", crate::hex::encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use crate::store::events::{Actor, AttestationAdded, Event, EventKind, TokenChanged};
    use crate::store::hooks::{Delivery, DeliveryState};

    fn delivery(kind: EventKind) -> Delivery {
        Delivery {
            id: 7,
            hook: 1,
            event: Event {
                seq: 12,
                repo: None,
                at: 1000,
                actor: Actor::operator(),
                kind,
            },
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            created_at: 0,
            next_attempt_at: 0,
            chain: 0,
        }
    }

    #[test]
    fn the_body_is_the_event_with_the_delivery_id_and_large_ones_are_a_notice() {
        let small = delivery(EventKind::TokenMinted(TokenChanged {
            identity: Some("alice".into()),
            revocation_ids: vec!["ab".into()],
        }));
        let body = super::body_of(&small);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"id":"7","seq":12,"at":1000,"actor":{"kind":"operator"},"type":"token.minted","data":{"identity":"alice","revocation_ids":["ab"]}}"#
        );
        assert_eq!(super::body_of(&small), body, "the same bytes every time");
        let large = delivery(EventKind::AttestationAdded(AttestationAdded {
            id: "x".into(),
            commits: vec!["c".repeat(40); 8000],
            predicate_type: "p".into(),
            signers: Vec::new(),
        }));
        let body = super::body_of(&large);
        assert!(body.len() < 1024);
        let notice: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(notice["truncated"], true);
        assert_eq!(notice["data"], serde_json::Value::Null);
        assert_eq!(notice["type"], "attestation.added");
        assert_eq!(notice["id"], "7");
        assert_eq!(notice["seq"], 12);
        assert!(notice["bytes"].as_u64().unwrap() > super::MAX_BODY as u64);
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
