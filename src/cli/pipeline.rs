//! `forge pipeline run`: run `.forge/pipeline.toml` of a commit in a clean checkout, sign
//! the test result and print or upload it.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{print_json, user_error};
use crate::attest::{self, keys};

#[derive(Subcommand)]
pub(super) enum PipelineCommand {
    /// Run the pipeline of a commit of the git work tree here, sign its in-toto test
    /// result, and print the envelope or upload it. Exits 1 when the result is FAILED.
    Run {
        /// The commit to test (default HEAD).
        #[arg(long, default_value = "HEAD")]
        commit: String,
        /// The secret key to sign with (`forge keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The repository's URL on a forge (http://HOST/OWNER/NAME) to upload to.
        #[arg(long, requires = "token")]
        upload: Option<String>,
        /// A token of the signer (or of one who may act for it) with write on it.
        #[arg(long)]
        token: Option<String>,
    },
}

/// POSTs `body` to `…/api/v1/repos/OWNER/NAME/attestations` of the forge at `url`.
fn upload(url: &str, token: &str, body: &str) -> anyhow::Result<serde_json::Value> {
    let bad = || {
        user_error(
            "invalid_argument",
            format!("--upload takes http://HOST[:PORT]/OWNER/NAME, not {url:?}"),
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').ok_or_else(bad)?;
    let repo = path.trim_end_matches('/').trim_end_matches(".git");
    if repo.split('/').count() != 2 || host.is_empty() {
        return Err(bad());
    }
    let address = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let mut stream = std::net::TcpStream::connect(&address)
        .map_err(|e| user_error("upload_failed", format!("{address}: {e}")))?;
    write!(
        stream,
        "POST /api/v1/repos/{repo}/attestations HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| user_error("upload_failed", format!("{address}: {e}")))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| user_error("upload_failed", format!("{address}: {e}")))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    if status == 200 || status == 201 {
        return Ok(parsed);
    }
    let message = parsed["error"]["message"]
        .as_str()
        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
    Err(user_error(
        "upload_failed",
        format!("the forge refused the attestation: {message}"),
    ))
}

pub(super) fn command(
    command: PipelineCommand,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let PipelineCommand::Run {
        commit,
        key,
        upload: upload_url,
        token,
    } = command;
    let key = keys::read_secret_key(&key).map_err(|e| user_error(e.code(), e.to_string()))?;
    let here = std::env::current_dir()?;
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |line: &str| {
        if terminal {
            eprintln!("{line}");
        }
    };
    let run = crate::pipeline::run(&here, &commit, &mut progress)
        .map_err(|e| user_error(e.code(), e.to_string()))?;
    let statement = run.statement();
    let body = serde_json::to_vec(&statement).expect("a statement serialises");
    let envelope = attest::dsse::sign(attest::dsse::IN_TOTO_PAYLOAD_TYPE, &body, &key).to_json();
    let result = run.result();
    match (upload_url, token) {
        (Some(url), Some(token)) => {
            let answer = upload(&url, &token, &envelope)?;
            let id = answer["attestation"]["id"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if json {
                print_json(
                    json!({ "commit": run.commit.to_hex(), "result": result, "uploaded": id }),
                );
            } else {
                println!("{result}: uploaded attestation {id} about {}", run.commit);
            }
        }
        _ => println!("{envelope}"),
    }
    Ok(if result == "PASSED" {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
