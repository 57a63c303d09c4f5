//! `forge keygen` and `forge attest sign|verify`: offline, like `forge token attenuate`
//! (no data directory, no server).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{print_json, user_error};
use crate::attest::{self, AttestError, Envelope, KeyId, Statement, keys};
use crate::object::Sha1;

#[derive(Subcommand)]
pub(super) enum AttestCommand {
    /// Sign an in-toto statement about a commit and print its DSSE envelope.
    Sign {
        /// The secret key file (`forge keygen` writes one).
        #[arg(long)]
        key: PathBuf,
        /// The commit the statement is about (40 hex digits).
        #[arg(long)]
        commit: String,
        /// The commit's tree, named as a second subject.
        #[arg(long)]
        tree: Option<String>,
        /// The predicate type URI (e.g. https://in-toto.io/attestation/test-result/v0.1).
        #[arg(long)]
        predicate_type: String,
        /// A JSON file holding the predicate object.
        #[arg(long)]
        predicate: PathBuf,
    },
    /// List the attestations a repository keeps about a commit (signer, predicate, result;
    /// a signer whose key was revoked since is marked).
    List { repo: String, commit: String },
    /// Check an envelope's signature against a public key and show what it states.
    Verify {
        /// The envelope (JSON) file.
        file: PathBuf,
        /// A public key (64 hex digits); repeat to accept any of several.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<String>,
    },
}

fn attest_error(e: AttestError) -> anyhow::Error {
    user_error(e.code(), e.to_string())
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| user_error("invalid_argument", format!("{}: {e}", path.display())))
}

fn parse_sha1(what: &str, hex: &str) -> anyhow::Result<Sha1> {
    let valid = hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let sha1 = valid
        .then(|| Sha1::from_hex(hex.to_ascii_lowercase().as_bytes()).ok())
        .flatten();
    sha1.ok_or_else(|| {
        user_error(
            "invalid_argument",
            format!("--{what} takes a full SHA-1 (40 hex digits), not {hex:?}"),
        )
    })
}

/// `forge keygen --out FILE`: a new key pair; prints the public key.
pub(super) fn keygen(out: &Path, json: bool) -> anyhow::Result<()> {
    let key = keys::generate().map_err(attest_error)?;
    keys::write_secret_key(out, &key).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "exists"
        } else {
            "invalid_argument"
        };
        user_error(code, format!("{}: {e}", out.display()))
    })?;
    let public = KeyId::of(&key.verifying_key()).to_string();
    if json {
        print_json(json!({ "secret_key_file": out.display().to_string(), "public_key": public }));
    } else {
        println!("{public}");
    }
    Ok(())
}

pub(super) fn command(data_path: &Path, command: AttestCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AttestCommand::List { repo, commit } => {
            let data = crate::store::DataDir::open(data_path)?;
            let repo = data.open_repo(&super::parse_name(&repo)?)?;
            let commit = parse_sha1("commit", &commit)?;
            let identities = data.list_identities()?;
            let records = repo.attestations(&commit)?;
            if json {
                let listed: Vec<crate::evidence::AttestationView> = records
                    .iter()
                    .map(|record| crate::evidence::describe(record, &identities))
                    .collect();
                print_json(json!({ "commit": commit.to_hex(), "attestations": listed }));
            } else {
                for record in &records {
                    let signers: Vec<String> = record
                        .signers
                        .iter()
                        .map(|s| {
                            if crate::evidence::signer_counts(&identities, s) {
                                s.identity.clone()
                            } else {
                                format!("{} (key revoked)", s.identity)
                            }
                        })
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        &record.id[..12],
                        record.predicate_type,
                        signers.join(","),
                        record.summary.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        AttestCommand::Sign {
            key,
            commit,
            tree,
            predicate_type,
            predicate,
        } => {
            let key = keys::read_secret_key(&key).map_err(attest_error)?;
            let commit = parse_sha1("commit", &commit)?;
            let tree = tree.map(|t| parse_sha1("tree", &t)).transpose()?;
            let predicate: serde_json::Value = serde_json::from_slice(&read_file(&predicate)?)
                .map_err(|e| user_error("invalid_argument", format!("the predicate: {e}")))?;
            if !predicate.is_object() {
                return Err(user_error(
                    "invalid_argument",
                    "the predicate must be a JSON object",
                ));
            }
            let statement = Statement::about_commit(commit, tree, &predicate_type, predicate);
            let body = serde_json::to_vec(&statement).expect("a statement serialises");
            // What the server will check, checked before anything is signed.
            Statement::parse(&body).map_err(attest_error)?;
            let envelope = attest::dsse::sign(attest::dsse::IN_TOTO_PAYLOAD_TYPE, &body, &key);
            println!("{}", envelope.to_json());
        }
        AttestCommand::Verify { file, public_keys } => {
            let keys = public_keys
                .iter()
                .map(|k| keys::parse_public_key(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(attest_error)?;
            let envelope = Envelope::parse(&read_file(&file)?).map_err(attest_error)?;
            let (verified, statement) = attest::open(&envelope, &keys).map_err(attest_error)?;
            let signers: Vec<String> = verified.signers.iter().map(KeyId::to_string).collect();
            let commits: Vec<String> = statement.commits().iter().map(Sha1::to_hex).collect();
            let trees: Vec<String> = statement.trees().iter().map(Sha1::to_hex).collect();
            if json {
                print_json(json!({
                    "signers": signers,
                    "predicate_type": statement.predicate_type,
                    "commits": commits,
                    "trees": trees,
                    "statement": statement,
                }));
            } else {
                println!("verified: signed by {}", signers.join(", "));
                println!("predicate: {}", statement.predicate_type);
                for commit in &commits {
                    println!("commit: {commit}");
                }
                for tree in &trees {
                    println!("tree: {tree}");
                }
                if let Some(result) = statement.test_result() {
                    println!("result: {result}");
                }
            }
        }
    }
    Ok(())
}
