//! Untrusted alert bodies: parsing never panics, an accepted alert is
//! valid and survives a round trip, and its text is inert for a terminal.
#![no_main]

use crisisdesk::protocol::{parse_alert, validate_alert};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(alert) = parse_alert(data) {
        validate_alert(&alert).expect("an accepted alert is valid");
        let again = serde_json::to_vec(&alert).unwrap();
        assert_eq!(parse_alert(&again).expect("round trip"), alert);
        for text in [alert.summary.as_deref().unwrap_or(""), alert.id.as_str()] {
            let shown = crisisdesk::text::inert(text);
            assert!(!shown.chars().any(char::is_control));
            let _ = crisisdesk::text::fit(&shown, 17);
        }
    }
});
