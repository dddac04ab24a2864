//! Prints the table of `docs/performance.md` from criterion's results: for
//! every case of `benches/peers.rs`, our median, the peer's, their ratio and
//! the target it is held to.
//!
//! ```text
//! cargo bench --bench peers
//! cargo run --release --example bench_report            # reads target/criterion
//! cargo run --release --example bench_report -- DIR...  # other criterion directories
//! ```
//!
//! Given several directories (copies of `target/criterion` from separate
//! runs), it reports the median over the runs of each figure, and the range
//! of the ratio: on a noisy machine one run can be off by a third.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The cases in the order of the performance issue, with their targets:
/// a ratio (ours / peer) or, with no peer, an absolute time in ns.
const CASES: &[(&str, Target)] = &[
    ("is_done live, no deadline", Target::Ratio(0.1)),
    ("is_done live, 64 deep", Target::Ratio(1.0)),
    ("is_done live, with deadline", Target::Ratio(1.2)),
    ("derive child + drop", Target::Ratio(0.5)),
    ("derive child with 1h timeout + drop", Target::Ratio(0.5)),
    ("derive + drop, two threads, one parent", Target::Ratio(0.3)),
    ("with_timeout(1h, ready)", Target::Ratio(0.9)),
    ("with_timeout(1h, pending once)", Target::Ratio(1.0)),
    ("race of 2, ready after 1 and 3 yields", Target::Ratio(1.0)),
    ("race! of 2, ready after 1 and 3 yields", Target::Ratio(1.0)),
    ("first poll + drop of done(), 64 deep", Target::Ratio(2.0)),
    (
        "cancel a root with 10,000 children, nobody waiting",
        Target::Ratio(0.5),
    ),
    (
        "cancel a root with 1,000 awaited children until all woke",
        Target::Ratio(0.8),
    ),
    ("value lookup 10 deep", Target::Nanos(30.0)),
    ("with_value on 10 deep + drop", Target::Watched),
];

#[derive(Clone, Copy)]
enum Target {
    Ratio(f64),
    Nanos(f64),
    /// No target: the cost is reported so that a change to it shows.
    Watched,
}

/// The median point estimate, in ns, of one benchmark.
fn median(dir: &Path) -> Option<f64> {
    let text = fs::read_to_string(dir.join("new").join("estimates.json")).ok()?;
    // The file is criterion's own; one field is all we need, so a search
    // beats a JSON dependency.
    let median = &text[text.find("\"median\":")?..];
    let estimate = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = estimate.find([',', '}'])?;
    estimate[..end].trim().parse().ok()
}

fn show(ns: f64) -> String {
    match ns {
        ns if ns >= 1_000_000.0 => format!("{:.2} ms", ns / 1_000_000.0),
        ns if ns >= 1_000.0 => format!("{:.1} µs", ns / 1_000.0),
        ns => format!("{ns:.2} ns"),
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn middle(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn main() -> ExitCode {
    let mut roots: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if roots.is_empty() {
        roots.push(PathBuf::from("target/criterion"));
    }
    if let Some(root) = roots.iter().find(|root| !root.is_dir()) {
        eprintln!(
            "no criterion results in {}: run `cargo bench --bench peers` first",
            root.display()
        );
        return ExitCode::FAILURE;
    }
    let runs = roots.len();
    if runs > 1 {
        println!("Medians of {runs} runs; the range is the lowest and highest ratio.\n");
        println!("| case | ours | peer | ratio | range | target | met |");
        println!("|---|---|---|---|---|---|---|");
    } else {
        println!("| case | ours | peer | ratio | target | met |");
        println!("|---|---|---|---|---|---|");
    }
    let mut missing = 0;
    for (case, target) in CASES {
        let groups: Vec<PathBuf> = roots.iter().map(|root| root.join(case)).collect();
        let of = |side: &str| -> Vec<f64> {
            groups
                .iter()
                .filter_map(|group| median(&group.join(side)))
                .collect()
        };
        let (ours_runs, peer_runs) = (of("ours"), of("peer"));
        let Some(ours) = middle(ours_runs.clone()) else {
            println!("| {case} | (not run) | | | | |");
            missing += 1;
            continue;
        };
        let ratios: Vec<f64> = groups
            .iter()
            .filter_map(|group| Some(median(&group.join("ours"))? / median(&group.join("peer"))?))
            .collect();
        let range = match (
            ratios.iter().copied().reduce(f64::min),
            ratios.iter().copied().reduce(f64::max),
        ) {
            (Some(low), Some(high)) if runs > 1 => format!(" {low:.2}–{high:.2} |"),
            _ if runs > 1 => " |".to_string(),
            _ => String::new(),
        };
        let peer = middle(peer_runs);
        let (peer_cell, ratio_cell, target_cell, met) = match (peer, target) {
            (Some(peer), Target::Ratio(limit)) => {
                // The median of the per-run ratios: each ratio pairs two
                // figures taken minutes apart, not hours.
                let ratio = middle(ratios).unwrap_or(ours / peer);
                (
                    show(peer),
                    format!("{ratio:.2}"),
                    format!("≤ {limit}"),
                    ratio <= *limit,
                )
            }
            (None, Target::Nanos(limit)) => (
                "—".to_string(),
                "—".to_string(),
                format!("≤ {limit} ns"),
                ours <= *limit,
            ),
            (None, Target::Watched) => ("—".into(), "—".into(), "—".into(), true),
            (_, _) => ("?".into(), "?".into(), "?".into(), false),
        };
        let met = match (target, met) {
            (Target::Watched, _) => "—",
            (_, true) => "yes",
            (_, false) => "no",
        };
        println!(
            "| {case} | {} | {peer_cell} | {ratio_cell} |{range} {target_cell} | {met} |",
            show(ours)
        );
    }
    if missing > 0 {
        eprintln!("{missing} case(s) have no results yet");
    }
    ExitCode::SUCCESS
}
