//! Text that reaches a terminal. Alert fields are untrusted: a summary could
//! carry escape sequences that move the cursor, rewrite the screen or set
//! the window title. Everything from an alert passes through [`inert`] or
//! [`inert_block`] before it is drawn, and is laid out by display width
//! (CJK characters take two cells) with [`fit`].

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Makes one line of untrusted text inert: every control character becomes
/// a visible stand-in (ESC shows as `␛`), so nothing can drive the terminal,
/// and a reader sees that something odd was sent.
pub fn inert(text: &str) -> String {
    exact(text.chars().map(|c| stand_in(c).unwrap_or(c)))
}

/// Collects text with no spare capacity: a duty console keeps tens of
/// thousands of these for hours, and `collect` alone may leave up to half
/// of each allocation unused.
fn exact(chars: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    out.extend(chars);
    out.shrink_to_fit();
    out
}

/// Like [`inert`] but keeps line breaks (for multi-line summaries); tabs
/// become spaces.
pub fn inert_block(text: &str) -> String {
    exact(text.chars().map(|c| match c {
        '\n' => '\n',
        '\t' => ' ',
        c => stand_in(c).unwrap_or(c),
    }))
}

fn stand_in(c: char) -> Option<char> {
    match c {
        // C0 controls map onto the Unicode "control pictures" block.
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32),
        '\u{7f}' => Some('␡'),
        // C1 controls (CSI is U+009B) and the bidi overrides/isolates that
        // can make text display in an order other than stored.
        '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some('�'),
        _ => None,
    }
}

/// Display width in terminal cells.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Truncates to at most `max` cells, never splitting a character or a
/// grapheme, ending with `…` when something was cut.
pub fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        let w = width(g);
        if used + w > max - 1 {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out.push('…');
    out
}

/// `text` followed by spaces up to `cells` display cells, never cut: for
/// CLI tables, where `{:<24}` would count chars and misalign every column
/// after a Chinese name.
pub fn pad(text: &str, cells: usize) -> String {
    let mut s = text.to_string();
    s.extend(std::iter::repeat_n(' ', cells.saturating_sub(width(text))));
    s
}

/// `text` right-aligned in `cells` display cells, never cut (`{:>8}` by
/// display width: a Chinese column header over a column of numbers).
pub fn pad_left(text: &str, cells: usize) -> String {
    let mut s = " ".repeat(cells.saturating_sub(width(text)));
    s.push_str(text);
    s
}

/// Truncates or pads with spaces to exactly `cells` cells.
pub fn fit_exact(text: &str, cells: usize) -> String {
    let mut s = fit(text, cells);
    let w = width(&s);
    s.extend(std::iter::repeat_n(' ', cells.saturating_sub(w)));
    s
}

/// A student name reduced to what a list may show: the surname and one
/// mask per remaining character for Chinese names (`张**`), initials for
/// names written in Latin letters (`L. W.`).
pub fn masked_name(name: &str) -> String {
    let name = inert(name.trim());
    if name.is_empty() {
        return String::new();
    }
    if name.contains(char::is_whitespace) {
        return name
            .split_whitespace()
            .filter_map(|w| w.graphemes(true).next())
            .map(|g| format!("{}.", g.to_uppercase()))
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut graphemes = name.graphemes(true);
    let first = graphemes.next().unwrap_or_default();
    let rest = graphemes.count().clamp(1, 3);
    format!("{first}{}", "*".repeat(rest))
}

#[cfg(test)]
mod tests {
    #[test]
    fn padding_counts_display_cells_and_never_cuts() {
        assert_eq!(super::pad("王老师", 8), "王老师  ");
        assert_eq!(super::pad("wang", 6), "wang  ");
        assert_eq!(super::pad("一二三四五", 4), "一二三四五");
    }

    use super::*;

    #[test]
    fn escapes_become_visible_and_inert() {
        let hostile = "ok\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m\r\n";
        let safe = inert(hostile);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe:?}");
        assert_eq!(safe, "ok␛[2J␛]0;pwned␇�31m␍␊");
    }

    #[test]
    fn bidi_overrides_are_neutralised() {
        assert_eq!(inert("a\u{202e}cba"), "a�cba");
    }

    #[test]
    fn block_keeps_newlines_only() {
        assert_eq!(inert_block("a\n\tb\u{1b}"), "a\n b␛");
    }

    #[test]
    fn fit_counts_cjk_as_two_cells_and_never_splits() {
        assert_eq!(width("王小明"), 6);
        assert_eq!(fit("王小明同学", 7), "王小明…");
        assert_eq!(width(&fit("王小明同学", 6)), 5);
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit_exact("王", 4), "王  ");
        assert_eq!(width(&fit_exact("王小明同学", 5)), 5);
    }

    #[test]
    fn names_are_masked() {
        assert_eq!(masked_name("王小明"), "王**");
        assert_eq!(masked_name("欧阳"), "欧*");
        assert_eq!(masked_name("li wei"), "L. W.");
        assert_eq!(masked_name(""), "");
    }
}
