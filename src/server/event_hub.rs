//! What live event streams wait on: the log's last sequence number, watched by one poller
//! for the whole server while any stream is open (so a change by another `forge` process
//! on the data directory is seen too), woken at once by this server's own writes; a bound on open streams per
//! caller; and the server's shutdown, which ends every stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

/// How often the poller reads the log's end when nothing woke it.
const POLL: Duration = Duration::from_millis(100);

pub struct EventHub {
    latest: watch::Sender<u64>,
    wake: Notify,
    /// Repositories written since their outbox was last relayed, and the relayer's wake.
    unrelayed: Mutex<std::collections::BTreeSet<u64>>,
    relay: Notify,
    /// Held while taken repositories are relayed, so that a reader relaying first waits
    /// for a relay in flight instead of reading the log before it lands.
    relaying: Mutex<()>,
    shutdown: watch::Sender<bool>,
    open: Mutex<HashMap<String, usize>>,
    per_caller: usize,
}

/// One open stream, counted against its caller until dropped.
pub struct StreamSlot {
    hub: Arc<EventHub>,
    key: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.hub.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl EventHub {
    pub fn new(per_caller: usize) -> Arc<EventHub> {
        Arc::new(EventHub {
            latest: watch::channel(0).0,
            wake: Notify::new(),
            unrelayed: Mutex::new(std::collections::BTreeSet::new()),
            relay: Notify::new(),
            relaying: Mutex::new(()),
            shutdown: watch::channel(false).0,
            open: Mutex::new(HashMap::new()),
            per_caller,
        })
    }

    /// Runs the poller until the server shuts down; `last_event` reads the log's end.
    pub async fn run(
        self: Arc<EventHub>,
        last_event: impl Fn() -> Option<u64> + Send + Sync + Clone + 'static,
    ) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            // Nobody streams: nothing to read until a stream opens (or a write wakes us).
            if self.open.lock().is_empty() {
                tokio::select! {
                    () = self.wake.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
            let read = last_event.clone();
            if let Ok(Some(last)) = tokio::task::spawn_blocking(read).await {
                self.latest.send_if_modified(|seen| {
                    let newer = last > *seen;
                    if newer {
                        *seen = last;
                    }
                    newer
                });
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Tells the poller the log may have grown.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Repository `repo` committed events: the relayer moves them into the log.
    pub fn written(&self, repo: u64) {
        self.unrelayed.lock().insert(repo);
        self.relay.notify_one();
    }

    /// Waits until a repository was written (or the server shuts down: `false`).
    pub async fn wait_written(&self) -> bool {
        let mut shutdown = self.shutdown.subscribe();
        if *shutdown.borrow() {
            return false;
        }
        tokio::select! {
            () = self.relay.notified() => true,
            _ = shutdown.changed() => false,
        }
    }

    /// The repositories written since the last call, with the relay lock: whoever takes
    /// them relays them before the next taker reads on.
    pub fn take_written(&self) -> (parking_lot::MutexGuard<'_, ()>, Vec<u64>) {
        let relaying = self.relaying.lock();
        let written = std::mem::take(&mut *self.unrelayed.lock())
            .into_iter()
            .collect();
        (relaying, written)
    }

    pub fn latest(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Ends every stream (and the poller).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Streams open now, of every caller (for `/metrics`).
    pub fn open_streams(&self) -> usize {
        self.open.lock().values().sum()
    }

    /// A slot for a new stream of `key` (an identity, or anonymous callers together), or
    /// `None` when it holds as many as it may.
    pub fn open_stream(self: &Arc<EventHub>, key: &str) -> Option<StreamSlot> {
        let mut open = self.open.lock();
        let count = open.entry(key.to_owned()).or_insert(0);
        if *count >= self.per_caller {
            return None;
        }
        *count += 1;
        // The poller idles while no stream is open.
        self.wake.notify_one();
        Some(StreamSlot {
            hub: self.clone(),
            key: key.to_owned(),
        })
    }
}
