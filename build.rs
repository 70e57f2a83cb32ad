//! Embeds the shipped playbooks (`playbooks/*.toml`) and drill scenarios
//! (`playbooks/drills/*.toml`) in the binary, so an installed relay, demo
//! or `drill run` needs no files beside it. Generates the lists
//! `playbook::shipped::EMBEDDED` and `drill::EMBEDDED` include; adding a file
//! needs no code change.

use std::fmt::Write;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=playbooks");
    println!("cargo:rerun-if-changed=playbooks/drills");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    embed(
        &root.join("playbooks"),
        "playbooks",
        "embedded_playbooks.rs",
    );
    embed(
        &root.join("playbooks").join("drills"),
        "playbooks/drills",
        "embedded_drills.rs",
    );
}

/// Writes `&[(name, include_str!(path)), …]` for every `*.toml` directly
/// in `dir`; an absent directory gives an empty list.
fn embed(dir: &Path, prefix: &str, target: &str) {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let mut out = String::from("&[\n");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy();
        writeln!(
            out,
            "    (\"{prefix}/{name}\", include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("]\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join(target);
    std::fs::write(target, out).expect("write embedded file list");
}
