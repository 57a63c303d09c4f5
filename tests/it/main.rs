//! The integration tests, in one binary (one link of forge and its dependencies instead of
//! one per file). Each module drives the real `forge` binary and stock git.

mod common;

mod api;
mod architecture;
mod attest;
mod auth;
mod browse;
mod cli;
mod config;
mod crash;
mod events;
mod goals;
mod hooks;
mod hostile;
mod https;
mod import_export;
mod merge;
mod metrics;
mod object_format;
mod pipeline;
mod policy;
mod proxies;
mod push_refused;
mod receive_pack;
mod rest_commits;
mod serve;
mod store_conformance;
mod tokens_cli;
mod upload_pack;

/// Every test file is a module of this binary: one left out would silently never run.
#[test]
fn no_forgotten_test_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(module) = name.strip_suffix(".rs")
            && module != "main"
        {
            assert!(
                main.contains(&format!("\nmod {module};\n")),
                "tests/it/{name} is not listed in tests/it/main.rs"
            );
        }
    }
}
