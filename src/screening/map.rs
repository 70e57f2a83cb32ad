//! From a file's header row to the importer's fields, and from each row to
//! a checked answer sheet. Headers are matched through the built-in
//! templates (Chinese headers such as 学籍号 / 第25题, or codes such as
//! student_id / Q25 / UPI25) and, for a platform's own export, a mapping
//! file. Row problems are collected with their row and column, never with
//! the cell's content: the error file must not carry answers or names.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use serde::Deserialize;

use super::grade::Sheet;
use super::read::{FileError, Table};
use super::rules::Scale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    StudentId,
    School,
    Grade,
    Class,
    Name,
    AnsweredAt,
    Seconds,
    Item(usize),
    Score(usize),
    Extra(usize),
}

const BUILTIN: &[(Field, &[&str])] = &[
    (
        Field::StudentId,
        &[
            "学籍号",
            "全国学籍号",
            "学号",
            "学生编号",
            "学生学号",
            "考号",
            "student_id",
            "studentid",
            "student_no",
        ],
    ),
    (
        Field::School,
        &[
            "学校",
            "学校名称",
            "学校代码",
            "所在学校",
            "school",
            "school_id",
        ],
    ),
    (Field::Grade, &["年级", "grade"]),
    (Field::Class, &["班级", "class"]),
    (Field::Name, &["姓名", "学生姓名", "name"]),
    (
        Field::AnsweredAt,
        &[
            "作答时间",
            "测评时间",
            "提交时间",
            "完成时间",
            "测试时间",
            "测评日期",
            "answered_at",
            "submitted_at",
        ],
    ),
    (
        Field::Seconds,
        &[
            "用时",
            "用时(秒)",
            "用时（秒）",
            "作答时长",
            "作答用时",
            "答题用时",
            "duration",
            "duration_s",
            "seconds",
        ],
    ),
];

/// A platform's own export, described in a small TOML file:
///
/// ```toml
/// [columns]
/// student_id = "学生编号"
/// school = "所在学校"
/// answered_at = "交卷时间"
/// items = "T{n}"          # item columns: {n} is the item number
/// [scores]
/// total = "量表总分"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub scores: BTreeMap<String, String>,
    #[serde(default)]
    pub extras: BTreeMap<String, String>,
}

impl MappingFile {
    pub fn load(path: &Path) -> Result<MappingFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "无法读取映射文件 / cannot read the mapping file {}: {e}",
                path.display()
            )
        })?;
        let m: MappingFile = toml::from_str(&text).map_err(|e| {
            format!(
                "映射文件格式错误 / mapping file {} is not valid: {}",
                path.display(),
                e.message()
            )
        })?;
        for key in m.columns.keys() {
            if field_by_name(key).is_none() && key != "items" {
                return Err(format!(
                    "映射文件中未知列 / mapping file {}: unknown column key `{key}` (student_id, school, grade, class, name, answered_at, seconds, items)",
                    path.display()
                ));
            }
        }
        Ok(m)
    }
}

fn field_by_name(name: &str) -> Option<Field> {
    Some(match name {
        "student_id" => Field::StudentId,
        "school" => Field::School,
        "grade" => Field::Grade,
        "class" => Field::Class,
        "name" => Field::Name,
        "answered_at" => Field::AnsweredAt,
        "seconds" => Field::Seconds,
        _ => return None,
    })
}

fn field_zh(field: Field, scale: &Scale) -> String {
    match field {
        Field::StudentId => "学籍号/student_id".into(),
        Field::School => "学校/school".into(),
        Field::Grade => "年级/grade".into(),
        Field::Class => "班级/class".into(),
        Field::Name => "姓名/name".into(),
        Field::AnsweredAt => "作答时间/answered_at".into(),
        Field::Seconds => "用时/seconds".into(),
        Field::Item(n) => format!("第{n}题/Q{n}"),
        Field::Score(i) => format!("{}/{}", scale.scores[i].label_zh, scale.scores[i].id),
        Field::Extra(i) => format!("{}/{}", scale.extras[i].label_zh, scale.extras[i].id),
    }
}

fn normalise(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// The item number a header names in the built-in templates: 第25题, 25,
/// Q25, q_25, T25, 题25, item25, UPI25, upi_25, PHQ-9_9.
fn item_number(header: &str, scale: &Scale) -> Option<usize> {
    let h = normalise(header);
    let short = super::grade::scale_short(scale).to_lowercase();
    let short_plain = short.replace('-', "");
    let mut rest = h.as_str();
    for prefix in [
        short.as_str(),
        short_plain.as_str(),
        scale.id.as_str(),
        "第",
        "题目",
        "题",
        "item",
        "q",
        "t",
    ] {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r;
            break;
        }
    }
    let rest = rest.trim_start_matches(['_', '-', '.', '#']);
    let rest = rest.strip_suffix('题').unwrap_or(rest);
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) || rest.starts_with('0') {
        return None;
    }
    rest.parse().ok().filter(|&n| n >= 1 && n <= scale.items)
}

/// Which field each column is.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub columns: Vec<Option<Field>>,
    index: HashMap<Field, usize>,
    pub has_items: bool,
    /// Headers as in the file, for naming columns in errors.
    pub headers: Vec<String>,
}

impl Mapping {
    pub fn col(&self, f: Field) -> Option<usize> {
        self.index.get(&f).copied()
    }
}

/// Maps the header row, or says which required columns are missing.
pub fn map_headers(
    table: &Table,
    scale: &Scale,
    custom: Option<&MappingFile>,
) -> Result<Mapping, String> {
    let mut columns = vec![None; table.headers.len()];
    let mut index: HashMap<Field, usize> = HashMap::new();
    let mut problems = Vec::new();
    let custom_items = custom.and_then(|m| m.columns.get("items"));
    for (c, header) in table.headers.iter().enumerate() {
        let h = normalise(header);
        if h.is_empty() {
            continue;
        }
        let mut field = None;
        if let Some(m) = custom {
            field = m
                .columns
                .iter()
                .find(|(k, v)| *k != "items" && normalise(v) == h)
                .and_then(|(k, _)| field_by_name(k))
                .or_else(|| {
                    m.scores
                        .iter()
                        .find(|(_, v)| normalise(v) == h)
                        .and_then(|(k, _)| scale.score_index(k).map(Field::Score))
                })
                .or_else(|| {
                    m.extras
                        .iter()
                        .find(|(_, v)| normalise(v) == h)
                        .and_then(|(k, _)| {
                            scale
                                .extras
                                .iter()
                                .position(|e| &e.id == k)
                                .map(Field::Extra)
                        })
                });
            if field.is_none()
                && let Some(pattern) = custom_items
                && let Some((pre, post)) = pattern.split_once("{n}")
            {
                let (pre, post) = (normalise(pre), normalise(post));
                if let Some(mid) = h
                    .strip_prefix(pre.as_str())
                    .and_then(|r| r.strip_suffix(post.as_str()))
                    && let Ok(n) = mid.parse::<usize>()
                    && (1..=scale.items).contains(&n)
                {
                    field = Some(Field::Item(n));
                }
            }
        }
        if field.is_none() {
            field = BUILTIN
                .iter()
                .find(|(_, names)| names.iter().any(|n| normalise(n) == h))
                .map(|(f, _)| *f)
                .filter(|f| custom.is_none_or(|m| !m.columns.contains_key(field_name(*f))));
        }
        if field.is_none() {
            field = scale
                .scores
                .iter()
                .position(|s| {
                    s.headers
                        .iter()
                        .chain([&s.label_zh, &s.id])
                        .any(|n| normalise(n) == h)
                })
                .map(Field::Score);
        }
        if field.is_none() {
            field = scale
                .extras
                .iter()
                .position(|e| {
                    e.headers
                        .iter()
                        .chain([&e.label_zh, &e.id])
                        .any(|n| normalise(n) == h)
                })
                .map(Field::Extra);
        }
        if field.is_none() && custom_items.is_none() {
            field = item_number(header, scale).map(Field::Item);
        }
        if let Some(f) = field {
            if let Some(&first) = index.get(&f) {
                problems.push(format!(
                    "第{}列与第{}列都对应 {} / columns {} and {} both map to {}",
                    first + 1,
                    c + 1,
                    field_zh(f, scale),
                    first + 1,
                    c + 1,
                    field_zh(f, scale)
                ));
                continue;
            }
            index.insert(f, c);
            columns[c] = Some(f);
        }
    }
    let mut missing: Vec<String> = [Field::StudentId, Field::School]
        .into_iter()
        .filter(|f| !index.contains_key(f))
        .map(|f| field_zh(f, scale))
        .collect();
    let items_present = (1..=scale.items)
        .filter(|n| index.contains_key(&Field::Item(*n)))
        .count();
    if items_present > 0 && items_present < scale.items {
        let absent: Vec<String> = (1..=scale.items)
            .filter(|n| !index.contains_key(&Field::Item(*n)))
            .map(|n| n.to_string())
            .collect();
        missing.push(format!(
            "第{}题 / items {}",
            absent.join("、"),
            absent.join(", ")
        ));
    }
    let any_score = index.keys().any(|f| matches!(f, Field::Score(_)));
    if items_present == 0 && !any_score {
        missing.push(format!(
            "{}的题目作答（第1题…第{}题）或分数列 / the {} item answers (Q1..Q{}) or score columns",
            scale.name_zh, scale.items, scale.name_en, scale.items
        ));
    }
    if !missing.is_empty() {
        problems.insert(
            0,
            format!(
                "表头与 {} 模板不符，缺少列 / the header matches no {} template; missing columns: {}",
                scale.id,
                scale.id,
                missing.join("; ")
            ),
        );
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(Mapping {
        columns,
        index,
        has_items: items_present == scale.items,
        headers: table.headers.clone(),
    })
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::StudentId => "student_id",
        Field::School => "school",
        Field::Grade => "grade",
        Field::Class => "class",
        Field::Name => "name",
        Field::AnsweredAt => "answered_at",
        Field::Seconds => "seconds",
        _ => "",
    }
}

/// A row that passed every check.
#[derive(Debug, Clone)]
pub struct StudentRow {
    pub row: String,
    pub student_id: String,
    pub school: String,
    pub grade: Option<String>,
    pub class: Option<String>,
    /// Goes into the alert's `student.name` and nowhere else.
    pub name: Option<String>,
    pub answered_at: DateTime<FixedOffset>,
    pub sheet: Sheet,
}

/// One bad row, for the error file. Carries the student id (so the school
/// can find the sheet) but never a name or an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: String,
    pub column: String,
    pub student_id: String,
    pub code: &'static str,
    pub zh: String,
    pub en: String,
}

/// What a plan allows, for row checks.
pub struct RowRules<'a> {
    pub schools: &'a [String],
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Offset of times written without one (China: +08:00).
    pub offset: FixedOffset,
}

/// A student id as exported: 学籍号 (G/J/L + 18 digits), a university 学号,
/// or a platform code: 1-32 letters, digits, `-` or `_`.
pub fn valid_student_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn parse_time(text: &str, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let t = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Some(t);
    }
    let t = t.replace('/', "-").replace('T', " ");
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&t, fmt) {
            return offset.from_local_datetime(&n).single();
        }
    }
    NaiveDate::parse_from_str(&t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|n| offset.from_local_datetime(&n).single())
}

/// Maps and checks every data row, reading them from `table` as it goes
/// (a CSV is parsed a record at a time, so the file's rows are never all
/// held as text). Returns the good rows, the bad ones, and how many rows
/// were read; fails only when the file itself turns out malformed.
pub fn parse_rows(
    table: &mut Table,
    mapping: &Mapping,
    scale: &Scale,
    rules: &RowRules<'_>,
) -> Result<(Vec<StudentRow>, Vec<RowError>, usize), FileError> {
    let mut good = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut read = 0usize;
    let schools: std::collections::HashSet<&str> =
        rules.schools.iter().map(String::as_str).collect();
    let item_cols: Vec<usize> = if mapping.has_items {
        (1..=scale.items)
            .map(|n| mapping.col(Field::Item(n)).expect("all items mapped"))
            .collect()
    } else {
        Vec::new()
    };
    let header = |c: usize| mapping.headers.get(c).cloned().unwrap_or_default();
    'rows: while let Some(row) = table.next_row() {
        let row = row?;
        read += 1;
        let cell = |c: Option<usize>| {
            c.and_then(|c| row.cells.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let id_col = mapping
            .col(Field::StudentId)
            .expect("checked in map_headers");
        let student_id = cell(Some(id_col)).unwrap_or("").to_string();
        let mut err = |column: String, code: &'static str, zh: String, en: String| {
            errors.push(RowError {
                row: row.number.clone(),
                column,
                student_id: if valid_student_id(&student_id) {
                    student_id.clone()
                } else {
                    String::new()
                },
                code,
                zh,
                en,
            });
        };
        if student_id.is_empty() {
            err(
                header(id_col),
                "missing_student_id",
                "缺少学籍号".into(),
                "student id is missing".into(),
            );
            continue;
        }
        if !valid_student_id(&student_id) {
            err(
                header(id_col),
                "bad_student_id",
                "学籍号格式不正确（应为1–32位字母、数字、-或_）".into(),
                "malformed student id (1-32 letters, digits, - or _)".into(),
            );
            continue;
        }
        if let Some(first) = seen.get(&student_id) {
            err(
                header(id_col),
                "duplicate_row",
                format!("与第{first}行重复（同一学生）"),
                format!("duplicate of row {first} (same student)"),
            );
            continue;
        }
        seen.insert(student_id.clone(), row.number.clone());
        let school_col = mapping.col(Field::School).expect("checked in map_headers");
        let Some(school) = cell(Some(school_col)) else {
            err(
                header(school_col),
                "missing_school",
                "缺少学校".into(),
                "school is missing".into(),
            );
            continue;
        };
        if !schools.is_empty() && !schools.contains(school) {
            err(
                header(school_col),
                "unknown_school",
                "学校不在本次筛查计划内".into(),
                "school is not in this screening plan".into(),
            );
            continue;
        }
        let answered_at = match mapping.col(Field::AnsweredAt) {
            Some(c) => match cell(Some(c)).map(|t| parse_time(t, rules.offset)) {
                Some(Some(t)) => t,
                Some(None) => {
                    err(
                        header(c),
                        "bad_time",
                        "作答时间无法识别（应为 YYYY-MM-DD HH:MM:SS）".into(),
                        "answered-at is not a date and time (YYYY-MM-DD HH:MM:SS)".into(),
                    );
                    continue;
                }
                None => {
                    err(
                        header(c),
                        "missing_time",
                        "缺少作答时间".into(),
                        "answered-at is missing".into(),
                    );
                    continue;
                }
            },
            // No time column: the plan's last day, so a re-import builds the
            // same alert.
            None => rules
                .offset
                .from_local_datetime(&rules.to.and_hms_opt(0, 0, 0).expect("midnight"))
                .single()
                .expect("fixed offset"),
        };
        let day = answered_at.date_naive();
        if day < rules.from || day > rules.to {
            err(
                header(mapping.col(Field::AnsweredAt).unwrap_or(0)),
                "outside_plan",
                "作答日期不在筛查计划起止日期内".into(),
                "answered outside the plan's dates".into(),
            );
            continue;
        }
        let seconds = match mapping.col(Field::Seconds) {
            Some(c) => match cell(Some(c)) {
                None => None,
                Some(t) => match t.parse::<f64>() {
                    Ok(v) if (0.0..1e7).contains(&v) => Some(v as u32),
                    _ => {
                        err(
                            header(c),
                            "bad_seconds",
                            "用时应为秒数".into(),
                            "duration must be a number of seconds".into(),
                        );
                        continue;
                    }
                },
            },
            None => None,
        };
        let answers = if mapping.has_items {
            let mut answers = Vec::with_capacity(scale.items);
            for (i, &c) in item_cols.iter().enumerate() {
                let n = i + 1;
                match cell(Some(c)) {
                    None => {
                        err(
                            header(c),
                            "missing_answer",
                            format!("第{n}题未作答"),
                            format!("item {n} has no answer"),
                        );
                        continue 'rows;
                    }
                    Some(t) => match answer_value(t, scale) {
                        Some(v) if v >= scale.min && v <= scale.max => answers.push(v),
                        Some(_) => {
                            err(
                                header(c),
                                "answer_out_of_range",
                                format!("第{n}题答案超出范围（{}–{}）", scale.min, scale.max),
                                format!(
                                    "item {n} answer is out of range ({}-{})",
                                    scale.min, scale.max
                                ),
                            );
                            continue 'rows;
                        }
                        None => {
                            err(
                                header(c),
                                "bad_answer",
                                format!("第{n}题答案无法识别"),
                                format!("item {n} answer is not a recognised value"),
                            );
                            continue 'rows;
                        }
                    },
                }
            }
            Some(answers)
        } else {
            None
        };
        let mut given_scores = vec![None; scale.scores.len()];
        if answers.is_none() {
            for (i, slot) in given_scores.iter_mut().enumerate() {
                if let Some(c) = mapping.col(Field::Score(i))
                    && let Some(t) = cell(Some(c))
                {
                    match t.parse::<f64>() {
                        Ok(v) if v.is_finite() && v >= 0.0 => *slot = Some(v),
                        _ => {
                            err(
                                header(c),
                                "bad_score",
                                format!("{}不是有效分数", scale.scores[i].label_zh),
                                format!("{} is not a valid score", scale.scores[i].label_en),
                            );
                            continue 'rows;
                        }
                    }
                }
            }
        }
        let mut extras = vec![None; scale.extras.len()];
        for (i, slot) in extras.iter_mut().enumerate() {
            if let Some(c) = mapping.col(Field::Extra(i))
                && let Some(t) = cell(Some(c))
            {
                match answer_value(t, scale) {
                    Some(v) => *slot = Some(v),
                    None => {
                        err(
                            header(c),
                            "bad_answer",
                            format!("{}答案无法识别", scale.extras[i].label_zh),
                            format!("{} is not a recognised value", scale.extras[i].label_en),
                        );
                        continue 'rows;
                    }
                }
            }
        }
        good.push(StudentRow {
            row: row.number.clone(),
            student_id,
            school: school.to_string(),
            grade: cell(mapping.col(Field::Grade)).map(str::to_string),
            class: cell(mapping.col(Field::Class)).map(str::to_string),
            name: cell(mapping.col(Field::Name)).map(str::to_string),
            answered_at,
            sheet: Sheet {
                answers,
                given_scores,
                extras,
                seconds,
            },
        });
    }
    Ok((good, errors, read))
}

fn answer_value(text: &str, scale: &Scale) -> Option<u8> {
    if let Ok(v) = text.parse::<u8>() {
        return Some(v);
    }
    if let Ok(f) = text.parse::<f64>()
        && f.fract() == 0.0
        && (0.0..=255.0).contains(&f)
    {
        return Some(f as u8);
    }
    scale.answer_text.get(text).copied().or_else(|| {
        scale
            .answer_text
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(text))
            .map(|(_, v)| *v)
    })
}
