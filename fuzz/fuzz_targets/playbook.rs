//! Untrusted playbook and drill files: the checkers never panic; they
//! accept a file or name problems with a line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = crisisdesk::playbook::parse(Path::new("fuzz.toml"), text) {
        assert!(!problems.is_empty());
        for p in problems {
            let _ = p.to_string();
        }
    }
    if let Ok(library) = crisisdesk::relay::playbooks::load(None) {
        let _ = crisisdesk::drill::parse(Path::new("fuzz.toml"), text, &library);
    }
});
