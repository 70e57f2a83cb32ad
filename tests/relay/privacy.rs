//! The relay never sends a field a role may not see: names are replaced
//! by initials for everyone, tree-hole text reaches only the counselor and
//! the leader, and an identity is revealed only by a deliberate, audited
//! command, to the one connection that asked.

use crate::common;

use common::*;
use crisisdesk::protocol::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn each_role_receives_only_what_it_may_see() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let mut post = alert("p-1", "S1", "high");
    post["source"] = json!("treehole");
    post["student"]["name"] = json!("欧阳若曦");
    post["summary"] = json!("今晚就结束吧");
    assert_eq!(post_alert(&relay, &producer, &post).await.status, 201);

    for (role, reads_text, reads_signals) in [
        (Role::Counselor, true, true),
        (Role::Leader, true, true),
        (Role::HeadTeacher, false, false),
        (Role::Nurse, false, false),
        (Role::Security, false, false),
        (Role::Reviewer, false, false),
    ] {
        let token = relay.token(&format!("{role}-1"), role).await;
        let mut ws = connect(relay.addr, Some(&token), 0).await.unwrap();
        let raw = until_quiet(&mut ws).await;
        let text = serde_json::to_string(&raw).unwrap();
        assert!(!text.contains("欧阳若曦"), "{role} never receives the name");
        let ev = raw.iter().find(|e| e["type"] == "alert").unwrap();
        assert_eq!(ev["withheld"]["initials"], "欧***", "{role}");
        assert_eq!(ev["alert"]["student"]["id"], "S1", "{role}");
        assert_eq!(
            text.contains("今晚就结束吧"),
            reads_text,
            "{role} tree-hole text"
        );
        assert_eq!(
            ev["alert"].get("signals").is_some(),
            reads_signals,
            "{role} signals"
        );
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reveal_needs_a_reason_goes_to_the_asker_only_and_is_audited() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let mut a = alert("p-1", "S1", "high");
    a["student"]["name"] = json!("欧阳若曦");
    let case_id = post_alert(&relay, &producer, &a).await.body["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let wang = relay.token("wang", Role::Counselor).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let audit = relay.token("audit", Role::Reviewer).await;
    let mut w = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut l = connect(relay.addr, Some(&li), 0).await.unwrap();
    let mut r = connect(relay.addr, Some(&audit), 0).await.unwrap();
    until_quiet(&mut w).await;
    until_quiet(&mut l).await;
    until_quiet(&mut r).await;

    let reveal = |id: &str, reason: &str| json!({"type": "command", "id": id, "op": "reveal", "case_id": case_id, "reason": reason});
    send_command(&mut w, reveal("w1", "  ")).await;
    assert_eq!(
        result_for(&mut w, "w1").await.0["error"]["code"],
        "reason_required"
    );
    send_command(&mut r, reveal("r1", "review")).await;
    assert_eq!(
        result_for(&mut r, "r1").await.0["error"]["code"],
        "forbidden"
    );

    send_command(&mut w, reveal("w2", "需要联系家长")).await;
    let (ok, _) = result_for(&mut w, "w2").await;
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["data"]["student"]["name"], "欧阳若曦");
    // Nobody else hears of it.
    let others = until_quiet(&mut l).await;
    assert!(others.is_empty(), "a reveal broadcasts nothing: {others:?}");

    let entries = relay.relay.store().audit_for_case(&case_id).await.unwrap();
    let revealed = entries
        .iter()
        .find(|e| e.kind == "identity_revealed")
        .expect("audited");
    assert_eq!(revealed.actor_name.as_deref(), Some("wang"));
    assert!(
        revealed.detail.contains("需要联系家长"),
        "the reason is kept"
    );
    assert!(
        !revealed.detail.contains("欧阳若曦"),
        "the identity is not copied into the audit"
    );
    relay.stop().await;
}
