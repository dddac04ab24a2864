//! The budget report: every stage below it, with its budget asked for and
//! granted, what was left at its start, when it started, how long it took
//! and how it ended; nothing recorded anywhere else.

use std::future::pending;
use std::time::Duration;

use tokio::time::{self, Instant};
use tokio_ctx::report::Outcome;
use tokio_ctx::Context;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn each_stage_records_its_budget_time_and_outcome() {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    let (request, report) = request.with_budget_report();
    assert_eq!(report.name(), Some("request"));
    assert_eq!(report.budget(), Some(Duration::from_secs(1)));

    time::advance(10 * MS).await;
    request
        .named("lookup")
        .with_timeout(300 * MS, |_ctx| time::sleep(40 * MS))
        .await
        .unwrap();
    let _ = request
        .named("first try")
        .with_timeout(100 * MS, |_ctx| pending::<()>())
        .await;
    let winner = request
        .named("mirror")
        .race([20u32, 60].map(|ms| move |_ctx| time::sleep(ms * MS)))
        .await
        .unwrap();
    assert_eq!(winner.0, 0);
    let refused = request
        .named("report query")
        .min_budget(Duration::from_secs(2))
        .run(async {})
        .await;
    assert!(refused.unwrap_err().is_insufficient_budget());
    let (cancelled, cancel) = request.named("side job").child();
    cancel.cancel_with("not needed");
    drop(cancelled);
    let _ = request
        .named("render")
        .with_timeout(Duration::from_secs(5), |_ctx| pending::<()>())
        .await;

    let stages = report.stages();
    let names: Vec<_> = stages.iter().map(|s| s.label()).collect();
    assert_eq!(
        names,
        [
            "lookup",
            "first try",
            "mirror[0]",
            "mirror[1]",
            "report query",
            "side job",
            "render"
        ]
    );
    let outcome = |i: usize| stages[i].outcome();
    assert_eq!(
        (0..7).map(outcome).collect::<Vec<_>>(),
        [
            Outcome::Completed,
            Outcome::OwnDeadline,
            Outcome::Completed,
            Outcome::LostRace,
            Outcome::Refused,
            Outcome::Canceled,
            Outcome::InheritedDeadline,
        ]
    );

    let lookup = &stages[0];
    assert_eq!(lookup.asked(), Some(300 * MS));
    assert_eq!(lookup.granted(), Some(300 * MS));
    assert_eq!(lookup.remaining_at_start(), Some(990 * MS));
    assert_eq!(lookup.started(), 10 * MS);
    assert_eq!(lookup.took(), Some(40 * MS));
    assert!(!lookup.is_clipped());
    assert!(lookup.error().is_none());

    assert_eq!(stages[1].took(), Some(100 * MS));
    assert!(stages[1].error().unwrap().is_own());
    assert_eq!(stages[3].took(), Some(20 * MS), "lost when the other won");
    assert_eq!(stages[4].took(), Some(Duration::ZERO));
    assert_eq!(
        stages[4].error().unwrap().min_budget(),
        Some(Duration::from_secs(2))
    );
    assert!(stages[5].error().unwrap().cause_is("not needed"));

    let render = &stages[6];
    assert_eq!(render.asked(), Some(Duration::from_secs(5)));
    assert_eq!(render.granted(), Some(830 * MS), "clipped to what was left");
    assert!(render.is_clipped());
    assert_eq!(
        render.started() + render.took().unwrap(),
        Duration::from_secs(1)
    );
    assert_eq!(render.error().unwrap().context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn stages_nest_and_a_running_one_says_so() {
    let (ctx, report) = Context::background().with_budget_report();
    let (outer, _cancel) = ctx.named("outer").child();
    let (inner, _) = outer.named("inner").child_with_timeout(50 * MS);
    let stages = report.stages();
    assert_eq!((stages[0].depth(), stages[0].parent()), (0, None));
    assert_eq!((stages[1].depth(), stages[1].parent()), (1, Some(0)));
    assert_eq!(stages[0].outcome(), Outcome::Running);
    assert_eq!(stages[0].took(), None);

    // Ended while still held: the report asks the context.
    time::advance(50 * MS).await;
    let stages = report.stages();
    assert_eq!(stages[1].outcome(), Outcome::OwnDeadline);
    assert_eq!(stages[1].took(), Some(50 * MS));
    assert_eq!(stages[0].outcome(), Outcome::Running);
    drop(inner);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_step_is_reported_dropped() {
    let (ctx, report) = Context::background().with_budget_report();
    let step = ctx
        .named("slow")
        .with_timeout(Duration::from_secs(1), |_ctx| pending::<()>());
    let _ = time::timeout(30 * MS, step).await;
    let stages = report.stages();
    assert_eq!(stages[0].outcome(), Outcome::Dropped);
    assert_eq!(stages[0].took(), Some(30 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_reserves_cleanup_is_a_stage_of_the_report() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (request, report) = request.with_budget_report();
    let (work, reserve) = request.named("work").reserve(100 * MS);
    let _ = work.run(pending::<()>()).await;
    reserve
        .named("close")
        .cleanup(|_ctx| time::sleep(10 * MS))
        .await
        .unwrap();
    let stages = report.stages();
    let close = stages.iter().find(|s| s.name() == Some("close")).unwrap();
    assert_eq!(close.granted(), Some(100 * MS));
    assert_eq!(close.started(), 900 * MS);
    assert_eq!(close.took(), Some(10 * MS));
    assert_eq!(close.outcome(), Outcome::Completed);
    let work = stages.iter().find(|s| s.name() == Some("work")).unwrap();
    assert_eq!(work.outcome(), Outcome::OwnDeadline);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_recorded_outside_the_report() {
    let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
    let (reported, report) = request.with_budget_report();
    let (_before, _) = request.named("beside").child();
    request
        .named("beside too")
        .with_timeout(MS, |_ctx| async {})
        .await
        .unwrap();
    let (_inside, _) = reported.named("inside").child();
    let names: Vec<_> = report.stages().iter().map(|s| s.label()).collect();
    assert_eq!(names, ["inside"]);
}

#[tokio::test(start_paused = true)]
async fn the_waterfall_and_the_picture_show_every_stage() {
    let (request, _) = Context::background()
        .named("request <&>")
        .child_with_timeout(Duration::from_secs(1));
    let (request, report) = request.with_budget_report();
    request
        .named("query")
        .with_timeout(400 * MS, |_ctx| time::sleep(100 * MS))
        .await
        .unwrap();
    let _ = request
        .named("render")
        .with_timeout(Duration::from_secs(5), |_ctx| pending::<()>())
        .await;
    let start = Instant::now();

    let text = report.waterfall();
    assert_eq!(format!("{report}"), text);
    let lines: Vec<_> = text.lines().collect();
    assert!(
        lines[0].starts_with(r#"budget report for "request <&>": budget 1s"#),
        "{text}"
    );
    let query = lines.iter().find(|l| l.starts_with("query")).unwrap();
    assert!(
        query.contains("400ms") && query.contains("100ms") && query.contains(" ok "),
        "{query}"
    );
    let render = lines.iter().find(|l| l.starts_with("render")).unwrap();
    assert!(render.contains("inherited deadline"), "{render}");
    assert!(render.contains(r#"("request <&>"'s deadline)"#), "{render}");
    assert!(render.contains('|') && render.contains('#'), "{render}");

    let svg = report.svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("&lt;&amp;&gt;"), "names are escaped");
    assert!(!svg.contains("<&>"));
    assert_eq!(svg.matches("<g>").count(), 2, "a row per stage");
    assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
    assert!(svg.contains("deadline 1s"));
    assert!(
        svg.contains("stroke-dasharray=\"3 2\""),
        "render asked for more"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}
