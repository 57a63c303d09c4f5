//! Response bodies written by blocking work (packs, archives) as it makes them, through a
//! bounded channel: memory per response stays bounded, and the work stops when the client
//! goes away.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;

use super::metrics::Metrics;

/// Buffered writes per response (each up to 64 KiB as packs and archives write them).
const RESPONSE_QUEUE: usize = 16;

/// An `io::Write` that hands each write to the HTTP response body. Fails once the client
/// has gone, which stops the work. Counts what it sends as fetched bytes when `sent` is
/// given.
#[derive(Clone)]
pub(super) struct BodyWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    sent: Option<Arc<Metrics>>,
}

impl BodyWriter {
    /// The same body, its bytes counted as fetched.
    pub(super) fn counted(self, metrics: Arc<Metrics>) -> BodyWriter {
        BodyWriter {
            sent: Some(metrics),
            ..self
        }
    }

    /// Ends the body with an error: the client sees the response cut off.
    pub(super) fn abort(&self, error: io::Error) {
        let _ = self.tx.blocking_send(Err(error));
    }
}

impl Write for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(bytes)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        if let Some(metrics) = &self.sent {
            metrics.fetch_sent(bytes.len());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on a blocking thread, its writes the body. Waits for the first write or the
/// work's end, so that a failure before any byte is returned (`Err(None)`: it panicked)
/// rather than cutting off a body already answered 200.
pub(super) async fn streamed<E: Send + 'static>(
    work: impl FnOnce(BodyWriter) -> Result<(), E> + Send + 'static,
) -> Result<Body, Option<E>> {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(RESPONSE_QUEUE);
    let work = tokio::task::spawn_blocking(move || work(BodyWriter { tx, sent: None }));
    match rx.recv().await {
        Some(first) => {
            tokio::spawn(async move {
                let _ = work.await;
            });
            Ok(Body::from_stream(response_stream(first, rx)))
        }
        None => match work.await {
            Ok(Ok(())) => Ok(Body::empty()),
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(None),
        },
    }
}

/// The HTTP body: the first message (already received), then the rest of the channel.
fn response_stream(
    first: Result<Bytes, io::Error>,
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> {
    futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        if let Some(item) = first {
            return Some((item, (None, rx)));
        }
        rx.recv().await.map(|item| (item, (None, rx)))
    })
}
