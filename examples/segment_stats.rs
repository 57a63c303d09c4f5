//! Bytes per kind and storage in a repository's segments:
//! `cargo run --release --example segment_stats -- DATA_DIR OWNER/NAME`.
use std::collections::BTreeMap;

use forge::store::segment::Storage;
use forge::store::{DataDir, RepoName, StoreError};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let data = DataDir::open(std::path::Path::new(&args[1]))?;
    let repo = data.open_repo(&RepoName::parse(&args[2])?)?;
    let mut stats: BTreeMap<(String, &str), (u64, u64, u64)> = BTreeMap::new();
    repo.for_each_entry(|loc, entry| -> Result<(), StoreError> {
        let storage = match entry.storage {
            Storage::Full => "whole",
            _ => "delta",
        };
        let s = stats
            .entry((format!("{:?}", loc.kind().unwrap()), storage))
            .or_default();
        s.0 += 1;
        s.1 += entry.data.len() as u64;
        s.2 += entry.size;
        Ok(())
    })?;
    println!(
        "{:<8} {:<6} {:>9} {:>14} {:>16}",
        "kind", "stored", "objects", "bytes stored", "content bytes"
    );
    for ((kind, storage), (n, stored, content)) in stats {
        println!("{kind:<8} {storage:<6} {n:>9} {stored:>14} {content:>16}");
    }
    Ok(())
}
