//! Progress for long operations: a bar on the terminal for commands, or git-style lines
//! ("Translating objects:  45% (450/1000)") sent to a remote client on side band 2.

use std::io::IsTerminal;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display; a no-op when stderr is not a terminal (or it was turned off) and no
/// remote client listens.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    remote: Option<Arc<Remote>>,
}

/// Progress lines for a client, at most every `REMOTE_INTERVAL`.
struct Remote {
    send: Box<dyn Fn(&str) + Send + Sync>,
    state: Mutex<Phase>,
}

#[derive(Default)]
struct Phase {
    name: String,
    total: Option<u64>,
    done: u64,
    last_sent: Option<Instant>,
}

const REMOTE_INTERVAL: Duration = Duration::from_millis(250);

impl Phase {
    fn line(&self, end: &str) -> String {
        match self.total {
            Some(total) if total > 0 => format!(
                "{}: {:3}% ({}/{}){end}",
                self.name,
                self.done.min(total) * 100 / total,
                self.done.min(total),
                total
            ),
            _ => format!("{}: {}{end}", self.name, self.done),
        }
    }
}

impl Progress {
    /// Shows progress when `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Progress {
        Progress {
            bar: (wanted && std::io::stderr().is_terminal()).then(|| {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            }),
            remote: None,
        }
    }

    /// Progress as text lines handed to `send` (each ends in `\r`, or `\n` when a phase ends).
    pub fn remote(send: impl Fn(&str) + Send + Sync + 'static) -> Progress {
        Progress {
            bar: None,
            remote: Some(Arc::new(Remote {
                send: Box::new(send),
                state: Mutex::new(Phase::default()),
            })),
        }
    }

    /// Starts a new phase with an optional total.
    pub fn phase(&self, name: &str, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(total.unwrap_or(0));
            let template = if total.is_some() {
                "{msg:<22} {bar:30} {percent:>3}% ({human_pos}/{human_len}, {elapsed})"
            } else {
                "{msg:<22} {spinner} {human_pos} ({elapsed})"
            };
            bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
            bar.set_message(name.to_owned());
        }
        if let Some(remote) = &self.remote {
            let mut phase = remote.state.lock();
            remote.end_phase(&mut phase);
            *phase = Phase {
                name: name.to_owned(),
                total,
                done: 0,
                last_sent: None,
            };
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n)
        }
        if let Some(remote) = &self.remote {
            let mut phase = remote.state.lock();
            phase.done += n;
            remote.maybe_send(&mut phase);
        }
    }

    /// Sets the current phase's count (for counts kept elsewhere).
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done)
        }
        if let Some(remote) = &self.remote {
            let mut phase = remote.state.lock();
            phase.done = done;
            remote.maybe_send(&mut phase);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear()
        }
        if let Some(remote) = &self.remote {
            let mut phase = remote.state.lock();
            remote.end_phase(&mut phase);
            *phase = Phase::default();
        }
    }
}

impl Remote {
    /// Sends the phase's line unless one went out less than `REMOTE_INTERVAL` ago.
    fn maybe_send(&self, phase: &mut Phase) {
        if phase
            .last_sent
            .is_none_or(|t| t.elapsed() >= REMOTE_INTERVAL)
        {
            phase.last_sent = Some(Instant::now());
            (self.send)(&phase.line("\r"));
        }
    }

    /// Closes a phase that showed anything with its final count and ", done.".
    fn end_phase(&self, phase: &mut Phase) {
        if !phase.name.is_empty() && (phase.done > 0 || phase.total.is_some_and(|t| t > 0)) {
            (self.send)(&phase.line(", done.\n"));
        }
    }
}
