//! `file:line: problem` diagnostics, shared by every checker of files a
//! person edits (playbooks, drill scenarios), so editors and CI read them
//! the same way.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

/// One problem in one file. `line` is 1-based, `None` when the problem is
/// about the file or directory as a whole (unreadable, empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic<P> {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub problem: P,
}

impl<P: fmt::Display> fmt::Display for Diagnostic<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.problem),
            None => write!(f, "{}: {}", self.file.display(), self.problem),
        }
    }
}

/// The `*.toml` files directly in `dir`, sorted by name (subdirectories,
/// such as `playbooks/drills/`, hold other formats and are skipped), with
/// any directory entries that could not be read beside them.
pub fn toml_files(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<std::io::Error>)> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
                    files.push(path);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    files.sort();
    Ok((files, errors))
}

/// Collects the problems of one file, turning TOML byte spans into lines.
pub struct Sink<P> {
    pub file: PathBuf,
    line_starts: Vec<usize>,
    pub diags: Vec<Diagnostic<P>>,
}

impl<P> Sink<P> {
    pub fn new(file: &Path, text: &str) -> Sink<P> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Sink {
            file: file.to_path_buf(),
            line_starts,
            diags: Vec::new(),
        }
    }

    /// The 1-based line a byte span starts on.
    pub fn line(&self, span: &Range<usize>) -> usize {
        self.line_starts
            .partition_point(|&start| start <= span.start)
    }

    pub fn at<T>(&self, spanned: &Spanned<T>) -> usize {
        self.line(&spanned.span())
    }

    pub fn push(&mut self, line: usize, problem: P) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line: Some(line),
            problem,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_to_one_based_lines_and_display_as_file_line() {
        let sink: Sink<&str> = Sink::new(Path::new("a.toml"), "x = 1\ny = 2\n\nz = 3");
        assert_eq!(sink.line(&(0..1)), 1);
        assert_eq!(sink.line(&(6..7)), 2);
        assert_eq!(sink.line(&(13..14)), 4);
        let d = Diagnostic {
            file: PathBuf::from("a.toml"),
            line: Some(4),
            problem: "bad",
        };
        assert_eq!(d.to_string(), "a.toml:4: bad");
    }
}
