//! Group commit is invisible: any sequence of writes (alert posts with
//! repeats and id conflicts, batches, commands - the acute ones and the
//! follow-up ones - and escalations) applied in
//! groups of any sizes gives the same outcome for every write and the same
//! stream, byte for byte, as applying each write alone. Checked with
//! proptest on real SQLite files, and on real PostgreSQL databases when
//! `CRISISDESK_TEST_PG` names a server.

use crate::backends;

use chrono::{DateTime, Duration, Utc};
use crisisdesk::playbook::Library;
use crisisdesk::protocol::{Alert, Command, Role};
use crisisdesk::store::{CommandOutcome, Credential, IngestOutcome, Store, Write, WriteOutcome};
use proptest::prelude::*;
use serde_json::json;

fn library() -> Library {
    crisisdesk::playbook::shipped::load(None).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

/// What a generated write is, before it is turned into a [`Write`].
#[derive(Debug, Clone)]
enum Op {
    /// An alert; `variant` changes its body (so a repeat of an id with
    /// another variant is a conflict).
    Alert {
        id: u8,
        student: u8,
        level: u8,
        variant: u8,
    },
    Batch(Vec<(u8, u8, u8, u8)>),
    Acknowledge {
        case: u8,
    },
    Close {
        case: u8,
    },
    Note {
        case: u8,
    },
    Escalate {
        minutes: i64,
    },
    // The follow-up phase (跟踪): into monitoring, a check-in, a lowering
    // proposed and confirmed, a re-opening.
    Monitor {
        case: u8,
    },
    Checkin {
        case: u8,
        num: u8,
        outcome: u8,
    },
    Propose {
        case: u8,
    },
    Confirm {
        case: u8,
    },
    Reopen {
        case: u8,
    },
}

fn alert(id: u8, student: u8, level: u8, variant: u8) -> Alert {
    let level = ["general", "key", "high"][usize::from(level % 3)];
    serde_json::from_value(json!({
        "id": format!("a-{id}"),
        "source": "screening",
        "category": if variant.is_multiple_of(2) { "suicide_risk" } else { "acute_distress" },
        "level": level,
        "imminent": student.is_multiple_of(4) && level == "high",
        "student": {"id": format!("S{student}"), "name": "王小明"},
        "observed_at": "2026-11-20T21:04:00+08:00"
    }))
    .unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    let quad = (0u8..12, 0u8..5, 0u8..3, 0u8..2);
    prop_oneof![
        5 => quad.prop_map(|(id, student, level, variant)| Op::Alert { id, student, level, variant }),
        2 => prop::collection::vec((0u8..12, 0u8..5, 0u8..3, 0u8..2), 1..6).prop_map(Op::Batch),
        1 => (1u8..6).prop_map(|case| Op::Acknowledge { case }),
        1 => (1u8..6).prop_map(|case| Op::Close { case }),
        1 => (1u8..6).prop_map(|case| Op::Note { case }),
        1 => (0i64..90).prop_map(|minutes| Op::Escalate { minutes }),
        // Days later: missed check-ins escalate too.
        1 => (1i64..20).prop_map(|days| Op::Escalate { minutes: days * 1440 }),
        1 => (1u8..6).prop_map(|case| Op::Monitor { case }),
        2 => (1u8..6, 1u8..4, 0u8..3).prop_map(|(case, num, outcome)| Op::Checkin { case, num, outcome }),
        1 => (1u8..6).prop_map(|case| Op::Propose { case }),
        1 => (1u8..6).prop_map(|case| Op::Confirm { case }),
        1 => (1u8..6).prop_map(|case| Op::Reopen { case }),
    ]
}

fn command(n: usize, op: serde_json::Value) -> Command {
    let mut v = op;
    v["id"] = json!(format!("cmd-{n}"));
    serde_json::from_value(v).unwrap()
}

fn write(n: usize, op: &Op, creds: &Creds) -> Write {
    let case = |c: &u8| format!("C{c:06}");
    let by = |credential: &Credential, op| Write::Command {
        credential: credential.clone(),
        command: command(n, op),
    };
    let act = |op| by(&creds.counselor, op);
    let producer = &creds.producer;
    match op {
        Op::Alert {
            id,
            student,
            level,
            variant,
        } => Write::Ingest {
            alerts: vec![alert(*id, *student, *level, *variant)],
            credential: producer.clone(),
        },
        Op::Batch(items) => Write::Ingest {
            alerts: items
                .iter()
                .map(|(i, s, l, v)| alert(*i, *s, *l, *v))
                .collect(),
            credential: producer.clone(),
        },
        Op::Acknowledge { case: c } => act(json!({"op": "acknowledge", "case_id": case(c)})),
        Op::Close { case: c } => act(json!({
            "op": "close", "case_id": case(c), "outcome": "stabilized", "note": "复评稳定"
        })),
        Op::Note { case: c } => act(json!({
            "op": "step", "case_id": case(c), "playbook": "suicidal_ideation_screening",
            "step": "interview", "action": "note", "text": "面谈"
        })),
        Op::Escalate { minutes } => Write::Escalate {
            now: at(*minutes),
            limit: 2,
        },
        Op::Monitor { case: c } => act(json!({"op": "monitor", "case_id": case(c)})),
        Op::Checkin {
            case: c,
            num,
            outcome,
        } => {
            let outcome = ["seen_well", "concern", "not_reached"][usize::from(*outcome % 3)];
            act(json!({
                "op": "checkin", "case_id": case(c), "checkin": num,
                "outcome": outcome, "note": "班主任回访"
            }))
        }
        Op::Propose { case: c } => act(json!({
            "op": "propose_level", "case_id": case(c), "level": "key", "reason": "复评稳定"
        })),
        Op::Confirm { case: c } => by(
            &creds.leader,
            json!({"op": "confirm_level", "case_id": case(c)}),
        ),
        Op::Reopen { case: c } => act(json!({
            "op": "reopen", "case_id": case(c), "reason": "再次出现风险信号"
        })),
    }
}

/// An outcome with what a caller can observe of it.
fn observed(outcome: &WriteOutcome) -> String {
    match outcome {
        WriteOutcome::Ingested(outcomes) => outcomes
            .iter()
            .map(|o| match o {
                IngestOutcome::Created {
                    seq,
                    case_id,
                    events,
                } => format!(
                    "created {seq} {case_id} [{}]",
                    events
                        .iter()
                        .map(|e| e.seq.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                IngestOutcome::Duplicate { seq, case_id } => format!("duplicate {seq} {case_id}"),
                IngestOutcome::Conflict => "conflict".into(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        WriteOutcome::Command(CommandOutcome::Applied { events, .. }) => format!(
            "applied [{}]",
            events
                .iter()
                .map(|e| e.seq.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        WriteOutcome::Command(CommandOutcome::Refused(e)) => format!("refused {}", e.code),
        WriteOutcome::Command(CommandOutcome::Repeated { ok, .. }) => format!("repeated {ok}"),
        WriteOutcome::Escalated { events, more } => format!("escalated {} {more}", events.len()),
        WriteOutcome::Audited => "audited".into(),
    }
}

/// Who writes: a screening feed, a counselor, and a leader who confirms.
struct Creds {
    producer: Credential,
    counselor: Credential,
    leader: Credential,
}

async fn store(db: &backends::TestDb) -> (Store, Creds) {
    let store = db.open().await;
    let mut made = Vec::new();
    for (name, role) in [
        ("feed", Role::Producer),
        ("wang", Role::Counselor),
        ("zhang", Role::Leader),
    ] {
        let token = store.create_credential(name, role).await.unwrap();
        made.push(store.authenticate(&token).await.unwrap().unwrap());
    }
    let leader = made.pop().unwrap();
    let counselor = made.pop().unwrap();
    let producer = made.pop().unwrap();
    (
        store,
        Creds {
            producer,
            counselor,
            leader,
        },
    )
}

/// The whole stream as stored, each event's JSON.
async fn stream(store: &Store) -> Vec<String> {
    store
        .events_after(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.json.to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn groups_of_any_size_give_the_same_outcomes_and_stream_as_one_by_one(
        ops in prop::collection::vec(op(), 1..40),
        cuts in prop::collection::vec(1usize..8, 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let lib = library();
            // Each backend on its own, and the backends against each
            // other: the same writes give the same outcomes and the same
            // stream, byte for byte, on SQLite and on PostgreSQL.
            let mut per_backend = Vec::new();
            let mut pairs = vec![(backends::sqlite_db(), backends::sqlite_db())];
            if let Some(server) = backends::pg_server() {
                pairs.push((backends::pg_db(&server).await, backends::pg_db(&server).await));
            }
            for (alone_db, grouped_db) in &pairs {
                let (alone, creds1) = store(alone_db).await;
                let (grouped, creds2) = store(grouped_db).await;
                let now = at(1);

                let mut one_by_one = Vec::new();
                for (n, op) in ops.iter().enumerate() {
                    let w = write(n, op, &creds1);
                    let outcome = alone.apply_group(&[w], now, &lib).await.unwrap();
                    one_by_one.push(observed(&outcome[0]));
                }

                let writes: Vec<Write> = ops.iter().enumerate().map(|(n, op)| write(n, op, &creds2)).collect();
                let mut in_groups = Vec::new();
                let mut rest = &writes[..];
                let mut cut = cuts.iter().cycle();
                while !rest.is_empty() {
                    let size = (*cut.next().unwrap()).min(rest.len());
                    let (group, tail) = rest.split_at(size);
                    for outcome in grouped.apply_group(group, now, &lib).await.unwrap() {
                        in_groups.push(observed(&outcome));
                    }
                    rest = tail;
                }
                prop_assert_eq!(&in_groups, &one_by_one);
                prop_assert_eq!(stream(&grouped).await, stream(&alone).await);
                // The audit trail records the same things (entries 1-3 are the
                // credentials, made at different moments in the two stores).
                let record = |entries: Vec<crisisdesk::audit::Entry>| -> Vec<String> {
                    entries
                        .into_iter()
                        .map(|e| format!("{} {:?} {:?} {}", e.kind, e.case_id, e.actor_name, e.detail))
                        .collect()
                };
                prop_assert_eq!(
                    record(grouped.audit_after(3, 100_000).await.unwrap()),
                    record(alone.audit_after(3, 100_000).await.unwrap())
                );
                per_backend.push((one_by_one, stream(&alone).await));
                alone.close().await;
                grouped.close().await;
            }
            if let [(sqlite_outcomes, sqlite_stream), (pg_outcomes, pg_stream)] = &per_backend[..] {
                prop_assert_eq!(pg_outcomes, sqlite_outcomes);
                prop_assert_eq!(pg_stream, sqlite_stream);
            }
            Ok(())
        })?;
    }
}
