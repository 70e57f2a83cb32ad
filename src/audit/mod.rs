//! The tamper-evident audit trail: pure functions over plain data.
//!
//! Every entry is chained to the one before it: its hash is SHA-256 over
//! the previous entry's hash and a canonical encoding of the entry. Change,
//! delete, insert or reorder an entry and the chain breaks at that point;
//! [`verify`] names the first entry where it does. Cutting entries off the
//! end leaves a valid shorter chain, which only a record of the head kept
//! elsewhere can reveal: [`Checkpoint`]s, written by the relay and kept off
//! the machine by the operator (docs/security.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, in the audit's words.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    AlertIngested,
    CommandAccepted,
    CommandRefused,
    CaseViewed,
    IdentityRevealed,
    EscalationRaised,
    CredentialCreated,
    CredentialRevoked,
    ConnectionOpened,
    ConnectionClosed,
}

crate::protocol::wire_names!(AuditKind);

/// An entry before it is chained: what the store is asked to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub kind: AuditKind,
    /// Credential name and role, or `None` for the relay itself.
    pub actor: Option<(String, String)>,
    pub terminal: Option<String>,
    pub case_id: Option<String>,
    /// True for anything belonging to a drill or test: kept out of reports.
    pub drill: bool,
    /// What changed. Never a student's name or alert free text: the audit
    /// says *that* something was seen or done and points at the record.
    pub detail: Value,
}

impl NewEntry {
    pub fn new(kind: AuditKind, detail: Value) -> NewEntry {
        NewEntry {
            kind,
            actor: None,
            terminal: None,
            case_id: None,
            drill: false,
            detail,
        }
    }

    pub fn by(mut self, name: &str, role: &str) -> NewEntry {
        self.actor = Some((name.to_string(), role.to_string()));
        self
    }

    pub fn on_case(mut self, case_id: &str, drill: bool) -> NewEntry {
        self.case_id = Some(case_id.to_string());
        self.drill = drill;
        self
    }

    pub fn from_terminal(mut self, terminal: Option<&str>) -> NewEntry {
        self.terminal = terminal.map(str::to_string);
        self
    }
}

/// An entry as stored: chained, with its position and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub terminal: Option<String>,
    pub case_id: Option<String>,
    pub drill: bool,
    /// The detail as stored text (canonical JSON, hashed as is).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// Chains `new` after an entry whose hash is `prev_hash`.
    pub fn chain(seq: i64, at: DateTime<Utc>, new: &NewEntry, prev_hash: &str) -> Entry {
        let (actor_name, actor_role) = match &new.actor {
            Some((n, r)) => (Some(n.clone()), Some(r.clone())),
            None => (None, None),
        };
        let mut entry = Entry {
            seq,
            at,
            kind: new.kind.as_str().to_string(),
            actor_name,
            actor_role,
            terminal: new.terminal.clone(),
            case_id: new.case_id.clone(),
            drill: new.drill,
            // serde_json's map is ordered by key, so this text is canonical.
            // Encoded by the serializer itself, not printed through `fmt`
            // (`Display` gives the same bytes, more slowly).
            detail: serde_json::to_string(&new.detail).unwrap_or_else(|_| new.detail.to_string()),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// SHA-256 over the previous hash and the canonical encoding of every
    /// other field, as lowercase hex.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        // Encoded straight into the hasher, not built as a `Value` and
        // printed: every alert appends an entry, and building the array
        // (a copy of each field) then printing it through `fmt` was most of
        // an entry's cost. The bytes are the same compact JSON array the
        // chain has always hashed (`the_hash_is_the_one_the_chain_was_defined_with`).
        if let Err(err) = serde_json::to_writer(&mut hasher, &self.canonical_fields()) {
            // Strings, numbers and booleans always encode, and a hasher's
            // writes never fail. A fallback here could only hash a
            // half-written state into a wrong link.
            unreachable!("audit fields always encode as JSON: {err}");
        }
        hex::encode(hasher.finalize())
    }

    /// The fields the hash covers, in the chain's order.
    #[allow(clippy::type_complexity)]
    fn canonical_fields(
        &self,
    ) -> (
        i64,
        String,
        &str,
        &Option<String>,
        &Option<String>,
        &Option<String>,
        &Option<String>,
        bool,
        &str,
    ) {
        (
            self.seq,
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            &self.kind,
            &self.actor_name,
            &self.actor_role,
            &self.terminal,
            &self.case_id,
            self.drill,
            &self.detail,
        )
    }
}

/// The chain's head at some moment, recorded outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
}

impl Checkpoint {
    /// One line of a checkpoint file: `SEQ HASH` (anything after the hash,
    /// such as the time it was written, is a comment).
    pub fn to_line(&self) -> String {
        format!("{} {}", self.seq, self.hash)
    }

    pub fn parse_line(line: &str) -> Option<Checkpoint> {
        let mut fields = line.split_whitespace();
        let seq = fields.next()?.parse().ok()?;
        let hash = fields.next()?;
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Checkpoint {
            seq,
            hash: hash.to_string(),
        })
    }
}

/// Why the chain does not verify, naming the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("audit entry {seq}: its contents were changed (hash does not match)")]
    Altered { seq: i64 },
    #[error("audit entry {expected} is missing (next entry found is {found})")]
    Missing { expected: i64, found: i64 },
    #[error(
        "audit entry {seq}: it does not follow entry {prev} (an entry was inserted, removed or moved)"
    )]
    Broken { seq: i64, prev: i64 },
    #[error(
        "audit trail ends at entry {last} but a checkpoint recorded entry {seq}: entries were cut off the end"
    )]
    Truncated { last: i64, seq: i64 },
    #[error("audit entry {seq} differs from the checkpoint recorded for it")]
    CheckpointMismatch { seq: i64 },
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub entries: i64,
    pub head: Option<Checkpoint>,
    pub checkpoints_checked: usize,
}

/// Checks a chain fed to it entry by entry in `seq` order, so a long trail
/// is verified page by page without holding it all in memory.
pub struct ChainVerifier {
    prev_hash: String,
    expected_seq: i64,
    head: Option<Checkpoint>,
    /// Recorded hashes by seq (a file may hold the same seq more than once;
    /// every line must match).
    checkpoints: std::collections::HashMap<i64, Vec<String>>,
    checked: usize,
}

impl ChainVerifier {
    pub fn new(checkpoints: &[Checkpoint]) -> ChainVerifier {
        let mut recorded: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for c in checkpoints {
            recorded.entry(c.seq).or_default().push(c.hash.clone());
        }
        ChainVerifier {
            prev_hash: GENESIS.to_string(),
            expected_seq: 1,
            head: None,
            checkpoints: recorded,
            checked: 0,
        }
    }

    /// Checks the next entry's place, contents and link.
    pub fn feed(&mut self, entry: Entry) -> Result<(), ChainError> {
        if entry.seq > self.expected_seq {
            return Err(ChainError::Missing {
                expected: self.expected_seq,
                found: entry.seq,
            });
        }
        if entry.seq < self.expected_seq {
            return Err(ChainError::Broken {
                seq: entry.seq,
                prev: self.expected_seq - 1,
            });
        }
        if entry.compute_hash() != entry.hash {
            return Err(ChainError::Altered { seq: entry.seq });
        }
        if entry.prev_hash != self.prev_hash {
            return Err(ChainError::Broken {
                seq: entry.seq,
                prev: entry.seq - 1,
            });
        }
        if let Some(recorded) = self.checkpoints.remove(&entry.seq) {
            if recorded.iter().any(|h| *h != entry.hash) {
                return Err(ChainError::CheckpointMismatch { seq: entry.seq });
            }
            self.checked += recorded.len();
        }
        self.prev_hash.clone_from(&entry.hash);
        self.expected_seq += 1;
        self.head = Some(Checkpoint {
            seq: entry.seq,
            hash: entry.hash,
        });
        Ok(())
    }

    /// After the last entry: no checkpoint may lie beyond the end.
    pub fn finish(mut self) -> Result<Verified, ChainError> {
        let last = self.expected_seq - 1;
        // `audit head` on an empty trail records seq 0 with the genesis
        // hash: a true statement about any chain, checked as such.
        if let Some(genesis) = self.checkpoints.remove(&0) {
            if genesis.iter().any(|h| h != GENESIS) {
                return Err(ChainError::CheckpointMismatch { seq: 0 });
            }
            self.checked += genesis.len();
        }
        if let Some(beyond) = self.checkpoints.keys().copied().max() {
            return Err(ChainError::Truncated { last, seq: beyond });
        }
        Ok(Verified {
            entries: last,
            head: self.head,
            checkpoints_checked: self.checked,
        })
    }
}

/// Verifies a whole chain given in `seq` order against `checkpoints`.
pub fn verify<I>(entries: I, checkpoints: &[Checkpoint]) -> Result<Verified, ChainError>
where
    I: IntoIterator<Item = Entry>,
{
    let mut verifier = ChainVerifier::new(checkpoints);
    for entry in entries {
        verifier.feed(entry)?;
    }
    verifier.finish()
}

/// Reads a checkpoint file (`SEQ HASH` per line; blank lines and `#`
/// comments ignored). A line that is not a checkpoint is an error naming
/// it: a damaged file must not quietly check less.
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            Checkpoint::parse_line(l)
                .ok_or_else(|| format!("line {}: expected `SEQ HASH`, found {:?}", i + 1, l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain(n: i64) -> Vec<Entry> {
        let t0 = DateTime::parse_from_rfc3339("2026-11-20T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let new = NewEntry::new(
                    AuditKind::CommandAccepted,
                    serde_json::json!({"n": seq, "op": "step"}),
                )
                .by("wang", "counselor")
                .on_case("C000001", false);
                let e = Entry::chain(seq, t0 + chrono::Duration::seconds(seq), &new, &prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_reports_its_head() {
        let entries = chain(5);
        let head = Checkpoint {
            seq: 5,
            hash: entries[4].hash.clone(),
        };
        let v = verify(entries, std::slice::from_ref(&head)).unwrap();
        assert_eq!(v.entries, 5);
        assert_eq!(v.head, Some(head));
        assert_eq!(v.checkpoints_checked, 1);
    }

    /// The hash as the chain first defined it: a `json!` array printed
    /// with `Display`. Entries already stored were hashed this way, so the
    /// faster encoding must give the same bytes.
    fn hash_as_first_defined(e: &Entry) -> String {
        let canonical = serde_json::json!([
            e.seq,
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            e.kind,
            e.actor_name,
            e.actor_role,
            e.terminal,
            e.case_id,
            e.drill,
            e.detail,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(e.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_hash_is_the_one_the_chain_was_defined_with() {
        let at = DateTime::parse_from_rfc3339("2026-11-20T13:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let awkward = serde_json::json!({
            "quote": "say \"no\"\n\ttab \\ slash",
            "zh": "王小明 · 高危",
            "control": "\u{1b}[2J\u{7}",
            "n": -3,
            "f": 1.5,
            "none": null,
        });
        let entries = [
            NewEntry::new(AuditKind::AlertIngested, awkward.clone())
                .by("王老师", "counselor")
                .on_case("C000001", true)
                .from_terminal(Some("duty-1")),
            NewEntry::new(AuditKind::CommandAccepted, serde_json::json!({})),
        ];
        for new in &entries {
            let e = Entry::chain(7, at, new, GENESIS);
            assert_eq!(e.hash, hash_as_first_defined(&e));
            assert_eq!(e.detail, new.detail.to_string());
        }
    }

    #[test]
    fn the_detail_is_canonical_whatever_the_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        assert_eq!(a.to_string(), b.to_string());
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_entry() {
        let mut altered = chain(5);
        altered[2].detail = r#"{"n":3,"op":"close"}"#.into();
        assert_eq!(verify(altered, &[]), Err(ChainError::Altered { seq: 3 }));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(
            verify(deleted, &[]),
            Err(ChainError::Missing {
                expected: 2,
                found: 3
            })
        );

        // Delete and renumber: the hash of the renumbered entry changes.
        let mut renumbered = chain(5);
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verify(renumbered, &[]), Err(ChainError::Altered { seq: 2 }));

        // Delete, renumber and rehash: the link to the previous entry breaks.
        let mut rehashed = chain(5);
        rehashed.remove(1);
        for (i, e) in rehashed.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
            e.hash = e.compute_hash();
        }
        assert_eq!(
            verify(rehashed, &[]),
            Err(ChainError::Broken { seq: 2, prev: 1 })
        );

        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert!(matches!(
            verify(reordered, &[]),
            Err(ChainError::Missing { expected: 2, .. })
        ));
    }

    #[test]
    fn truncation_is_caught_only_by_a_checkpoint() {
        let full = chain(6);
        let head = Checkpoint {
            seq: 6,
            hash: full[5].hash.clone(),
        };
        let cut: Vec<Entry> = full.into_iter().take(4).collect();
        assert!(
            verify(cut.clone(), &[]).is_ok(),
            "a cut chain is still a chain"
        );
        assert_eq!(
            verify(cut, &[head]),
            Err(ChainError::Truncated { last: 4, seq: 6 })
        );
    }

    #[test]
    fn an_empty_head_checkpoint_and_repeated_lines_are_checked_not_misread() {
        let entries = chain(3);
        let genesis = Checkpoint {
            seq: 0,
            hash: GENESIS.into(),
        };
        let v = verify(entries.clone(), std::slice::from_ref(&genesis)).unwrap();
        assert_eq!(v.checkpoints_checked, 1);
        let good = Checkpoint {
            seq: 2,
            hash: entries[1].hash.clone(),
        };
        let bad = Checkpoint {
            seq: 2,
            hash: "ab".repeat(32),
        };
        assert_eq!(
            verify(entries, &[good, bad]),
            Err(ChainError::CheckpointMismatch { seq: 2 })
        );
    }

    #[test]
    fn checkpoint_lines_round_trip_and_reject_junk() {
        let c = Checkpoint {
            seq: 12,
            hash: "ab".repeat(32),
        };
        assert_eq!(Checkpoint::parse_line(&c.to_line()), Some(c));
        assert_eq!(Checkpoint::parse_line("12 nothex"), None);
        assert_eq!(Checkpoint::parse_line("x abc"), None);
    }

    proptest! {
        /// Any single-field change to any entry is detected at that entry.
        #[test]
        fn any_change_to_any_entry_is_detected(n in 1i64..20, victim in 0usize..20, field in 0u8..5) {
            let mut entries = chain(n);
            let i = victim % entries.len();
            let e = &mut entries[i];
            match field {
                0 => e.detail.push(' '),
                1 => e.kind = "credential_revoked".into(),
                2 => e.actor_name = Some("mallory".into()),
                3 => e.drill = !e.drill,
                _ => e.at += chrono::Duration::seconds(1),
            }
            let seq = e.seq;
            prop_assert_eq!(verify(entries, &[]), Err(ChainError::Altered { seq }));
        }
    }
}
