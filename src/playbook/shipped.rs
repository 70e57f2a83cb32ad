//! The playbook library the relay and every tool run: the shipped
//! `playbooks/` compiled into the binary, or a directory the operator names
//! with `--playbooks`.

use std::path::Path;

use crate::playbook::{self, Diagnostic, Library};

/// The shipped playbooks as (name, text), embedded by `build.rs` from
/// `playbooks/*.toml` so an installed binary needs no files.
pub const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_playbooks.rs"));

/// Loads the library: from `dir` when given, else the embedded copy. Any
/// problem refuses the whole library (a relay must not start half-armed).
pub fn load(dir: Option<&Path>) -> Result<Library, Vec<Diagnostic>> {
    match dir {
        Some(dir) => playbook::load_dir(dir),
        None => playbook::load_texts(EMBEDDED),
    }
}
