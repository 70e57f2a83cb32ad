//! Small inline SVG charts for the HTML report and review: stacked bars,
//! a monthly line and a histogram. Plain functions from numbers to markup,
//! no scripts, no external fonts or links; every label is text that maud
//! escapes. Each chart scales to its container (`viewBox`, width 100%), so
//! it never overflows an A4 page, and carries a `<title>` per mark and a
//! caption so the figures survive printing in black and white.
//!
//! Marks with no content are written `<rect ...></rect>`: in an HTML page
//! an SVG element must be closed explicitly (maud writes no `/>`).

use maud::{Markup, html};

/// The drawing area every chart uses, in viewBox units.
const W: f64 = 640.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;

/// Colours of the three levels (一般/重点/高危), readable in greyscale.
pub const LEVEL_COLOURS: [&str; 3] = ["#9ecae1", "#fdae6b", "#c00000"];

/// A chart's frame: the figure, the scalable SVG with its title, and the
/// caption under it.
fn figure(height: f64, title: &str, marks: Markup) -> Markup {
    html! {
        figure class="chart" {
            svg viewBox=(format!("0 0 {W} {height}")) width="100%" role="img" aria-label=(title) preserveAspectRatio="xMinYMin meet" {
                title { (title) }
                text x="0" y="16" font-weight="bold" { (title) }
                (marks)
            }
            figcaption { (title) }
        }
        "\n"
    }
}

/// One drawn part of a stacked bar.
struct Segment {
    series: usize,
    x: f64,
    width: f64,
    count: usize,
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
) -> Markup {
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
    let colour = |s: usize| colours.get(s).copied().unwrap_or("#777");
    // Each row's drawn segments and where the row ends.
    let placed: Vec<(Vec<Segment>, f64)> = rows
        .iter()
        .map(|(_, values)| {
            let mut x = LEFT;
            let mut segments = Vec::new();
            for (s, v) in values.iter().enumerate().filter(|(_, v)| **v > 0) {
                let w = plot * *v as f64 / scale_max;
                segments.push(Segment {
                    series: s,
                    x,
                    width: w,
                    count: *v,
                });
                x += w;
            }
            (segments, x)
        })
        .collect();
    // Legend under the bars, each entry after the one before.
    let ly = height - 12.0;
    let legend: Vec<(f64, &str)> = series
        .iter()
        .scan(LEFT, |lx, name| {
            let at = *lx;
            *lx += 14.0 + 8.0 * crate::text::width(name) as f64 + 16.0;
            Some((at, *name))
        })
        .collect();
    let marks = html! {
        @for (i, ((label, values), (segments, end))) in rows.iter().zip(&placed).enumerate() {
            @let y = TOP + (bar_h + gap) * i as f64;
            @let ty = format!("{:.1}", y + bar_h - 5.0);
            text x=(LEFT - 6.0) y=(ty) text-anchor="end" { (crate::text::fit(label, 22)) }
            @for seg in segments {
                rect x=(format!("{:.1}", seg.x)) y=(format!("{y:.1}")) width=(format!("{:.1}", seg.width)) height=(bar_h) fill=(colour(seg.series)) {
                    title { (label) ": " (series.get(seg.series).copied().unwrap_or("")) " " (seg.count) }
                }
            }
            text x=(format!("{:.1}", end + 4.0)) y=(ty) { (values.iter().sum::<usize>()) }
        }
        @for (s, (lx, name)) in legend.iter().enumerate() {
            rect x=(lx) y=(format!("{:.1}", ly - 9.0)) width="10" height="10" fill=(colour(s)) {}
            text x=(format!("{:.1}", lx + 14.0)) y=(format!("{ly:.1}")) { (name) }
        }
    };
    figure(height, title, marks)
}

/// Vertical bars over ordered buckets (a histogram, or months).
pub fn columns(title: &str, buckets: &[(String, usize)], colour: &str) -> Markup {
    let height = 220.0;
    let base = height - 40.0;
    let left = 40.0;
    let plot_w = W - left - RIGHT;
    let plot_h = base - TOP;
    let max = buckets.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let scale_max = nice_max(max as f64);
    let slot = plot_w / buckets.len().max(1) as f64;
    let bar_w = (slot * 0.7).max(2.0);
    let marks = html! {
        line x1=(left) y1=(base) x2=(W - RIGHT) y2=(base) stroke="#333" {}
        text x=(left - 4.0) y=(format!("{:.1}", TOP + 4.0)) text-anchor="end" { (scale_max) }
        text x=(left - 4.0) y=(base) text-anchor="end" { "0" }
        @for (i, (label, n)) in buckets.iter().enumerate() {
            @let h = plot_h * *n as f64 / scale_max;
            @let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
            @let mid = format!("{:.1}", x + bar_w / 2.0);
            rect x=(format!("{x:.1}")) y=(format!("{:.1}", base - h)) width=(format!("{bar_w:.1}")) height=(format!("{h:.1}")) fill=(colour) {
                title { (label) ": " (n) }
            }
            @if *n > 0 {
                text x=(mid) y=(format!("{:.1}", base - h - 3.0)) text-anchor="middle" { (n) }
            }
            text x=(mid) y=(format!("{:.1}", base + 14.0)) text-anchor="middle" { (label) }
        }
    };
    figure(height, title, marks)
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
        )
        .into_string();
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
        let svg = columns("确认用时", &h, "#1f5fa8").into_string();
        assert_eq!(svg.matches("<rect").count(), 7);
        // The tallest bar (2 of axis 2) fills the plot: 180 - 28 = 152.
        assert!(svg.contains("height=\"152.0\""), "{svg}");
        assert!(svg.contains("&lt;1分"));
    }
}
