//! Submitting and reviewing incident reports from the console, driven
//! through the app's key path: the leader submits a stage with an optional
//! narrative, a refusal for naming the student comes back into the prompt
//! and stays on the screen, the district accepts or returns with a
//! required reason, and each role sees only the keys it may use.

use crate::console_support::*;
use crisisdesk::console::app::{Action, App, Ask, Screen};
use crisisdesk::console::{Effect, Lang};
use crisisdesk::protocol::{
    Actor, CaseStatus, Category, Command, CommandOp, CommandResult, ErrorDetail, Level, ResultTag,
    Role,
};
use crisisdesk::reporting::{IncidentReport, ReportForm, Rules, Stage};
use crossterm::event::KeyCode;
use serde_json::json;

fn opened() -> IncidentReport {
    let rules = Rules::embedded().unwrap();
    let form = ReportForm {
        incident_at: at("2026-11-20T13:05:00Z"),
        school: Some("第一中学".into()),
        grade: Some("初二".into()),
        category: Category::SuicideRisk,
        level: Level::High,
        imminent: true,
        case_status: CaseStatus::Acknowledged,
        outcome: None,
        emergency_calls: vec!["120".into()],
        actions: Vec::new(),
        narrative: None,
        student_name: None,
    };
    IncidentReport::open(
        "C000001",
        false,
        &[rules.get("death").unwrap()],
        None,
        form,
        at("2026-11-20T13:20:00Z"),
    )
}

fn show(app: &mut App, seq: i64, report: &IncidentReport, kind: &str) {
    let mut event = json!({
        "seq": seq, "at": "2026-11-20T13:25:00Z", "type": kind,
        "case_id": "C000001", "report": report,
    });
    if kind == "report_updated" {
        event["change"] = json!({"change": "rules_added", "rules": []});
    }
    app.update(ev(event));
    app.refresh();
}

fn leader() -> Actor {
    Actor {
        name: "li".into(),
        role: Role::Leader,
    }
}

fn sent(effects: &[Effect]) -> Vec<Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn refused(cmd: &Command, code: &str, message: &str) -> Action {
    Action::Answered(
        Box::new(cmd.clone()),
        Box::new(CommandResult {
            kind: ResultTag::Result,
            id: cmd.id.clone(),
            ok: false,
            error: Some(ErrorDetail::new(code, message)),
            duplicate: false,
            data: None,
        }),
    )
}

#[test]
fn the_leader_submits_with_a_narrative_and_a_name_in_it_comes_back_to_be_reworded() {
    for (lang, tag, words) in [
        (Lang::Zh, "zh", "叙述中含有学生姓名"),
        (Lang::En, "en", "the narrative names the student"),
    ] {
        let mut app = sample_app_as(lang, "leader");
        show(&mut app, 1001, &opened(), "report_opened");
        key(&mut app, KeyCode::Char('R'));
        assert!(key(&mut app, KeyCode::Char('s')).is_empty());
        assert!(matches!(
            app.nav.prompt.as_ref().map(|p| &p.ask),
            Some(Ask::ReportNarrative(c, Stage::First)) if c == "C000001"
        ));
        type_text(&mut app, "王小明已送医");
        let cmds = sent(&key(&mut app, KeyCode::Enter));
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0].op,
            CommandOp::SubmitReport {
                case_id: "C000001".into(),
                stage: Stage::First,
                narrative: Some("王小明已送医".into()),
            }
        );
        assert!(app.nav.prompt.is_none());
        app.update(refused(
            &cmds[0],
            "name_not_allowed",
            "the narrative names the student, and no rule on this report requires a name; write 该生 or the case id instead",
        ));
        app.refresh();
        // Back in the prompt with the text, to reword it.
        let prompt = app.nav.prompt.as_ref().expect("the narrative prompt again");
        assert_eq!(prompt.input, "王小明已送医");
        assert!(
            prompt.error.as_deref().unwrap().contains(words),
            "{prompt:?}"
        );
        for (w, h) in [(80, 24), (120, 40)] {
            let screen = render(&app, w, h);
            assert!(screen.contains(words), "{screen}");
            insta::with_settings!({
                snapshot_path => "../snapshots",
                prepend_module_to_snapshot => false,
            }, {
                insta::assert_snapshot!(format!("console_report_submit_refused_{tag}_{w}x{h}"), screen);
            });
        }
        // Esc leaves the prompt; the refusal stays beside the report.
        key(&mut app, KeyCode::Esc);
        let screen = render(&app, 120, 40);
        assert!(screen.contains("⚠ IR-C000001"), "{screen}");
        assert!(
            app.notice.as_deref().unwrap_or("").contains(words),
            "{:?}",
            app.notice
        );
        // An empty narrative is allowed: the form speaks for itself.
        key(&mut app, KeyCode::Char('s'));
        let cmds = sent(&key(&mut app, KeyCode::Enter));
        assert!(matches!(
            &cmds[0].op,
            CommandOp::SubmitReport {
                narrative: None,
                ..
            }
        ));
        assert!(
            app.report_actions.refusal.is_none(),
            "a new submission clears the old refusal"
        );
    }
}

#[test]
fn a_late_submission_is_listed_as_late_and_nothing_is_left_to_submit_after_the_final() {
    let mut app = sample_app_as(Lang::Zh, "leader");
    let mut report = opened();
    // Submitted at 14:30, past the 14:20 deadline.
    report
        .submit(
            Stage::First,
            &leader(),
            report.form.clone(),
            at("2026-11-20T14:30:00Z"),
        )
        .unwrap();
    show(&mut app, 1001, &report, "report_opened");
    key(&mut app, KeyCode::Char('R'));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("首报 已报待审!"), "{screen}");
    assert!(screen.contains("逾期提交"), "{screen}");
    // The next stage to send is the follow-up.
    key(&mut app, KeyCode::Char('s'));
    assert!(matches!(
        app.nav.prompt.as_ref().map(|p| &p.ask),
        Some(Ask::ReportNarrative(_, Stage::FollowUp))
    ));
    key(&mut app, KeyCode::Esc);
    for stage in [Stage::FollowUp, Stage::Final] {
        report
            .submit(
                stage,
                &leader(),
                report.form.clone(),
                at("2026-11-20T14:40:00Z"),
            )
            .unwrap();
    }
    show(&mut app, 1002, &report, "report_updated");
    assert!(key(&mut app, KeyCode::Char('s')).is_empty());
    assert!(app.nav.prompt.is_none());
    assert!(app.notice.as_deref().unwrap().contains("没有可上报的阶段"));
}

#[test]
fn the_district_accepts_or_returns_with_a_reason_refused_locally_when_empty() {
    for (lang, empty) in [
        (Lang::Zh, "退回须写明原因"),
        (Lang::En, "a return needs a reason"),
    ] {
        let mut app = sample_app_as(lang, "district");
        let mut report = opened();
        show(&mut app, 1001, &report, "report_opened");
        key(&mut app, KeyCode::Char('R'));
        // Nothing submitted yet: nothing to review.
        assert!(key(&mut app, KeyCode::Char('y')).is_empty());
        assert!(key(&mut app, KeyCode::Char('x')).is_empty());
        assert!(app.nav.prompt.is_none());
        report
            .submit(
                Stage::First,
                &leader(),
                report.form.clone(),
                at("2026-11-20T13:25:00Z"),
            )
            .unwrap();
        show(&mut app, 1002, &report, "report_updated");
        key(&mut app, KeyCode::Char('x'));
        assert!(matches!(
            app.nav.prompt.as_ref().map(|p| &p.ask),
            Some(Ask::ReturnReason(_, Stage::First))
        ));
        assert!(
            key(&mut app, KeyCode::Enter).is_empty(),
            "no reason, nothing sent"
        );
        assert_eq!(
            app.nav.prompt.as_ref().and_then(|p| p.error.as_deref()),
            Some(empty)
        );
        let screen = render(&app, 80, 24);
        assert!(screen.contains(empty), "{screen}");
        type_text(&mut app, "请补充送医时间");
        let cmds = sent(&key(&mut app, KeyCode::Enter));
        assert_eq!(
            cmds[0].op,
            CommandOp::ReturnReport {
                case_id: "C000001".into(),
                stage: Stage::First,
                reason: "请补充送医时间".into(),
            }
        );
        let cmds = sent(&key(&mut app, KeyCode::Char('y')));
        assert_eq!(
            cmds[0].op,
            CommandOp::AcceptReport {
                case_id: "C000001".into(),
                stage: Stage::First,
            }
        );
    }
}

#[test]
fn each_role_sees_and_uses_only_its_own_report_keys() {
    let help = |app: &mut App| {
        key(app, KeyCode::Char('?'));
        let screen = render(app, 120, 40);
        key(app, KeyCode::Char('?'));
        screen
    };
    let mut leader_app = sample_app_as(Lang::En, "leader");
    show(&mut leader_app, 1001, &opened(), "report_opened");
    key(&mut leader_app, KeyCode::Char('R'));
    let screen = help(&mut leader_app);
    assert!(screen.contains("submit the next stage"), "{screen}");
    assert!(!screen.contains("accept the stage"), "{screen}");
    assert!(!screen.contains("district view"), "{screen}");
    assert!(screen.contains("report charts"), "{screen}");
    assert!(key(&mut leader_app, KeyCode::Char('y')).is_empty());
    assert!(key(&mut leader_app, KeyCode::Char('x')).is_empty());
    assert!(leader_app.nav.prompt.is_none());
    assert!(key(&mut leader_app, KeyCode::Char('D')).is_empty());
    assert_eq!(leader_app.nav.screen, Screen::Reports);

    let mut district_app = sample_app_as(Lang::En, "district");
    show(&mut district_app, 1001, &opened(), "report_opened");
    key(&mut district_app, KeyCode::Char('R'));
    let screen = help(&mut district_app);
    assert!(screen.contains("accept the stage"), "{screen}");
    assert!(screen.contains("return the stage"), "{screen}");
    assert!(screen.contains("district view"), "{screen}");
    assert!(!screen.contains("submit the next stage"), "{screen}");
    key(&mut district_app, KeyCode::Char('s'));
    assert!(
        district_app.nav.prompt.is_none(),
        "the district cannot submit"
    );

    // A counselor sees none of them.
    let mut counselor = sample_app_as(Lang::En, "counselor");
    show(&mut counselor, 1001, &opened(), "report_opened");
    key(&mut counselor, KeyCode::Char('R'));
    let screen = help(&mut counselor);
    for word in ["submit the next stage", "accept the stage", "district view"] {
        assert!(!screen.contains(word), "{word}: {screen}");
    }
    assert!(key(&mut counselor, KeyCode::Char('s')).is_empty());
    assert!(counselor.nav.prompt.is_none());
}

#[test]
fn a_report_command_waiting_from_an_earlier_run_is_still_told() {
    // After a restart the console no longer knows the id it sent; the
    // answer travels with the command (Action::Answered).
    let mut app = sample_app_as(Lang::Zh, "district");
    show(&mut app, 1001, &opened(), "report_opened");
    let cmd = Command {
        id: "earlier-7".into(),
        client_at: None,
        terminal: None,
        op: CommandOp::AcceptReport {
            case_id: "C000001".into(),
            stage: Stage::First,
        },
    };
    app.update(refused(
        &cmd,
        "not_submitted",
        "the first report of IR-C000001 is pending, not awaiting review",
    ));
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("该阶段不在待审状态"),
        "{:?}",
        app.notice
    );
    assert_eq!(
        app.report_actions.refusal.as_ref().map(|r| r.0.as_str()),
        Some("C000001")
    );
}
