//! Reading screening exports: CSV (UTF-8 with or without BOM, or
//! GBK/GB18030 as Chinese Excel writes it) and XLSX, into rows of text.
//! Everything here fails on the file as a whole; row problems are the
//! mapper's.

use std::path::Path;

use calamine::{Data, Reader};

/// A file's header and its rows of cell text, handed out one at a time by
/// [`Table::next_row`]. A CSV is parsed record by record as rows are asked
/// for: a district file of 200,000 rows is never held as 13 million cells.
/// XLSX files (which calamine reads whole) with several sheets are read
/// sheet after sheet when their headers match the first.
pub struct Table {
    pub headers: Vec<String>,
    /// "UTF-8", "UTF-8 (BOM)", "GB18030", "XLSX".
    pub encoding: &'static str,
    rows: Rows,
    /// The row [`Table::next_row`] lends out. A CSV record is parsed into
    /// it in place: no copy of the record and no allocation per row.
    current: Row,
}

enum Rows {
    Loaded(std::vec::IntoIter<Row>),
    Csv {
        reader: csv::Reader<std::io::Cursor<Vec<u8>>>,
        /// Records read so far, counting the header.
        read: u64,
    },
}

impl Table {
    fn new(headers: Vec<String>, encoding: &'static str, rows: Rows) -> Table {
        Table {
            headers,
            encoding,
            rows,
            current: Row {
                number: String::new(),
                cells: csv::StringRecord::new(),
            },
        }
    }

    /// The next non-blank data row, or the error that makes the file
    /// unreadable from here on. Cells are as in the file, untrimmed: the
    /// mapper trims the cells it reads.
    pub fn next_row(&mut self) -> Option<Result<&Row, FileError>> {
        match &mut self.rows {
            Rows::Loaded(rows) => {
                self.current = rows.next()?;
                Some(Ok(&self.current))
            }
            Rows::Csv { reader, read } => loop {
                let record = &mut self.current.cells;
                match reader.read_record(record) {
                    Ok(false) => return None,
                    Ok(true) => {
                        *read += 1;
                        if record.iter().all(|c| c.trim().is_empty()) {
                            continue;
                        }
                        let line = record.position().map_or(*read, |p| p.line());
                        let number = &mut self.current.number;
                        number.clear();
                        {
                            use std::fmt::Write;
                            let _ = write!(number, "{line}");
                        }
                        return Some(Ok(&self.current));
                    }
                    Err(e) => return Some(Err(csv_error(e))),
                }
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    /// Row number as the user sees it (sheet name prefixed for later
    /// sheets of a workbook: "Sheet2!14").
    pub number: String,
    /// One buffer per row (not one String per cell): 200,000 rows of 67
    /// cells would otherwise be 13 million allocations.
    pub cells: csv::StringRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("无法读取文件 / cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "文件既不是 UTF-8 也不是 GBK/GB18030 编码 / the file is neither UTF-8 nor GBK/GB18030 text"
    )]
    Encoding,
    #[error("CSV 格式错误（第{line}行）/ malformed CSV at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("无法读取 Excel 文件 / cannot read the workbook: {0}")]
    Xlsx(String),
    #[error("文件没有表头行 / the file has no header row")]
    Empty,
    #[error(
        "不支持的文件类型（请用 .csv 或 .xlsx）/ unsupported file type `{0}` (use .csv or .xlsx)"
    )]
    Unsupported(String),
}

pub fn read_file(path: &Path) -> Result<Table, FileError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" | "txt" => read_csv(std::fs::read(path)?),
        "xlsx" | "xlsm" => read_xlsx(path),
        other => Err(FileError::Unsupported(other.to_string())),
    }
}

/// Text of a CSV export, decoded: a UTF-8 BOM is dropped; text that is not
/// UTF-8 is decoded as GB18030 (a superset of GBK), and must decode
/// without a single replacement, or the file is refused rather than read
/// as mojibake.
pub fn decode(bytes: &[u8]) -> Result<(std::borrow::Cow<'_, str>, &'static str), FileError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .map(|s| (s.into(), "UTF-8 (BOM)"))
            .map_err(|_| FileError::Encoding);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((s.into(), "UTF-8"));
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(FileError::Encoding);
    }
    Ok((text, "GB18030"))
}

/// Opens a CSV export: decodes it (see [`decode`]) and reads its header;
/// the rows are parsed later, one at a time.
pub fn read_csv(bytes: Vec<u8>) -> Result<Table, FileError> {
    // Keep one buffer: UTF-8 text is read in place after its BOM; only a
    // GB18030 file is decoded into a second one (and the first dropped).
    let (skip, decoded, encoding) = {
        let (text, encoding) = decode(&bytes)?;
        match text {
            std::borrow::Cow::Borrowed(t) => (bytes.len() - t.len(), None, encoding),
            std::borrow::Cow::Owned(t) => (0, Some(t.into_bytes()), encoding),
        }
    };
    let mut data = std::io::Cursor::new(decoded.unwrap_or(bytes));
    data.set_position(skip as u64);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut record = csv::StringRecord::new();
    let headers = match reader.read_record(&mut record) {
        Ok(true) => record
            .iter()
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>(),
        Ok(false) => return Err(FileError::Empty),
        Err(e) => return Err(csv_error(e)),
    };
    if headers.iter().all(String::is_empty) {
        return Err(FileError::Empty);
    }
    Ok(Table::new(headers, encoding, Rows::Csv { reader, read: 1 }))
}

fn csv_error(e: csv::Error) -> FileError {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        // Never echo the bytes themselves: they may be a student's answers.
        csv::ErrorKind::Utf8 { .. } => "invalid text encoding".to_string(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where {expected_len} were expected")
        }
        _ => "unreadable record".to_string(),
    };
    FileError::Csv { line, message }
}

/// Cell text as a CSV export would show it: whole numbers without ".0",
/// dates as `YYYY-MM-DD HH:MM:SS`.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Data::DateTime(d) => excel_serial_to_text(d.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(_) => "#ERROR".to_string(),
    }
}

/// Excel's day count (1900 system, counted from 1899-12-30) as local text.
fn excel_serial_to_text(serial: f64) -> String {
    let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|d| d.and_hms_opt(0, 0, 0));
    let secs = (serial * 86_400.0).round() as i64;
    match base.and_then(|b| b.checked_add_signed(chrono::Duration::seconds(secs))) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => serial.to_string(),
    }
}

pub fn read_xlsx(path: &Path) -> Result<Table, FileError> {
    let mut book =
        calamine::open_workbook_auto(path).map_err(|e| FileError::Xlsx(e.to_string()))?;
    let names = book.sheet_names().clone();
    let mut headers: Vec<String> = Vec::new();
    let mut loaded: Vec<Row> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let range = book
            .worksheet_range(name)
            .map_err(|e| FileError::Xlsx(e.to_string()))?;
        let mut rows = range.rows();
        let Some(header) = rows.next() else { continue };
        let header: Vec<String> = header.iter().map(cell_text).collect();
        if header.iter().all(String::is_empty) {
            continue;
        }
        if headers.is_empty() {
            headers = header;
        } else if header != headers {
            // A notes or summary sheet: not part of the data.
            continue;
        }
        let first_row = range.start().map_or(0, |(r, _)| r) as usize;
        for (i, cells) in rows.enumerate() {
            let cells: Vec<String> = cells.iter().map(cell_text).collect();
            if cells.iter().all(String::is_empty) {
                continue;
            }
            let line = first_row + i + 2;
            let number = if index == 0 {
                line.to_string()
            } else {
                format!("{name}!{line}")
            };
            loaded.push(Row {
                number,
                cells: csv::StringRecord::from(cells),
            });
        }
    }
    if headers.is_empty() {
        return Err(FileError::Empty);
    }
    Ok(Table::new(
        headers,
        "XLSX",
        Rows::Loaded(loaded.into_iter()),
    ))
}
