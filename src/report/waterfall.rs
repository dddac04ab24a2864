//! The report as a text waterfall.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Outcome, Snapshot, Stage};
use crate::error::ShortLocation;

/// The width of the timeline, in characters.
const BAR: usize = 40;
/// Labels longer than this are cut, so that the columns stay aligned.
const LABEL: usize = 28;

/// Renders `report` as a header, a line per stage and a legend.
pub(super) fn render(report: &Snapshot) -> String {
    let mut out = String::new();
    let title = match &report.name {
        Some(name) => format!("budget report for {name:?}"),
        None => "budget report".to_owned(),
    };
    let budget = match report.budget {
        Some(budget) => format!("budget {}", short(budget)),
        None => "no deadline".to_owned(),
    };
    let _ = writeln!(
        out,
        "{title}: {budget}, {} elapsed, {} stage{}",
        short(report.now),
        report.stages.len(),
        if report.stages.len() == 1 { "" } else { "s" },
    );
    let span = report.span();
    let width = report
        .stages
        .iter()
        .map(|stage| label(stage).chars().count())
        .max()
        .unwrap_or(0)
        .max("stage".len());
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:<18}  {}",
        "stage",
        "asked",
        "granted",
        "start",
        "took",
        "outcome",
        axis(span),
    );
    for stage in &report.stages {
        let _ = write!(
            out,
            "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:<18}  {}",
            label(stage),
            stage.asked().map_or_else(|| "-".to_owned(), short),
            stage.granted().map_or_else(|| "-".to_owned(), short),
            short(stage.started()),
            stage.took().map_or_else(|| "...".to_owned(), short),
            stage.outcome().label(),
            bar(stage, report, span),
        );
        if let Some(detail) = detail(stage) {
            let _ = write!(out, "  {detail}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "(# time used, - granted but unused, | the deadline, x refused; clipped stages asked for more than they were granted)"
    );
    out
}

/// The stage's label, indented by its depth and cut to fit.
fn label(stage: &Stage) -> String {
    let mut label = "  ".repeat(stage.depth().min(6));
    let text = stage.label();
    if text.chars().count() > LABEL {
        label.extend(text.chars().take(LABEL - 3));
        label.push_str("...");
    } else {
        label.push_str(&text);
    }
    label
}

/// The timeline's header: its start and end.
fn axis(span: Duration) -> String {
    let end = short(span);
    format!("0{end:>width$}", width = BAR + 1)
}

/// The column of `at` on a timeline `span` long.
fn column(at: Duration, span: Duration) -> usize {
    if span.is_zero() {
        return 0;
    }
    let column = at.as_secs_f64() / span.as_secs_f64() * BAR as f64;
    (column.round() as usize).min(BAR)
}

/// The stage's bar: used time, then the unused rest of its budget, with
/// the report's deadline marked.
fn bar(stage: &Stage, report: &Snapshot, span: Duration) -> String {
    let mut cells = vec![' '; BAR + 1];
    let start = column(stage.started(), span);
    let end = column(stage.end_at(report.now), span);
    if let Some(granted) = stage.granted() {
        let until = column(stage.started().saturating_add(granted), span);
        for cell in cells.iter_mut().take(until).skip(end) {
            *cell = '-';
        }
    }
    if stage.outcome() == Outcome::Refused {
        cells[start] = 'x';
    } else {
        // At least one cell, so that a stage of a few microseconds shows.
        let end = end.max(start + 1).min(BAR + 1);
        for cell in cells.iter_mut().take(end).skip(start) {
            *cell = '#';
        }
    }
    if let Some(budget) = report.budget {
        cells[column(budget, span)] = '|';
    }
    let mut bar: String = cells.into_iter().collect();
    bar.truncate(bar.trim_end().len());
    bar
}

/// What the outcome column cannot hold: who ended the stage and why.
fn detail(stage: &Stage) -> Option<String> {
    let err = stage.error()?;
    match stage.outcome() {
        Outcome::InheritedDeadline => Some(match err.context_name() {
            Some(name) => format!("({name:?}'s deadline)"),
            None => format!("(the deadline set at {})", ShortLocation(err.location())),
        }),
        Outcome::Canceled => Some(match err.cause() {
            Some(cause) => format!("({cause})"),
            None => "(no cause given)".to_owned(),
        }),
        Outcome::Refused => Some(format!(
            "(needs {}, {} left)",
            err.min_budget().map_or_else(String::new, short),
            err.remaining().map_or_else(String::new, short),
        )),
        _ => None,
    }
}

/// A duration in at most four significant figures and a unit people read
/// at a glance: `750µs`, `12.3ms`, `500ms`, `1.25s`, `2m05s`.
pub(super) fn short(d: Duration) -> String {
    if d >= Duration::from_secs(100 * 365 * 86_400) {
        return "unbounded".to_owned();
    }
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_owned()
    } else if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 1_000_000 {
        format!("{}µs", nanos / 1_000)
    } else if nanos < 100_000_000 {
        trim(format!("{:.1}", d.as_secs_f64() * 1e3)) + "ms"
    } else if nanos < 1_000_000_000 {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        trim(format!("{:.2}", d.as_secs_f64())) + "s"
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Drops trailing zeros of a decimal, and the point if nothing follows.
fn trim(mut number: String) -> String {
    if number.contains('.') {
        number.truncate(number.trim_end_matches('0').trim_end_matches('.').len());
    }
    number
}

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        let ms = Duration::from_millis;
        assert_eq!(short(Duration::ZERO), "0s");
        assert_eq!(short(Duration::from_nanos(40)), "40ns");
        assert_eq!(short(Duration::from_micros(750)), "750µs");
        assert_eq!(short(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(short(ms(1)), "1ms");
        assert_eq!(short(ms(500)), "500ms");
        assert_eq!(short(ms(1250)), "1.25s");
        assert_eq!(short(ms(3000)), "3s");
        assert_eq!(short(Duration::from_secs(125)), "2m05s");
        assert_eq!(short(Duration::MAX), "unbounded");
    }

    #[test]
    fn columns_stay_on_the_timeline() {
        let span = Duration::from_secs(4);
        assert_eq!(column(Duration::ZERO, span), 0);
        assert_eq!(column(Duration::from_secs(2), span), BAR / 2);
        assert_eq!(column(Duration::from_secs(9), span), BAR);
        assert_eq!(column(Duration::from_secs(1), Duration::ZERO), 0);
    }
}
