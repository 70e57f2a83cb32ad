//! Untrusted console frames and events: a command frame parses or is
//! refused without panicking, and per-role redaction never panics nor
//! lets a student name through.
#![no_main]

use crisisdesk::protocol::{ClientFrame, Role};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ClientFrame::Command(cmd)) = serde_json::from_str::<ClientFrame>(text) {
        let _ = cmd.op.audit_detail();
        for role in Role::ALL {
            let _ = cmd.op.allowed_for(role);
        }
    }
    for role in Role::ALL {
        let out = crisisdesk::privacy::redact_event(role, text);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&out)
            && v["type"] == "alert"
        {
            assert!(v["alert"]["student"].get("name").is_none(), "name leaked");
        }
    }
});
