//! Small inline SVG charts for the HTML report and review: stacked bars,
//! a monthly line and a histogram. Plain functions from numbers to markup,
//! no scripts, no external fonts or links; every label is escaped. Each
//! chart scales to its container (`viewBox`, width 100%), so it never
//! overflows an A4 page, and carries a `<title>` per mark and a caption
//! table so the figures survive printing in black and white.

use std::fmt::Write;

use super::html::esc;

/// The drawing area every chart uses, in viewBox units.
const W: f64 = 640.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;

/// Colours of the three levels (一般/重点/高危), readable in greyscale.
pub const LEVEL_COLOURS: [&str; 3] = ["#9ecae1", "#fdae6b", "#c00000"];

fn open(out: &mut String, height: f64, label: &str) {
    let _ = write!(
        out,
        "<figure class=\"chart\"><svg viewBox=\"0 0 {W} {height}\" width=\"100%\" role=\"img\" aria-label=\"{l}\" preserveAspectRatio=\"xMinYMin meet\"><title>{l}</title>",
        l = esc(label)
    );
}

fn close(out: &mut String, caption: &str) {
    let _ = writeln!(
        out,
        "</svg><figcaption>{}</figcaption></figure>",
        esc(caption)
    );
}

/// A "nice" axis maximum at or above `max` (1, 2 or 5 times a power of ten).
pub fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let pow = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * pow)
}

/// Horizontal stacked bars: one row per category, one segment per series.
pub fn stacked_bars(
    title: &str,
    rows: &[(String, Vec<usize>)],
    series: &[&str],
    colours: &[&str],
) -> String {
    let bar_h = 18.0;
    let gap = 8.0;
    let height = TOP + (bar_h + gap) * rows.len().max(1) as f64 + 40.0;
    let max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<usize>())
        .max()
        .unwrap_or(0);
    let scale_max = nice_max(max as f64);
    let plot = W - LEFT - RIGHT;
    let mut out = String::new();
    open(&mut out, height, title);
    let _ = write!(
        out,
        "<text x=\"0\" y=\"16\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    for (i, (label, values)) in rows.iter().enumerate() {
        let y = TOP + (bar_h + gap) * i as f64;
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{ty:.1}\" text-anchor=\"end\">{}</text>",
            esc(&crate::text::fit(label, 22)),
            x = LEFT - 6.0,
            ty = y + bar_h - 5.0
        );
        let mut x = LEFT;
        for (s, v) in values.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let w = plot * *v as f64 / scale_max;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{}\"><title>{}: {} {v}</title></rect>",
                colours.get(s).copied().unwrap_or("#777"),
                esc(label),
                esc(series.get(s).copied().unwrap_or("")),
            );
            x += w;
        }
        let total: usize = values.iter().sum();
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{total}</text>",
            x + 4.0,
            y + bar_h - 5.0
        );
    }
    // Legend under the bars.
    let ly = height - 12.0;
    let mut lx = LEFT;
    for (s, name) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<rect x=\"{lx}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 9.0,
            colours.get(s).copied().unwrap_or("#777"),
            lx + 14.0,
            esc(name)
        );
        lx += 14.0 + 8.0 * crate::text::width(name) as f64 + 16.0;
    }
    close(&mut out, title);
    out
}

/// Vertical bars over ordered buckets (a histogram, or months).
pub fn columns(title: &str, buckets: &[(String, usize)], colour: &str) -> String {
    let height = 220.0;
    let base = height - 40.0;
    let left = 40.0;
    let plot_w = W - left - RIGHT;
    let plot_h = base - TOP;
    let max = buckets.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let scale_max = nice_max(max as f64);
    let slot = plot_w / buckets.len().max(1) as f64;
    let bar_w = (slot * 0.7).max(2.0);
    let mut out = String::new();
    open(&mut out, height, title);
    let _ = write!(
        out,
        "<text x=\"0\" y=\"16\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#333\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{scale_max}</text><text x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        W - RIGHT,
        left - 4.0,
        TOP + 4.0,
        left - 4.0
    );
    for (i, (label, n)) in buckets.iter().enumerate() {
        let h = plot_h * *n as f64 / scale_max;
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{}: {n}</title></rect>",
            base - h,
            esc(label)
        );
        if *n > 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>",
                x + bar_w / 2.0,
                base - h - 3.0
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x + bar_w / 2.0,
            base + 14.0,
            esc(label)
        );
    }
    close(&mut out, title);
    out
}

/// Time-to-acknowledge buckets, as a duty team thinks of them.
pub const ACK_BUCKETS: [(i64, &str); 7] = [
    (60, "<1分"),
    (5 * 60, "1–5分"),
    (15 * 60, "5–15分"),
    (30 * 60, "15–30分"),
    (3600, "30–60分"),
    (4 * 3600, "1–4时"),
    (i64::MAX, "≥4时"),
];

/// Counts per [`ACK_BUCKETS`] bucket.
pub fn ack_histogram(seconds: &[i64]) -> Vec<(String, usize)> {
    let mut counts = vec![0usize; ACK_BUCKETS.len()];
    for s in seconds {
        let i = ACK_BUCKETS
            .iter()
            .position(|(upper, _)| s < upper)
            .unwrap_or(ACK_BUCKETS.len() - 1);
        counts[i] += 1;
    }
    ACK_BUCKETS
        .iter()
        .zip(counts)
        .map(|((_, l), n)| (l.to_string(), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(20.0), 20.0);
    }

    #[test]
    fn stacked_bars_scale_segments_and_escape_labels() {
        let svg = stacked_bars(
            "级别 <分布>",
            &[
                ("一中".into(), vec![1, 1, 2]),
                ("<b>二中</b>".into(), vec![0, 0, 1]),
            ],
            &["一般", "重点", "高危"],
            &LEVEL_COLOURS,
        );
        assert!(!svg.contains("<b>"), "labels are escaped");
        assert!(svg.contains("&lt;b&gt;二中&lt;/b&gt;"));
        // Max 4 → axis 5; plot width 474: a count of 2 is 189.6 wide.
        assert!(svg.contains("width=\"189.6\""), "{svg}");
        // Zero segments are not drawn: 3 + 1 bars, plus 3 legend swatches.
        assert_eq!(svg.matches("<rect").count(), 7);
        assert!(svg.contains("viewBox=\"0 0 640"));
        assert!(!svg.contains("http"), "no namespace or link needed inline");
    }

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let h = ack_histogram(&[0, 59, 60, 299, 300, 3600, 100_000]);
        let counts: Vec<usize> = h.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 2, 1, 0, 0, 1, 1]);
        let svg = columns("确认用时", &h, "#1f5fa8");
        assert_eq!(svg.matches("<rect").count(), 7);
        // The tallest bar (2 of axis 2) fills the plot: 180 - 28 = 152.
        assert!(svg.contains("height=\"152.0\""), "{svg}");
        assert!(svg.contains("&lt;1分"));
    }
}
