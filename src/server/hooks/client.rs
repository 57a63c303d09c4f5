//! One delivery request: resolve the host, check every address against the target rules,
//! connect to an allowed one (the address checked is the address connected to), TLS for
//! `https` (rustls with the `ring` provider and the Mozilla roots of `webpki-roots`), one
//! HTTP/1.1 request on its own connection (hyper's client connection), and at most
//! `RESPONSE_KEPT` bytes of the answer read. Redirects are not followed. Everything up to
//! the answer's head must happen before the deadline; an answer whose body is still coming
//! then counts with what came of it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::target::Targets;
use crate::store::hooks::HookUrl;

/// Bytes of a receiver's answer kept in the delivery log.
pub const RESPONSE_KEPT: usize = 4096;

/// What a receiver answered.
pub struct Answer {
    pub status: u16,
    /// Its first bytes (lossy UTF-8).
    pub body: String,
}

/// The TLS client configuration of every https delivery.
pub fn tls_connector() -> Result<TlsConnector, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The addresses of `url`'s host that the target rules allow, or why none is.
async fn allowed_addresses(url: &HookUrl, targets: &Targets) -> Result<Vec<SocketAddr>, String> {
    let resolved: Vec<SocketAddr> = match url.ip() {
        Some(ip) => vec![SocketAddr::new(ip, url.port)],
        None => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
            .collect(),
    };
    let mut allowed = Vec::new();
    let mut refusal = None;
    for addr in resolved {
        match targets.check(&url.host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(why) => refusal = refusal.or(Some(why)),
        }
    }
    if allowed.is_empty() {
        return Err(refusal.unwrap_or_else(|| format!("{} has no address", url.host)));
    }
    Ok(allowed)
}

/// Sends `body` to `url` with `headers`: the answer's head within `timeout`, and what of
/// its body comes within it too.
pub async fn post(
    url: &HookUrl,
    targets: &Targets,
    tls: &TlsConnector,
    headers: &[(&'static str, String)],
    body: Bytes,
    timeout: std::time::Duration,
) -> Result<Answer, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let answered =
        tokio::time::timeout_at(deadline, send(url, targets, tls, headers, body, deadline)).await;
    answered.unwrap_or_else(|_| {
        Err(format!(
            "timeout: no answer within {} s",
            timeout.as_secs_f64()
        ))
    })
}

async fn send(
    url: &HookUrl,
    targets: &Targets,
    tls: &TlsConnector,
    headers: &[(&'static str, String)],
    body: Bytes,
    deadline: tokio::time::Instant,
) -> Result<Answer, String> {
    let addresses = allowed_addresses(url, targets).await?;
    let mut last_error = String::new();
    let mut stream = None;
    for addr in addresses {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let stream = stream.ok_or(last_error)?;
    let _ = stream.set_nodelay(true);
    let mut request = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(url.path_and_query.as_str())
        .header(hyper::header::HOST, url.authority())
        .header(hyper::header::CONTENT_LENGTH, body.len())
        .header(hyper::header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("cannot make the request: {e}"))?;
    if url.https {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("{} is no TLS server name: {e}", url.host))?;
        let stream = tls
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS with {} failed: {e}", url.host))?;
        exchange(TokioIo::new(stream), request, deadline).await
    } else {
        exchange(TokioIo::new(stream), request, deadline).await
    }
}

async fn exchange<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
    deadline: tokio::time::Instant,
) -> Result<Answer, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    /// Ends the connection's task however this exchange ends (also when the caller's
    /// timeout drops it mid-request).
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let answered = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no HTTP answer: {e}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_KEPT {
            // A body still coming just before the deadline: the status has come, and counts.
            let cut = deadline
                .checked_sub(std::time::Duration::from_millis(50))
                .unwrap_or(deadline);
            let Ok(frame) = tokio::time::timeout_at(cut, body.frame()).await else {
                break;
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let room = RESPONSE_KEPT - kept.len();
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // A body cut short still leaves its status: the answer counts.
                Some(Err(_)) | None => break,
            }
        }
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&kept).into_owned(),
        })
    }
    .await;
    // The rest of the answer is not read: the connection goes with `_driver`.
    answered
}
