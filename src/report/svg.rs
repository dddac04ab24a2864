//! The report as one self-contained SVG picture.
//!
//! No scripts, no external fonts or styles: the file opens the same in a
//! browser, an image viewer or a pull request. Each stage is a row: its
//! label on the left, and on the request's timeline a faint bar for the
//! budget it asked for (only when a budget above clipped it), a light bar
//! for the budget it was granted, and a solid bar for the time it used,
//! coloured by its outcome. The request's deadline is a dashed red line.

use std::fmt::Write as _;
use std::time::Duration;

use super::waterfall::short;
use super::{Outcome, Snapshot, Stage};

const WIDTH: f64 = 1000.0;
const LABELS: f64 = 220.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 64.0;
const ROW: f64 = 24.0;
const BAR: f64 = 14.0;
const LEGEND: f64 = 56.0;
/// How far past the end of the timeline an asked-for budget is drawn
/// before it is cut (with a marker).
const OVERFLOW: f64 = 24.0;
const FONT: &str = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

/// The colour of each outcome.
fn colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "#3b82c4",
        Outcome::Completed => "#2e8b57",
        Outcome::OwnDeadline => "#e08a1e",
        Outcome::InheritedDeadline => "#c8102e",
        Outcome::Canceled => "#7b52ab",
        Outcome::LostRace => "#8a97a6",
        Outcome::Refused => "#4a4a4a",
        Outcome::Dropped => "#b08d57",
    }
}

/// The timeline's geometry.
struct Scale {
    span: f64,
    left: f64,
    width: f64,
}

impl Scale {
    fn x(&self, at: Duration) -> f64 {
        if self.span <= 0.0 {
            return self.left;
        }
        self.left + at.as_secs_f64() / self.span * self.width
    }

    fn right(&self) -> f64 {
        self.left + self.width
    }
}

/// Renders `report` as an SVG document.
pub(super) fn render(report: &Snapshot) -> String {
    let rows = report.stages.len().max(1) as f64;
    let height = TOP + rows * ROW + LEGEND;
    let scale = Scale {
        span: report.span().as_secs_f64(),
        left: LABELS,
        width: WIDTH - LABELS - RIGHT,
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" {FONT} font-size=\"12\">"
    );
    let _ = writeln!(
        svg,
        "<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    title(&mut svg, report);
    grid(&mut svg, &scale, height - LEGEND);
    for (row, stage) in report.stages.iter().enumerate() {
        stage_row(&mut svg, &scale, stage, report.now, TOP + row as f64 * ROW);
    }
    if report.stages.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{LABELS}\" y=\"{}\" fill=\"#666666\">no stage recorded</text>",
            TOP + ROW * 0.65
        );
    }
    if let Some(budget) = report.budget {
        deadline(&mut svg, &scale, budget, height - LEGEND);
    }
    legend(&mut svg, report, height - LEGEND + 18.0);
    svg.push_str("</svg>\n");
    svg
}

fn title(svg: &mut String, report: &Snapshot) {
    let name = match &report.name {
        Some(name) => format!("Where the budget of \u{201c}{}\u{201d} went", escape(name)),
        None => "Where the budget went".to_owned(),
    };
    let budget = match report.budget {
        Some(budget) => format!("budget {}", short(budget)),
        None => "no deadline".to_owned(),
    };
    let _ = writeln!(
        svg,
        "<text x=\"12\" y=\"22\" font-size=\"16\" font-weight=\"bold\" fill=\"#222222\">{name}</text>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"12\" y=\"40\" fill=\"#555555\">{budget}, {} elapsed, {} stage{}</text>",
        short(report.now),
        report.stages.len(),
        if report.stages.len() == 1 { "" } else { "s" },
    );
}

/// Vertical lines at round times, labelled along the top.
fn grid(svg: &mut String, scale: &Scale, bottom: f64) {
    let step = tick(scale.span);
    if step <= 0.0 {
        return;
    }
    let mut at = 0.0;
    while at <= scale.span * 1.0001 {
        let x = scale.x(Duration::from_secs_f64(at));
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#e3e3e3\"/>",
            TOP - 6.0
        );
        let _ = writeln!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#777777\">{}</text>",
            TOP - 10.0,
            short(Duration::from_secs_f64(at)),
        );
        at += step;
    }
}

/// A round step that cuts `span` seconds into four to eight parts.
fn tick(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 0.0;
    }
    let mut step = 10f64.powf((span / 5.0).log10().floor());
    for factor in [1.0, 2.0, 5.0, 10.0] {
        if span / (step * factor) <= 8.0 {
            step *= factor;
            break;
        }
    }
    step
}

fn stage_row(svg: &mut String, scale: &Scale, stage: &Stage, now: Duration, y: f64) {
    let colour = colour(stage.outcome());
    let bar_y = y + (ROW - BAR) / 2.0;
    let text_y = y + ROW * 0.65;
    let indent = 12.0 + 14.0 * stage.depth().min(8) as f64;
    let _ = writeln!(svg, "<g>");
    let _ = writeln!(svg, "<title>{}</title>", escape(&tooltip(stage)));
    let _ = writeln!(
        svg,
        "<text x=\"{indent:.1}\" y=\"{text_y:.1}\" fill=\"#222222\">{}</text>",
        escape(&cut(&stage.label(), 30 - stage.depth().min(8)))
    );
    let start = scale.x(stage.started());
    let limit = scale.right() + OVERFLOW;
    if stage.is_clipped() {
        if let Some(asked) = stage.asked() {
            let end = scale.x(stage.started().saturating_add(asked)).min(limit);
            let _ = writeln!(
                svg,
                "<rect x=\"{start:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" \
                 fill-opacity=\"0.08\" stroke=\"{colour}\" stroke-opacity=\"0.45\" stroke-dasharray=\"3 2\"/>",
                bar_y - 2.0,
                (end - start).max(1.0),
                BAR + 4.0,
            );
            if end >= limit {
                // Cut at the edge: it asked for more than the picture shows.
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{text_y:.1}\" text-anchor=\"end\" font-size=\"11\" \
                     fill=\"{colour}\" fill-opacity=\"0.8\">\u{2192}</text>",
                    limit - 2.0
                );
            }
        }
    }
    if let Some(granted) = stage.granted() {
        let end = scale.x(stage.started().saturating_add(granted)).min(limit);
        let _ = writeln!(
            svg,
            "<rect x=\"{start:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR}\" fill=\"{colour}\" fill-opacity=\"0.25\"/>",
            (end - start).max(1.0),
        );
    }
    let end = scale.x(stage.end_at(now));
    let used = (end - start).max(2.0);
    let _ = writeln!(
        svg,
        "<rect x=\"{start:.1}\" y=\"{bar_y:.1}\" width=\"{used:.1}\" height=\"{BAR}\" fill=\"{colour}\"/>"
    );
    let took = stage.took().map_or_else(|| "running".to_owned(), short);
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{text_y:.1}\" font-size=\"11\" fill=\"{colour}\">{took} \u{b7} {}</text>",
        scale.right() + OVERFLOW + 10.0,
        stage.outcome().label(),
    );
    let _ = writeln!(svg, "</g>");
}

fn deadline(svg: &mut String, scale: &Scale, budget: Duration, bottom: f64) {
    let x = scale.x(budget);
    let _ = writeln!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#c8102e\" \
         stroke-width=\"2\" stroke-dasharray=\"6 3\"/>",
        TOP - 4.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\" fill=\"#c8102e\">deadline {}</text>",
        x - 4.0,
        TOP - 24.0,
        short(budget),
    );
}

fn legend(svg: &mut String, report: &Snapshot, y: f64) {
    let mut x = 12.0;
    let mut seen = Vec::new();
    for stage in &report.stages {
        if !seen.contains(&stage.outcome()) {
            seen.push(stage.outcome());
        }
    }
    for outcome in seen {
        let label = outcome.label();
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>",
            y - 10.0,
            colour(outcome)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333333\">{label}</text>",
            x + 16.0
        );
        x += 30.0 + 6.5 * label.len() as f64;
    }
    let y = y + 20.0;
    let _ = writeln!(
        svg,
        "<rect x=\"12\" y=\"{:.1}\" width=\"24\" height=\"10\" fill=\"#2e8b57\" fill-opacity=\"0.25\"/>\
         <text x=\"42\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333333\">granted budget</text>\
         <rect x=\"140\" y=\"{:.1}\" width=\"24\" height=\"12\" fill=\"#2e8b57\" fill-opacity=\"0.08\" \
         stroke=\"#2e8b57\" stroke-opacity=\"0.45\" stroke-dasharray=\"3 2\"/>\
         <text x=\"170\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333333\">asked for, clipped from above</text>\
         <line x1=\"350\" y1=\"{:.1}\" x2=\"374\" y2=\"{:.1}\" stroke=\"#c8102e\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\
         <text x=\"380\" y=\"{y:.1}\" font-size=\"11\" fill=\"#333333\">the request's deadline</text>",
        y - 9.0,
        y - 10.0,
        y - 4.0,
        y - 4.0,
    );
}

/// What hovering over a row shows: everything the report knows of it.
fn tooltip(stage: &Stage) -> String {
    let mut text = stage.label();
    let _ = write!(
        text,
        ": {}; started at {}",
        stage.outcome().label(),
        short(stage.started())
    );
    if let Some(took) = stage.took() {
        let _ = write!(text, ", took {}", short(took));
    }
    if let Some(granted) = stage.granted() {
        let _ = write!(text, "; granted {}", short(granted));
    }
    if let Some(asked) = stage.asked() {
        let _ = write!(text, ", asked {}", short(asked));
    }
    if let Some(left) = stage.remaining_at_start() {
        let _ = write!(text, ", {} left above at its start", short(left));
    }
    if let Some(err) = stage.error() {
        let _ = write!(text, "; {err}");
    }
    text
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('\u{2026}');
    cut
}

/// Escapes text for SVG content and attribute values.
fn escape(text: &str) -> String {
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

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        for (span, step) in [
            (3.0, 0.5),
            (1.0, 0.2),
            (0.05, 0.01),
            (60.0, 10.0),
            (7.0, 1.0),
        ] {
            let got = tick(span);
            assert!((got - step).abs() < 1e-9, "{span}: {got}");
            assert!((4.0..=8.0).contains(&(span / got).ceil()), "{span}");
        }
        assert_eq!(tick(0.0), 0.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(cut("abcdef", 4), "abc\u{2026}");
        assert_eq!(cut("abc", 4), "abc");
    }
}
