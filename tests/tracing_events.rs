//! With the `tracing` feature: one debug event per cancellation and one per
//! observed expiry, carrying the context's name, budget and cause; nothing
//! per poll.
#![cfg(feature = "tracing")]

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_ctx::Context;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records every event as `level message key=value ...`, and every span
/// as `span name key=value ...`, its later fields appended.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}", span.metadata().name());
        span.record(&mut Line(&mut line));
        let mut lines = self.0.lock().unwrap();
        lines.push(line);
        Id::from_u64(lines.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut lines = self.0.lock().unwrap();
        let index = span.into_u64() as usize - 1;
        values.record(&mut Line(&mut lines[index]));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[test]
fn a_cancellation_emits_one_debug_event_with_name_and_cause() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let (ctx, cancel) = Context::background().named("upload").child();
        let (_child, _) = ctx.child();
        cancel.cancel_with("disk full");
        cancel.cancel_with("again");
        assert!(ctx.is_done());
    });
    let lines = recorder.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(
        line.starts_with(&format!("{} tokio_ctx", Level::DEBUG)),
        "{line}"
    );
    assert!(line.contains("context canceled"), "{line}");
    assert!(line.contains("context=\"upload\""), "{line}");
    assert!(line.contains("cause=disk full"), "{line}");
}

#[test]
fn an_expiry_is_reported_once_however_often_it_is_observed() {
    let recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    rt.block_on(async {
        let (ctx, _) = Context::background()
            .named("connect")
            .child_with_timeout(Duration::from_millis(1));
        assert!(recorder.lines().is_empty(), "deriving says nothing");
        let waiter = ctx.done();
        assert!(waiter.await.is_deadline_exceeded());
        for _ in 0..10 {
            assert!(ctx.err().is_some());
        }
    });
    let lines = recorder.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("context deadline exceeded"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("context=\"connect\""), "{}", lines[0]);
    assert!(lines[0].contains("budget=Some(1ms)"), "{}", lines[0]);
}

#[test]
fn a_clipped_derivation_says_who_clipped_it() {
    let recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    rt.block_on(async {
        let (request, _) = Context::background()
            .named("request")
            .child_with_timeout(Duration::from_millis(1200));
        let (_within, _) = request
            .named("within")
            .child_with_timeout(Duration::from_secs(1));
        assert!(
            recorder.lines().is_empty(),
            "a step within the budget says nothing"
        );
        let (_clipped, _) = request
            .named("render")
            .child_with_timeout(Duration::from_secs(5));
    });
    let lines = recorder.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("DEBUG tokio_ctx"), "{line}");
    assert!(line.contains("context deadline clipped"), "{line}");
    assert!(line.contains("context=render"), "{line}");
    assert!(line.contains("parent=request"), "{line}");
    assert!(line.contains("asked=Some(5s)"), "{line}");
    assert!(line.contains("granted=Some(1.2s)"), "{line}");
}

#[test]
fn a_moved_deadline_says_from_where_to_where() {
    let recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    rt.block_on(async {
        let (_ctx, deadline) = Context::background()
            .named("lease")
            .child_with_movable_timeout(Duration::from_secs(30));
        deadline.reschedule_in(Duration::from_secs(60));
        deadline.reschedule_in(Duration::from_secs(60));
    });
    let lines = recorder.lines();
    assert_eq!(
        lines.len(),
        1,
        "a move to where it is says nothing: {lines:?}"
    );
    assert!(lines[0].contains("context deadline moved"), "{}", lines[0]);
    assert!(lines[0].contains("context=\"lease\""), "{}", lines[0]);
    assert!(
        lines[0].contains("from=Some(30s) to=Some(60s)"),
        "{}",
        lines[0]
    );
}

#[test]
fn each_reported_stage_is_a_span_with_its_budget_and_outcome() {
    let recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    rt.block_on(async {
        let (request, _) = Context::background().child_with_timeout(Duration::from_secs(1));
        let (request, _report) = request.with_budget_report();
        let _ = request
            .named("query")
            .with_timeout(Duration::from_millis(300), |_ctx| {
                std::future::pending::<()>()
            })
            .await;
    });
    let lines = recorder.lines();
    let span = lines
        .iter()
        .find(|l| l.starts_with("span stage"))
        .expect("a span for the stage");
    for field in [
        "name=query",
        "asked=Some(300ms)",
        "granted=Some(300ms)",
        "remaining=Some(1s)",
        "took=300ms",
        "outcome=own deadline",
    ] {
        assert!(span.contains(field), "{field} in {span}");
    }
}
