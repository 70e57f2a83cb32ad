//! An incident report as a document the bureau can file: JSON (the report
//! as stored, for systems), one self-contained HTML page (prints on A4),
//! and DOCX (WordprocessingML written by hand into a zip: the bureau's
//! staff open it in Word or WPS, fill in a signature, file it). A DOCX
//! needs only three small XML parts, so no document crate is pulled in;
//! the `zip` crate is the one `rust_xlsxwriter` already uses.

use std::fmt::Write as _;
use std::io::Write as _;

use chrono::FixedOffset;
use serde::Serialize;

use super::{IncidentReport, Rules, StageStatus};
use crate::review::local;
use crate::text::{inert, inert_block};
use crate::vocabulary::ZH;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Html,
    Docx,
}

/// The rows every format shows, built once: (label, value). Text that
/// came from alerts or a leader is made inert here.
pub struct Document {
    pub title: String,
    pub drill: bool,
    pub fields: Vec<(&'static str, String)>,
    pub stages: Vec<[String; 6]>,
    pub actions: Vec<[String; 4]>,
    pub narrative: Option<String>,
}

pub const STAGE_HEADERS: [&str; 6] = [
    "阶段 Stage",
    "时限 Due",
    "状态 Status",
    "上报时间 Submitted",
    "接收时间 Accepted",
    "退回原因 Returns",
];
pub const ACTION_HEADERS: [&str; 4] = ["时间 Time", "角色 Role", "措施 Action", "结果 Result"];

pub fn document(report: &IncidentReport, rules: &Rules, offset: FixedOffset) -> Document {
    let f = &report.form;
    let rule_titles: Vec<String> = report
        .rules
        .iter()
        .map(|id| {
            rules
                .get(id)
                .map_or_else(|| id.clone(), |r| r.title.zh.clone())
        })
        .collect();
    let opt = |v: &Option<String>| v.as_deref().map(inert).unwrap_or_else(|| "—".into());
    let mut fields = vec![
        ("报告编号 Report", report.id.clone()),
        ("案例编号 Case", report.case_id.clone()),
        ("报告事由 Rules", rule_titles.join("；")),
        ("事件时间 Incident time", local(f.incident_at, offset)),
        ("学校 School", opt(&f.school)),
        ("年级 Grade", opt(&f.grade)),
        ("类别 Category", ZH.category(f.category).to_string()),
        (
            "级别 Level",
            format!(
                "{}{}",
                ZH.level(f.level),
                if f.imminent { "（紧迫）" } else { "" }
            ),
        ),
        (
            "处置状态 Status",
            match f.outcome {
                Some(o) => format!("{}：{}", ZH.status(f.case_status), ZH.outcome(o)),
                None => ZH.status(f.case_status).to_string(),
            },
        ),
        (
            "外部介入 Emergency services",
            if f.emergency_calls.is_empty() {
                "无".into()
            } else {
                f.emergency_calls.join("、")
            },
        ),
    ];
    if let Some(name) = &f.student_name {
        fields.push(("学生姓名 Name (rule requires it)", inert(name)));
    }
    let stages = report
        .stages
        .iter()
        .map(|s| {
            let basis = if s.basis == "default" {
                "默认时限".to_string()
            } else {
                rules.source_name(&s.basis).to_string()
            };
            [
                format!("{} {}", s.stage.label_zh(), s.stage.label_en()),
                format!("{}（{}）", local(s.due, offset), basis),
                format!(
                    "{}{}",
                    s.status.label_zh(),
                    if s.late { "，逾期 late" } else { "" }
                ),
                s.submitted_at
                    .map(|t| local(t, offset))
                    .unwrap_or_else(|| "—".into()),
                s.accepted_at
                    .map(|t| local(t, offset))
                    .unwrap_or_else(|| "—".into()),
                s.returns
                    .iter()
                    .map(|r| format!("{}：{}", local(r.at, offset), inert(&r.reason)))
                    .collect::<Vec<_>>()
                    .join("；"),
            ]
        })
        .collect();
    let actions = f
        .actions
        .iter()
        .map(|a| {
            [
                local(a.at, offset),
                ZH.role(a.by).to_string(),
                inert(&a.title_zh),
                a.how.clone(),
            ]
        })
        .collect();
    Document {
        title: format!("学生心理危机事件信息报告 Incident report {}", report.id),
        drill: report.drill,
        fields,
        stages,
        actions,
        narrative: f.narrative.as_deref().map(inert_block),
    }
}

#[derive(Serialize)]
struct JsonExport<'a> {
    format: &'static str,
    report: &'a IncidentReport,
    rule_titles: Vec<(&'a str, &'a str)>,
    pending_stages: Vec<&'static str>,
}

pub fn to_json(report: &IncidentReport, rules: &Rules) -> String {
    let doc = JsonExport {
        format: "crisisdesk.incident_report.v1",
        report,
        rule_titles: report
            .rules
            .iter()
            .filter_map(|id| rules.get(id).map(|r| (r.id.as_str(), r.title.zh.as_str())))
            .collect(),
        pending_stages: report
            .stages
            .iter()
            .filter(|s| s.status != StageStatus::Accepted)
            .map(|s| s.stage.as_str())
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Print CSS shared by every HTML page this crate writes: A4 with margins,
/// tables that wrap instead of overflowing, rows that do not split.
pub const PRINT_CSS: &str = "@page{size:A4;margin:18mm 15mm}\
@media print{body{margin:0}h2{break-after:avoid}tr,svg,figure{break-inside:avoid}}\
body{font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:2em;max-width:180mm}\
table{border-collapse:collapse;width:100%;table-layout:fixed}\
td,th{border:1px solid #999;padding:.25em .4em;vertical-align:top;overflow-wrap:anywhere;word-break:break-word}\
th{background:#eee;text-align:left}\
.drill{border:2px solid #b00;color:#b00;padding:.3em;font-weight:bold}";

pub fn to_html(doc: &Document) -> String {
    let narrative = doc.narrative.as_deref().unwrap_or("—");
    let body = maud::html! {
        h1 { (doc.title) } "\n"
        @if doc.drill {
            p class="drill" { "演练 DRILL — 不计入事件统计 (not an incident)" } "\n"
        }
        table {
            "\n"
            @for (k, v) in &doc.fields { tr { th { (k) } td { (v) } } "\n" }
        }
        "\n"
        h2 { "报送阶段 Stages" } "\n"
        (table_html(&STAGE_HEADERS, doc.stages.iter().map(|r| r.as_slice())))
        h2 { "已采取措施 Actions taken" } "\n"
        (table_html(&ACTION_HEADERS, doc.actions.iter().map(|r| r.as_slice())))
        h2 { "学校说明 School's account" } "\n"
        p {
            @for (i, line) in narrative.split('\n').enumerate() {
                @if i > 0 { br; }
                (line)
            }
        }
        "\n"
        p { "填报人（签字）：__________ 　 学校（盖章）：__________" } "\n"
    };
    crate::review::page(&doc.title, &[PRINT_CSS], body)
}

fn table_html<'a>(headers: &[&str], rows: impl Iterator<Item = &'a [String]>) -> maud::Markup {
    maud::html! {
        table {
            "\n"
            tr { @for h in headers { th { (h) } } }
            "\n"
            @for row in rows {
                tr { @for cell in row { td { (cell) } } }
                "\n"
            }
        }
        "\n"
    }
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

fn para(out: &mut String, text: &str, bold: bool, size_half_points: u32) {
    let _ = write!(
        out,
        "<w:p><w:r><w:rPr>{}<w:sz w:val=\"{size_half_points}\"/></w:rPr><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
        if bold { "<w:b/>" } else { "" },
        esc(text)
    );
}

fn table_docx(out: &mut String, header: Option<&[&str]>, rows: &[Vec<String>]) {
    out.push_str("<w:tbl><w:tblPr><w:tblW w:w=\"5000\" w:type=\"pct\"/><w:tblBorders>");
    for side in ["top", "left", "bottom", "right", "insideH", "insideV"] {
        let _ = write!(
            out,
            "<w:{side} w:val=\"single\" w:sz=\"4\" w:color=\"999999\"/>"
        );
    }
    out.push_str("</w:tblBorders></w:tblPr>");
    let mut row = |cells: Vec<(&str, bool)>| {
        out.push_str("<w:tr>");
        for (text, bold) in cells {
            out.push_str("<w:tc>");
            para(out, text, bold, 20);
            out.push_str("</w:tc>");
        }
        out.push_str("</w:tr>");
    };
    if let Some(h) = header {
        row(h.iter().map(|t| (*t, true)).collect());
    }
    for r in rows {
        row(r.iter().map(|t| (t.as_str(), false)).collect());
    }
    out.push_str("</w:tbl>");
}

/// The document as DOCX bytes.
pub fn to_docx(doc: &Document) -> Result<Vec<u8>, String> {
    let mut body = String::new();
    para(&mut body, &doc.title, true, 32);
    if doc.drill {
        para(
            &mut body,
            "演练 DRILL — 不计入事件统计 (not an incident)",
            true,
            24,
        );
    }
    let fields: Vec<Vec<String>> = doc
        .fields
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.clone()])
        .collect();
    table_docx(&mut body, None, &fields);
    para(&mut body, "报送阶段 Stages", true, 26);
    let stages: Vec<Vec<String>> = doc.stages.iter().map(|r| r.to_vec()).collect();
    table_docx(&mut body, Some(&STAGE_HEADERS), &stages);
    para(&mut body, "已采取措施 Actions taken", true, 26);
    let actions: Vec<Vec<String>> = doc.actions.iter().map(|r| r.to_vec()).collect();
    table_docx(&mut body, Some(&ACTION_HEADERS), &actions);
    para(&mut body, "学校说明 School's account", true, 26);
    for line in doc.narrative.as_deref().unwrap_or("—").lines() {
        para(&mut body, line, false, 22);
    }
    para(
        &mut body,
        "填报人（签字）：__________ 　 学校（盖章）：__________",
        false,
        22,
    );
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/><w:pgMar w:top=\"1021\" w:right=\"850\" w:bottom=\"1021\" w:left=\"850\" w:header=\"0\" w:footer=\"0\" w:gutter=\"0\"/></w:sectPr></w:body></w:document>"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in [
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", RELS),
        ("word/document.xml", document.as_str()),
    ] {
        zip.start_file(name, options).map_err(|e| e.to_string())?;
        zip.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    zip.finish()
        .map(std::io::Cursor::into_inner)
        .map_err(|e| e.to_string())
}

/// Escapes text for XML element content and attribute values: the DOCX
/// writer's WordprocessingML (the HTML pages go through maud).
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> Document {
        let text = "<script>alert(1)</script> & \"quoted\"";
        Document {
            title: format!("事件报告 {text}"),
            drill: true,
            fields: vec![("学校 School", format!("<b>一中</b>{text}"))],
            stages: vec![std::array::from_fn(|_| text.to_string())],
            actions: vec![std::array::from_fn(|_| text.to_string())],
            narrative: Some(format!("第一行 {text}\n第二行 <i>")),
        }
    }

    #[test]
    fn html_escapes_every_field_and_breaks_narrative_lines() {
        let html = to_html(&hostile());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
        // Title (twice: <title> and <h1>), one field, 6 stage cells, 4
        // action cells, the narrative.
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;";
        assert_eq!(html.matches(escaped).count(), 2 + 1 + 6 + 4 + 1, "{html}");
        assert!(html.contains("<p>第一行 "));
        assert!(html.contains("&quot;<br>第二行 &lt;i&gt;</p>"), "{html}");
        assert!(html.contains("<p class=\"drill\">"));
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n"));
        assert!(html.contains(&format!("<style>{PRINT_CSS}</style>")));
        assert!(html.ends_with("</body>\n</html>\n"));
    }
}
