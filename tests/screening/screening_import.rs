//! `screening import` through the real binary: real files (UTF-8 with a
//! BOM, GBK, and an XLSX written here), a real SQLite file, and, for the
//! end-to-end tests, a real relay on a real socket taking the batch
//! endpoint. Expected grades come from the library's grader (golden-tested
//! on its own in screening_golden.rs), so these tests check the file,
//! mapping, storage and sending around it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crisisdesk::screening::grade::{Outcome, Sheet, grade};
use crisisdesk::screening::rules::{self, Flag};

const BIN: &str = env!("CARGO_BIN_EXE_crisisdesk");
const SCHOOLS: [&str; 3] = ["第一中学", "实验中学", "北城小学"];

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run crisisdesk")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed:\n{}", text(&out));
    text(&out)
}

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    url: String,
}

fn db_with_plan(plan: &str) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let url = format!("sqlite:{}", path.join("cd.db").display());
    ok(&[
        "screening",
        "plan",
        "create",
        "--db",
        &url,
        "--id",
        plan,
        "--name",
        "2026秋季新生普查",
        "--scale",
        "upi",
        "--schools",
        &SCHOOLS.join(","),
        "--from",
        "2026-09-01",
        "--to",
        "2026-09-30",
    ]);
    Db {
        _dir: dir,
        path,
        url,
    }
}

/// One synthetic student: a pattern of answers that reaches every UPI
/// class, item 25 included.
fn answers(i: usize) -> Vec<u8> {
    let mut a = vec![0u8; 60];
    let plain: Vec<usize> = (1..=60)
        .filter(|n| ![5, 8, 16, 20, 25, 26, 35, 50].contains(n))
        .collect();
    let yes = if i.is_multiple_of(7) {
        26
    } else if i.is_multiple_of(11) {
        21
    } else {
        i % 5
    };
    for &n in plain.iter().take(yes) {
        a[n - 1] = 1;
    }
    if i.is_multiple_of(50) {
        a[24] = 1;
    }
    if i.is_multiple_of(13) {
        a[7] = 1; // item 8: Class II
    }
    a
}

fn student_id(i: usize) -> String {
    format!("G{:018}", 110_101_200_801_010_000u64 + i as u64)
}

/// What a bad row looks like, for one in twenty rows (5%).
#[derive(Clone, Copy, PartialEq)]
enum Bad {
    No,
    Id,
    Range,
    Missing,
    School,
    Duplicate,
}

fn bad_kind(i: usize) -> Bad {
    if i % 20 != 3 {
        return Bad::No;
    }
    [
        Bad::Id,
        Bad::Range,
        Bad::Missing,
        Bad::School,
        Bad::Duplicate,
    ][(i / 20) % 5]
}

/// The export's rows as cell text: 学籍号, 姓名, 学校, 年级, 班级, 作答时间,
/// 用时, 第1题..第60题 (the Chinese template).
fn rows(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = ["学籍号", "姓名", "学校", "年级", "班级", "作答时间", "用时"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend((1..=60).map(|q| format!("第{q}题")));
    let mut out = Vec::new();
    for i in 1..=n {
        let a = answers(i);
        let mut id = student_id(i);
        let mut school = SCHOOLS[i % 3].to_string();
        let mut cells: Vec<String> = a
            .iter()
            .map(|v| if *v == 1 { "是".into() } else { "否".into() })
            .collect();
        match bad_kind(i) {
            Bad::No => {}
            Bad::Id => id = "12 34!".into(),
            Bad::Range => cells[10] = "2".into(),
            Bad::Missing => cells[40] = String::new(),
            Bad::School => school = "外校".into(),
            Bad::Duplicate => id = student_id(i - 1),
        }
        let mut row = vec![
            id,
            format!("张同学{i}"),
            school,
            "高一".into(),
            format!("{}班", i % 9 + 1),
            format!("2026-09-{:02} 10:{:02}:00", i % 28 + 1, i % 60),
            "600".into(),
        ];
        row.extend(cells);
        out.push(row);
    }
    (header, out)
}

fn csv_text(n: usize) -> String {
    let (h, rows) = rows(n);
    let mut s = h.join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&r.join(","));
        s.push('\n');
    }
    s
}

fn write_utf8_bom(path: &Path, n: usize) {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(csv_text(n).as_bytes());
    std::fs::write(path, bytes).unwrap();
}

fn write_gbk(path: &Path, n: usize) {
    let text = csv_text(n);
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "really GBK, not UTF-8"
    );
    std::fs::write(path, &bytes).unwrap();
}

fn write_xlsx(path: &Path, n: usize) {
    let (h, rows) = rows(n);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, v) in h.iter().enumerate() {
        sheet.write_string(0, c as u16, v).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            // Answers as numbers, as most platforms export them.
            match v.as_str() {
                "是" => sheet.write_number(r, c, 1.0).map(|_| ()),
                "否" => sheet.write_number(r, c, 0.0).map(|_| ()),
                "" => Ok(()),
                _ if c == 6 => sheet
                    .write_number(r, c, v.parse::<f64>().unwrap())
                    .map(|_| ()),
                _ => sheet.write_string(r, c, v).map(|_| ()),
            }
            .unwrap();
        }
    }
    book.save(path).unwrap();
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    valid: usize,
    bad: usize,
    general: usize,
    key: usize,
    high: usize,
}

fn expected(n: usize) -> Expected {
    let scale = rules::builtin().unwrap().scales["upi"].clone();
    let mut e = Expected::default();
    for i in 1..=n {
        if bad_kind(i) != Bad::No {
            e.bad += 1;
            continue;
        }
        let sheet = Sheet {
            answers: Some(answers(i)),
            given_scores: vec![],
            extras: vec![None],
            seconds: Some(600),
        };
        match grade(&scale, &sheet) {
            Outcome::Graded(g) => {
                e.valid += 1;
                match g.flag {
                    Flag::General => e.general += 1,
                    Flag::Key => e.key += 1,
                    Flag::High => e.high += 1,
                    Flag::None => {}
                }
            }
            Outcome::Invalid(_) => {}
        }
    }
    e
}

fn summary_has(out: &str, e: &Expected, n: usize) {
    assert!(out.contains(&format!("行数 / rows: {n} ")), "{out}");
    assert!(
        out.contains(&format!("有效 / valid: {} ", e.valid)),
        "{out}"
    );
    assert!(
        out.contains(&format!("错误行 / bad rows: {}", e.bad)),
        "{out}"
    );
    assert!(out.contains(&format!("高危关注 high {} ", e.high)), "{out}");
    assert!(out.contains(&format!("重点关注 key {} ", e.key)), "{out}");
    assert!(
        out.contains(&format!("一般关注 general {}\n", e.general)),
        "{out}"
    );
}

fn no_names(what: &str, text: &str) {
    assert!(
        !text.contains("张同学"),
        "a student's name leaked into {what}:\n{text}"
    );
}

#[test]
fn dry_run_grades_counts_and_writes_the_error_file_without_names_or_answers() {
    let db = db_with_plan("p1");
    let file = db.path.join("upi.csv");
    write_utf8_bom(&file, 400);
    let errors = db.path.join("errors.csv");
    let out = ok(&[
        "screening",
        "import",
        file.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
        "--dry-run",
        "--errors",
        errors.to_str().unwrap(),
    ]);
    let e = expected(400);
    assert_eq!(e.bad, 20, "5% bad rows");
    assert!(e.high > 0 && e.key > 0 && e.general > 0);
    summary_has(&out, &e, 400);
    assert!(out.contains("UTF-8 (BOM)"), "{out}");
    assert!(out.contains("dry run"), "{out}");
    no_names("the summary", &out);
    let err_text = std::fs::read_to_string(&errors).unwrap();
    no_names("the error file", &err_text);
    assert!(
        !err_text.contains(",是") && !err_text.contains(",否"),
        "answers in the error file:\n{err_text}"
    );
    let lines: Vec<&str> = err_text.lines().collect();
    assert_eq!(lines.len(), 1 + 20, "{err_text}");
    for (code, zh) in [
        ("bad_student_id", "学籍号格式不正确"),
        ("answer_out_of_range", "第11题答案超出范围"),
        ("missing_answer", "第41题未作答"),
        ("unknown_school", "学校不在本次筛查计划内"),
        ("duplicate_row", "与第"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(code) && l.contains(zh)),
            "no {code} line:\n{err_text}"
        );
    }
    // Row 5 of the file is student 4... the 3rd student (i = 3) is the first
    // bad one and sits on file row 4 (the header is row 1).
    assert!(
        lines[1].starts_with("4,学籍号,,bad_student_id,"),
        "{}",
        lines[1]
    );
    // A dry run stores nothing.
    let list = ok(&["screening", "plan", "show", "p1", "--db", &db.url]);
    assert_eq!(count_line(&list), vec![0; 8], "{list}");
}

#[test]
fn gbk_csv_and_xlsx_read_the_same_as_utf8() {
    let db = db_with_plan("p1");
    let e = expected(300);
    for (name, write) in [
        ("gbk.csv", write_gbk as fn(&Path, usize)),
        ("upi.xlsx", write_xlsx),
    ] {
        let file = db.path.join(name);
        write(&file, 300);
        let out = ok(&[
            "screening",
            "import",
            file.to_str().unwrap(),
            "--plan",
            "p1",
            "--db",
            &db.url,
            "--dry-run",
        ]);
        summary_has(&out, &e, 300);
        assert!(
            out.contains(if name.ends_with("csv") {
                "GB18030"
            } else {
                "XLSX"
            }),
            "{out}"
        );
    }
}

#[test]
fn file_level_failures_come_before_anything_is_stored() {
    let db = db_with_plan("p1");
    // Missing 学籍号 and item 25: both named.
    let file = db.path.join("bad_header.csv");
    let text = csv_text(20)
        .replacen("学籍号", "编号", 1)
        .replacen(",第25题,", ",第二十五题,", 1);
    std::fs::write(&file, text).unwrap();
    let out = run(&[
        "screening",
        "import",
        file.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let t = text_of(&out);
    assert!(
        t.contains("学籍号/student_id") && t.contains("第25题 / items 25"),
        "{t}"
    );
    // Unknown plan.
    let good = db.path.join("good.csv");
    write_utf8_bom(&good, 20);
    let out = run(&[
        "screening",
        "import",
        good.to_str().unwrap(),
        "--plan",
        "nope",
        "--db",
        &db.url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out).contains("no screening plan `nope`"),
        "{}",
        text_of(&out)
    );
    // Neither UTF-8 nor GB18030.
    let junk = db.path.join("junk.csv");
    std::fs::write(&junk, [0xff, 0xfe, 0x00, 0x80, 0x81, 0xff, 0x0a]).unwrap();
    let out = run(&[
        "screening",
        "import",
        junk.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out).contains("neither UTF-8 nor GBK/GB18030"),
        "{}",
        text_of(&out)
    );
    // A rule directory that does not check.
    let rules_dir = db.path.join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    for f in ["upi.toml", "risk.toml"] {
        std::fs::copy(Path::new("rules").join(f), rules_dir.join(f)).unwrap();
    }
    let upi = std::fs::read_to_string(rules_dir.join("upi.toml"))
        .unwrap()
        .replace("level = \"key\"", "level = \"urgent\"");
    std::fs::write(rules_dir.join("upi.toml"), upi).unwrap();
    let out = run(&[
        "screening",
        "import",
        good.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
        "--rules",
        rules_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out).contains("nothing was sent"),
        "{}",
        text_of(&out)
    );
    let show = ok(&["screening", "plan", "show", "p1", "--db", &db.url]);
    assert_eq!(count_line(&show), vec![0; 8], "{show}");
}

fn text_of(out: &Output) -> String {
    text(out)
}

#[test]
fn rules_check_names_file_and_line() {
    let out = ok(&["rules", "check", "rules"]);
    assert!(out.contains("all rule files are valid"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    for f in ["upi.toml", "phq9.toml", "risk.toml"] {
        std::fs::copy(Path::new("rules").join(f), dir.path().join(f)).unwrap();
    }
    let upi = std::fs::read_to_string(dir.path().join("upi.toml")).unwrap();
    let line_of = |needle: &str| upi.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (items_line, band_line) = (
        line_of("items = \"1-4, 6-19"),
        line_of("id = \"class2_total\""),
    );
    let broken = upi
        .replace("items = \"1-4, 6-19", "items = \"1-5, 6-19")
        .replace(
            "at_least = 20\nlevel = \"general\"",
            "at_least = 26\nlevel = \"general\"",
        );
    std::fs::write(dir.path().join("upi.toml"), broken).unwrap();
    std::fs::write(
        dir.path().join("phq9.toml"),
        "[scale]\nid = \"phq9\"\nversion = 0\n",
    )
    .unwrap();
    let out = run(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains(&format!("upi.toml:{items_line}: item 5 is unscored")),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "upi.toml:{band_line}: band `class2_total` can never match"
        )),
        "{t}"
    );
    assert!(t.contains("phq9.toml:1: missing field"), "{t}");
}

// ------------------------------------------------------------ end to end

struct Relay {
    child: Child,
    addr: SocketAddr,
}

impl Relay {
    fn start(db: &str) -> Relay {
        let mut child = Command::new(BIN)
            .args([
                "relay",
                "--listen",
                "127.0.0.1:0",
                "--db",
                db,
                "--rate-limit",
                "10000",
                "--rate-burst",
                "10000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        Relay { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(db: &str) -> String {
    ok(&[
        "token",
        "create",
        "--db",
        db,
        "--name",
        "screening-platform",
        "--role",
        "producer",
    ])
    .trim()
    .to_string()
}

fn count_line(show: &str) -> Vec<i64> {
    show.lines()
        .find(|l| l.starts_with("合计/total"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

fn import_via_relay(db: &Db, relay: &Relay, token: &str, file: &Path) -> String {
    ok(&[
        "screening",
        "import",
        file.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
        "--relay",
        &relay.url(),
        "--token",
        token,
    ])
}

#[test]
fn end_to_end_utf8_gbk_and_xlsx_into_a_real_relay_and_reimport_creates_nothing() {
    let e = expected(400);
    let flagged = e.general + e.key + e.high;
    for (name, write) in [
        ("upi.csv", write_utf8_bom as fn(&Path, usize)),
        ("gbk.csv", write_gbk),
        ("upi.xlsx", write_xlsx),
    ] {
        let db = db_with_plan("p1");
        let tok = token(&db.url);
        let relay = Relay::start(&db.url);
        let file = db.path.join(name);
        write(&file, 400);
        let out = import_via_relay(&db, &relay, &tok, &file);
        summary_has(&out, &e, 400);
        assert!(
            out.contains(&format!("新建 created {flagged} ")),
            "{name}: {out}"
        );
        no_names("the import output", &out);
        let show = ok(&["screening", "plan", "show", "p1", "--db", &db.url]);
        // screened valid invalid general key high imminent sent
        let c = count_line(&show);
        assert_eq!(c[0] as usize, e.valid, "{show}");
        assert_eq!(
            (c[3] as usize, c[4] as usize, c[5] as usize),
            (e.general, e.key, e.high),
            "{show}"
        );
        assert_eq!(c[7] as usize, flagged, "{show}");
        // The same file again: nothing new, nothing re-sent.
        let again = import_via_relay(&db, &relay, &tok, &file);
        assert!(again.contains("新建 created 0 "), "{again}");
        assert!(
            again.contains(&format!("此前已确认 confirmed before {flagged}")),
            "{again}"
        );
        assert!(
            again.contains(&format!("未变 unchanged {}", e.valid)),
            "{again}"
        );
    }
}

#[test]
fn an_import_cut_off_by_a_relay_restart_completes_on_rerun_without_duplicates() {
    // Enough batches that some are still unsent when the relay dies, with
    // three in flight at a time.
    let n = 20_000;
    let e = expected(n);
    let flagged = e.general + e.key + e.high;
    assert!(flagged > 5000, "several batches: {flagged}");
    let db = db_with_plan("p1");
    let tok = token(&db.url);
    let file = db.path.join("upi.csv");
    write_utf8_bom(&file, n);
    // No relay listening: the results are graded and stored, nothing is
    // confirmed, and the importer says to re-run.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = run(&[
        "screening",
        "import",
        file.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
        "--relay",
        &format!("http://{dead}"),
        "--token",
        &tok,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("re-run the same command"),
        "{}",
        text(&out)
    );
    // A relay that takes the first batch and is then killed.
    let relay = Relay::start(&db.url);
    let url = relay.url();
    let mut child = Command::new(BIN)
        .args([
            "screening",
            "import",
            file.to_str().unwrap(),
            "--plan",
            "p1",
            "--db",
            &db.url,
            "--relay",
            &url,
            "--token",
            &tok,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut relay = relay;
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        // The first answered batch (sending runs beside grading).
        if line.contains("/ sent ") {
            let _ = relay.child.kill();
            let _ = relay.child.wait();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the importer must notice the relay went away"
    );
    // Run again against a restarted relay: completes, no duplicates.
    let relay = Relay::start(&db.url);
    let out = import_via_relay(&db, &relay, &tok, &file);
    // The batches confirmed before the relay died are skipped; batches in
    // flight may have been stored without the importer hearing back: they
    // come back as duplicates, never twice; the rest is created now.
    let number_after = |label: &str| -> usize {
        let at = out
            .find(label)
            .unwrap_or_else(|| panic!("no `{label}` in {out}"));
        out[at + label.len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after `{label}` in {out}"))
    };
    let (confirmed, created, duplicate) = (
        number_after("此前已确认 confirmed before "),
        number_after("新建 created "),
        number_after("已存在 duplicate "),
    );
    // Batches follow the graded slices (up to 1,000 alerts each): some
    // were confirmed before the kill.
    assert!(confirmed > 0, "{out}");
    assert!(created > 0, "the cut left alerts unsent: {out}");
    assert_eq!(confirmed + created + duplicate, flagged, "{out}");
    assert!(duplicate <= 3000, "at most the batches in flight: {out}");
    let show = ok(&["screening", "plan", "show", "p1", "--db", &db.url]);
    assert_eq!(count_line(&show)[7] as usize, flagged, "{show}");
    let again = import_via_relay(&db, &relay, &tok, &file);
    assert!(
        again.contains("新建 created 0 · 已存在 duplicate 0"),
        "{again}"
    );
}

/// `rules explain`: a student's graded result, signal by signal, with the
/// rule versions; the name never; an unknown student named as such.
#[test]
fn rules_explain_shows_each_signal_and_rule_version_and_no_name() {
    let db = db_with_plan("p1");
    let file = db.path.join("upi.csv");
    write_utf8_bom(&file, 60);
    ok(&[
        "screening",
        "import",
        file.to_str().unwrap(),
        "--plan",
        "p1",
        "--db",
        &db.url,
        "--quiet",
    ]);
    // Student 50 answered item 25 (想轻生): an item trigger, Class I.
    let id = student_id(50);
    let zh = ok(&["rules", "explain", &id, "--db", &db.url]);
    assert!(zh.contains(&format!("学生 {id}")), "{zh}");
    assert!(zh.contains("计划 p1"), "{zh}");
    assert!(
        zh.contains("量表 upi v1") && zh.contains("风险规则 risk v1"),
        "{zh}"
    );
    assert!(
        zh.contains("UPI 第25题（想轻生）"),
        "the trigger is named: {zh}"
    );
    let en = ok(&["rules", "explain", &id, "--db", &db.url, "--lang", "en"]);
    assert!(en.contains(&format!("student {id}")), "{en}");
    assert!(
        en.contains("scale upi v1") && en.contains("risk rule risk v1"),
        "{en}"
    );
    for text in [&zh, &en] {
        assert!(!text.contains("张同学"), "no name: {text}");
    }
    // A student with no result: exit 1, and the id is named.
    let out = run(&["rules", "explain", "G-NOBODY", "--db", &db.url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no screening results for student `G-NOBODY`"),
        "{}",
        text(&out)
    );
}
