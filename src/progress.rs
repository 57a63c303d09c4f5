//! Progress bars for long commands, shown only on a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display that is a no-op when stderr is not a terminal (or it was turned off).
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
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
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n)
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear()
        }
    }
}
