//! Webhooks in `forge.redb` (`HookStore` for `RedbRegistry`): the hooks, their delivery
//! logs, and the index that finds a hook's pending deliveries without reading its log.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::registry::{EVENTS, Logged, RedbRegistry};
use crate::store::StoreError;
use crate::store::events::{Actor, Event, EventKind, HookInfo, NewEvent};
use crate::store::hooks::{
    Attempt, Delivery, DeliveryState, Hook, HookChange, HookError, HookScope, HookStore,
    MAX_ATTEMPTS_KEPT, MAX_DELIVERIES_KEPT, MAX_HOOKS_PER_SCOPE, NewHook, check_url,
};

/// Hook id → the hook (JSON), its cursor included.
const HOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("hooks");
/// Counters: `next_hook_id`, `next_delivery_id` (ids are never reused).
const HOOK_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("hook_counters");
/// Delivery id → the delivery (JSON): its event, state and attempts.
const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("hook_deliveries");
/// Hook id (8 bytes, big-endian) and delivery id (8 bytes, big-endian) → the delivery's
/// state (`state_byte`): a hook's log in order, its pending ones found by a key scan.
const HOOK_LOG: TableDefinition<&[u8], u8> = TableDefinition::new("hook_delivery_log");

fn log_key(hook: u64, delivery: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&hook.to_be_bytes());
    key[8..].copy_from_slice(&delivery.to_be_bytes());
    key
}

fn delivery_of(key: &[u8]) -> u64 {
    let mut id = [0u8; 8];
    id.copy_from_slice(&key[8..16]);
    u64::from_be_bytes(id)
}

fn state_byte(state: DeliveryState) -> u8 {
    match state {
        DeliveryState::Pending => 0,
        DeliveryState::Delivered => 1,
        DeliveryState::Failed => 2,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    id: u64,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what} {id}: {e}")))
}

fn hook_info(hook: &Hook) -> HookInfo {
    HookInfo {
        id: hook.id,
        scope: match hook.scope {
            HookScope::Repo(_) => "repo",
            HookScope::Site => "site",
        }
        .to_owned(),
        host: check_url(&hook.url).map(|u| u.host).unwrap_or_default(),
        events: hook.events.clone(),
        active: hook.active,
    }
}

fn logged(actor: &Actor, hook: &Hook, kind: fn(HookInfo) -> EventKind) -> Logged {
    let event = NewEvent::now(actor.clone(), kind(hook_info(hook)));
    let repo = match (hook.scope, &hook.repo) {
        (HookScope::Repo(id), Some(name)) => Some((id, name.clone())),
        _ => None,
    };
    (event, repo)
}

impl RedbRegistry {
    fn hook_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        txn: &redb::ReadTransaction,
        definition: TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
        match txn.open_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    fn next_id(&self, txn: &redb::WriteTransaction, counter: &str) -> Result<u64, StoreError> {
        let mut counters = txn.open_table(HOOK_COUNTERS).map_err(|e| self.error(e))?;
        let id = counters
            .get(counter)
            .map_err(|e| self.error(e))?
            .map_or(1, |v| v.value());
        counters
            .insert(counter, id + 1)
            .map_err(|e| self.error(e))?;
        Ok(id)
    }

    fn hook_log_end(&self, txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
        let log = txn.open_table(EVENTS).map_err(|e| self.error(e))?;
        let last = log.last().map_err(|e| self.error(e))?;
        Ok(last.map_or(0, |(k, _)| k.value()))
    }

    fn write_hook(&self, txn: &redb::WriteTransaction, hook: &Hook) -> Result<(), StoreError> {
        let mut hooks = txn.open_table(HOOKS).map_err(|e| self.error(e))?;
        let json = serde_json::to_vec(hook).expect("serialisable");
        hooks
            .insert(hook.id, json.as_slice())
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Writes a delivery and its state in the hook's log index (`deliveries` is the
    /// transaction's open `DELIVERIES` table).
    fn put_delivery(
        &self,
        txn: &redb::WriteTransaction,
        deliveries: &mut redb::Table<u64, &[u8]>,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(delivery).expect("serialisable");
        deliveries
            .insert(delivery.id, json.as_slice())
            .map_err(|e| self.error(e))?;
        let mut log = txn.open_table(HOOK_LOG).map_err(|e| self.error(e))?;
        log.insert(
            log_key(delivery.hook, delivery.id).as_slice(),
            state_byte(delivery.state),
        )
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    fn read_hook_in(
        &self,
        txn: &redb::WriteTransaction,
        id: u64,
    ) -> Result<Option<Hook>, StoreError> {
        let hooks = txn.open_table(HOOKS).map_err(|e| self.error(e))?;
        let value = hooks.get(id).map_err(|e| self.error(e))?;
        value.map(|v| decode("hook", id, v.value())).transpose()
    }

    /// Removes a hook's deliveries (its log and their records) inside `txn`.
    fn remove_log_in(&self, txn: &redb::WriteTransaction, hook: u64) -> Result<(), StoreError> {
        let mut log = txn.open_table(HOOK_LOG).map_err(|e| self.error(e))?;
        let mut deliveries = txn.open_table(DELIVERIES).map_err(|e| self.error(e))?;
        let from = log_key(hook, 0);
        let to = log_key(hook, u64::MAX);
        let mut keys = Vec::new();
        for item in log
            .range(from.as_slice()..=to.as_slice())
            .map_err(|e| self.error(e))?
        {
            let (key, _) = item.map_err(|e| self.error(e))?;
            keys.push(delivery_of(key.value()));
        }
        for id in keys {
            log.remove(log_key(hook, id).as_slice())
                .map_err(|e| self.error(e))?;
            deliveries.remove(id).map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Removes the hooks of repository `repo` with their deliveries, inside the
    /// transaction that removes the repository.
    pub(super) fn remove_hooks_of(
        &self,
        txn: &redb::WriteTransaction,
        repo: u64,
    ) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        {
            let hooks = txn.open_table(HOOKS).map_err(|e| self.error(e))?;
            for item in hooks.iter().map_err(|e| self.error(e))? {
                let (id, value) = item.map_err(|e| self.error(e))?;
                let hook: Hook = decode("hook", id.value(), value.value())?;
                if hook.scope == HookScope::Repo(repo) {
                    ids.push(hook.id);
                }
            }
        }
        for id in ids {
            self.remove_log_in(txn, id)?;
            let mut hooks = txn.open_table(HOOKS).map_err(|e| self.error(e))?;
            hooks.remove(id).map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Drops the oldest finished deliveries of `hook` past `MAX_DELIVERIES_KEPT`.
    fn prune_in(&self, txn: &redb::WriteTransaction, hook: u64) -> Result<(), StoreError> {
        let mut log = txn.open_table(HOOK_LOG).map_err(|e| self.error(e))?;
        let from = log_key(hook, 0);
        let to = log_key(hook, u64::MAX);
        let mut finished = Vec::new();
        let mut count = 0;
        for item in log
            .range(from.as_slice()..=to.as_slice())
            .map_err(|e| self.error(e))?
        {
            let (key, state) = item.map_err(|e| self.error(e))?;
            count += 1;
            if state.value() != state_byte(DeliveryState::Pending) {
                finished.push(delivery_of(key.value()));
            }
        }
        if count <= MAX_DELIVERIES_KEPT {
            return Ok(());
        }
        let mut deliveries = txn.open_table(DELIVERIES).map_err(|e| self.error(e))?;
        for id in finished.into_iter().take(count - MAX_DELIVERIES_KEPT) {
            log.remove(log_key(hook, id).as_slice())
                .map_err(|e| self.error(e))?;
            deliveries.remove(id).map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    fn read_delivery(&self, hook: u64, id: u64) -> Result<Option<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let Some(table) = self.hook_table(&txn, DELIVERIES)? else {
            return Ok(None);
        };
        let value = table.get(id).map_err(|e| self.error(e))?;
        let delivery: Option<Delivery> = value
            .map(|v| decode("delivery", id, v.value()))
            .transpose()?;
        Ok(delivery.filter(|d| d.hook == hook))
    }
}

impl HookStore for RedbRegistry {
    fn add_hook(&self, new: &NewHook, actor: &Actor) -> Result<Hook, HookError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let hooks = txn.open_table(HOOKS).map_err(|e| self.error(e))?;
            let mut count = 0;
            for item in hooks.iter().map_err(|e| self.error(e))? {
                let (id, value) = item.map_err(|e| self.error(e))?;
                let hook: Hook = decode("hook", id.value(), value.value())?;
                if hook.scope == new.scope {
                    count += 1;
                }
            }
            if count >= MAX_HOOKS_PER_SCOPE {
                return Err(HookError::TooMany(format!(
                    "{} has {count} hooks, as many as it may have; remove one first",
                    new.repo.as_deref().unwrap_or("the site")
                )));
            }
        }
        let id = self.next_id(&txn, "next_hook_id")?;
        let now = now_ms();
        let mut hook = Hook {
            id,
            scope: new.scope,
            repo: new.repo.clone(),
            url: new.url.clone(),
            secret: new.secret.clone(),
            events: new.events.clone(),
            active: new.active,
            created_by: new.created_by.clone(),
            creator_incarnation: new.creator_incarnation,
            created_at: now,
            updated_at: now,
            cursor: 0,
        };
        self.log_in(&txn, logged(actor, &hook, EventKind::HookAdded))?;
        hook.cursor = self.hook_log_end(&txn)?;
        self.write_hook(&txn, &hook)?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(hook)
    }

    fn hooks(&self, scope: Option<HookScope>) -> Result<Vec<Hook>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let Some(table) = self.hook_table(&txn, HOOKS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.error(e))? {
            let (id, value) = item.map_err(|e| self.error(e))?;
            let hook: Hook = decode("hook", id.value(), value.value())?;
            if scope.is_none_or(|s| s == hook.scope) {
                out.push(hook);
            }
        }
        Ok(out)
    }

    fn find_hook(&self, id: u64) -> Result<Option<Hook>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let Some(table) = self.hook_table(&txn, HOOKS)? else {
            return Ok(None);
        };
        let value = table.get(id).map_err(|e| self.error(e))?;
        value.map(|v| decode("hook", id, v.value())).transpose()
    }

    fn update_hook(&self, id: u64, change: &HookChange, actor: &Actor) -> Result<Hook, HookError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let mut hook = self
            .read_hook_in(&txn, id)?
            .ok_or(HookError::NotFound(id))?;
        let was_active = hook.active;
        if let Some(url) = &change.url {
            hook.url = url.clone();
        }
        if let Some(secret) = &change.secret {
            hook.secret = secret.clone();
        }
        if let Some(events) = &change.events {
            hook.events = events.clone();
        }
        if let Some(active) = change.active {
            hook.active = active;
        }
        hook.updated_at = now_ms();
        self.log_in(&txn, logged(actor, &hook, EventKind::HookChanged))?;
        if hook.active && !was_active {
            hook.cursor = self.hook_log_end(&txn)?;
        }
        self.write_hook(&txn, &hook)?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(hook)
    }

    fn remove_hook(&self, id: u64, actor: &Actor) -> Result<Hook, HookError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let hook = self
            .read_hook_in(&txn, id)?
            .ok_or(HookError::NotFound(id))?;
        self.remove_log_in(&txn, id)?;
        {
            let mut hooks = txn.open_table(HOOKS).map_err(|e| self.error(e))?;
            hooks.remove(id).map_err(|e| self.error(e))?;
        }
        self.log_in(&txn, logged(actor, &hook, EventKind::HookRemoved))?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(hook)
    }

    fn queue_deliveries(
        &self,
        hook: u64,
        cursor: u64,
        to: u64,
        events: &[Event],
        now: u64,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let Some(mut stored) = self.read_hook_in(&txn, hook)? else {
            return Ok(0);
        };
        if stored.cursor != cursor {
            return Ok(0);
        }
        for event in events {
            let id = self.next_id(&txn, "next_delivery_id")?;
            let delivery = Delivery {
                id,
                hook,
                event: event.clone(),
                state: DeliveryState::Pending,
                attempts: Vec::new(),
                created_at: now,
                next_attempt_at: now,
                chain: 0,
            };
            let mut deliveries = txn.open_table(DELIVERIES).map_err(|e| self.error(e))?;
            self.put_delivery(&txn, &mut deliveries, &delivery)?;
        }
        stored.cursor = to;
        self.write_hook(&txn, &stored)?;
        if !events.is_empty() {
            self.prune_in(&txn, hook)?;
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(events.len())
    }

    fn deliveries(
        &self,
        hook: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let (Some(log), Some(table)) = (
            self.hook_table(&txn, HOOK_LOG)?,
            self.hook_table(&txn, DELIVERIES)?,
        ) else {
            return Ok(Vec::new());
        };
        let from = log_key(hook, 0);
        let to = log_key(hook, before.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        for item in log
            .range(from.as_slice()..to.as_slice())
            .map_err(|e| self.error(e))?
            .rev()
        {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item.map_err(|e| self.error(e))?;
            let id = delivery_of(key.value());
            let Some(value) = table.get(id).map_err(|e| self.error(e))? else {
                return Err(StoreError::Corrupt(format!(
                    "delivery {id} is logged but missing"
                )));
            };
            out.push(decode("delivery", id, value.value())?);
        }
        Ok(out)
    }

    fn pending_deliveries(&self, hook: u64) -> Result<usize, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let Some(log) = self.hook_table(&txn, HOOK_LOG)? else {
            return Ok(0);
        };
        let from = log_key(hook, 0);
        let to = log_key(hook, u64::MAX);
        let mut pending = 0;
        for item in log
            .range(from.as_slice()..=to.as_slice())
            .map_err(|e| self.error(e))?
        {
            let (_, state) = item.map_err(|e| self.error(e))?;
            if state.value() == state_byte(DeliveryState::Pending) {
                pending += 1;
            }
        }
        Ok(pending)
    }

    fn next_delivery(&self, hook: u64) -> Result<Option<Delivery>, StoreError> {
        let id = {
            let txn = self.db.begin_read().map_err(|e| self.error(e))?;
            let Some(log) = self.hook_table(&txn, HOOK_LOG)? else {
                return Ok(None);
            };
            let from = log_key(hook, 0);
            let to = log_key(hook, u64::MAX);
            let mut found = None;
            for item in log
                .range(from.as_slice()..=to.as_slice())
                .map_err(|e| self.error(e))?
            {
                let (key, state) = item.map_err(|e| self.error(e))?;
                if state.value() == state_byte(DeliveryState::Pending) {
                    found = Some(delivery_of(key.value()));
                    break;
                }
            }
            match found {
                Some(id) => id,
                None => return Ok(None),
            }
        };
        self.read_delivery(hook, id)
    }

    fn find_delivery(&self, hook: u64, id: u64) -> Result<Option<Delivery>, StoreError> {
        self.read_delivery(hook, id)
    }

    fn claim_delivery(
        &self,
        hook: u64,
        id: u64,
        now: u64,
        until: u64,
    ) -> Result<Option<Delivery>, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let claimed = {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(|e| self.error(e))?;
            let mut delivery: Delivery = match deliveries.get(id).map_err(|e| self.error(e))? {
                Some(value) => decode("delivery", id, value.value())?,
                None => return Ok(None),
            };
            if delivery.hook != hook
                || delivery.state != DeliveryState::Pending
                || delivery.next_attempt_at > now
            {
                return Ok(None);
            }
            let due = delivery.next_attempt_at;
            delivery.next_attempt_at = until;
            let json = serde_json::to_vec(&delivery).expect("serialisable");
            deliveries
                .insert(id, json.as_slice())
                .map_err(|e| self.error(e))?;
            delivery.next_attempt_at = due;
            delivery
        };
        txn.commit().map_err(|e| self.error(e))?;
        Ok(Some(claimed))
    }

    fn record_attempt(
        &self,
        hook: u64,
        id: u64,
        attempt: &Attempt,
        state: DeliveryState,
        next_attempt_at: u64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(|e| self.error(e))?;
            let mut delivery: Delivery = match deliveries.get(id).map_err(|e| self.error(e))? {
                Some(value) => decode("delivery", id, value.value())?,
                None => return Ok(()),
            };
            if delivery.hook != hook
                || delivery.chain != attempt.chain
                || delivery.state != DeliveryState::Pending
            {
                return Ok(());
            }
            delivery.attempts.push(attempt.clone());
            if delivery.attempts.len() > MAX_ATTEMPTS_KEPT {
                let extra = delivery.attempts.len() - MAX_ATTEMPTS_KEPT;
                delivery.attempts.drain(..extra);
            }
            delivery.state = state;
            delivery.next_attempt_at = next_attempt_at;
            self.put_delivery(&txn, &mut deliveries, &delivery)?;
        }
        txn.commit().map_err(|e| self.error(e))
    }

    fn redeliver(&self, hook: u64, id: u64, now: u64) -> Result<Delivery, HookError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let delivery = {
            let mut deliveries = txn.open_table(DELIVERIES).map_err(|e| self.error(e))?;
            let missing = || HookError::DeliveryNotFound { hook, delivery: id };
            let mut delivery: Delivery = match deliveries.get(id).map_err(|e| self.error(e))? {
                Some(value) => decode("delivery", id, value.value())?,
                None => return Err(missing()),
            };
            if delivery.hook != hook {
                return Err(missing());
            }
            delivery.chain += 1;
            delivery.state = DeliveryState::Pending;
            delivery.next_attempt_at = now;
            self.put_delivery(&txn, &mut deliveries, &delivery)?;
            delivery
        };
        txn.commit().map_err(|e| self.error(e))?;
        Ok(delivery)
    }
}
