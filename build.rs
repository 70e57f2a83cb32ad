//! Embeds the shipped playbooks (`playbooks/*.toml`) in the binary, so an
//! installed relay needs no files beside it. Generates the list the relay's
//! `playbooks::EMBEDDED` includes; adding a playbook needs no code change.

use std::fmt::Write;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=playbooks");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("playbooks/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy();
        writeln!(
            out,
            "    (\"playbooks/{name}\", include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("]\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded_playbooks.rs");
    std::fs::write(target, out).expect("write embedded playbook list");
}
