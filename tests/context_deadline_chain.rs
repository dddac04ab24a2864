//! Property: along any chain of derivations with any limits, zero and
//! `Duration::MAX` included, every context's effective deadline is the
//! earliest deadline asked for along its chain, and nothing panics.
//!
//! A limit too far ahead to store (beyond about 272 years from the first
//! deadline the process stored) adds no deadline; one that far back reads
//! as the earliest stored deadline, which has passed just the same. Between
//! 200 and 300 years ahead either answer is accepted, since where the line
//! falls depends on when the process stored its first deadline.

use std::future::{ready, Ready};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tokio_ctx::future::Timeout;
use tokio_ctx::Context;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Any duration, with the edges drawn often.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_nanos(1)),
        (0..10_000u64).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_nanos),
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
        (150..350u64).prop_map(|years| YEAR * years as u32),
    ]
}

#[derive(Debug, Clone)]
enum Derive {
    Child,
    Named,
    Timeout(Duration),
    DeadlineAhead(Duration),
    DeadlineBehind(Duration),
    Value(u8),
    StepTimeout(Duration),
    StepDeadline(Duration),
    WithoutCancel,
    Cleanup(Duration),
}

fn derive() -> impl Strategy<Value = Derive> {
    prop_oneof![
        Just(Derive::Child),
        Just(Derive::Named),
        duration().prop_map(Derive::Timeout),
        duration().prop_map(Derive::DeadlineAhead),
        duration().prop_map(Derive::DeadlineBehind),
        any::<u8>().prop_map(Derive::Value),
        duration().prop_map(Derive::StepTimeout),
        duration().prop_map(Derive::StepDeadline),
        Just(Derive::WithoutCancel),
        duration().prop_map(Derive::Cleanup),
    ]
}

/// What a derivation asks for, relative to now.
enum Asked {
    Nothing,
    Ahead(Duration),
    Behind(Duration),
}

/// The context `step` derives from `parent`, whether it starts a new chain
/// (`without_cancel`), and what it asked for. Steps are kept in `steps`:
/// a step that is dropped cancels its child.
fn apply(
    parent: &Context,
    step: &Derive,
    now: Instant,
    steps: &mut Vec<Timeout<Ready<()>>>,
) -> (Context, bool, Asked) {
    let mut run_step = |step: Timeout<Ready<()>>| {
        let child = step.context().expect("a step that has not run has a child");
        steps.push(step);
        child
    };
    let new = |(ctx, _)| ctx;
    match *step {
        Derive::Child => (new(parent.child()), false, Asked::Nothing),
        Derive::Named => (new(parent.named("named").child()), false, Asked::Nothing),
        Derive::Timeout(d) => (new(parent.child_with_timeout(d)), false, Asked::Ahead(d)),
        Derive::DeadlineAhead(d) => match now.checked_add(d) {
            Some(at) => (new(parent.child_with_deadline(at)), false, Asked::Ahead(d)),
            // No instant that far ahead exists to be asked for.
            None => (new(parent.child()), false, Asked::Nothing),
        },
        Derive::DeadlineBehind(d) => match now.checked_sub(d) {
            Some(at) => (new(parent.child_with_deadline(at)), false, Asked::Behind(d)),
            None => (new(parent.child()), false, Asked::Nothing),
        },
        Derive::Value(v) => (parent.with_value(v), false, Asked::Nothing),
        Derive::StepTimeout(d) => {
            let child = run_step(parent.with_timeout(d, |_| ready(())));
            (child, false, Asked::Ahead(d))
        }
        Derive::StepDeadline(d) => match now.checked_add(d) {
            Some(at) => {
                let child = run_step(parent.with_deadline(at, |_| ready(())));
                (child, false, Asked::Ahead(d))
            }
            None => (new(parent.child()), false, Asked::Nothing),
        },
        Derive::WithoutCancel => (parent.without_cancel(), true, Asked::Nothing),
        Derive::Cleanup(d) => {
            let child = run_step(parent.cleanup(d, |_| ready(())));
            (child, true, Asked::Ahead(d))
        }
    }
}

fn check_chain(chain: &[Derive]) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _time = runtime.enter();
    // Paused: `now` is the same instant for the whole chain.
    let now = Instant::now();
    let mut ctx = Context::background();
    // The earliest deadline asked for since the last reset, as stored.
    let mut earliest: Option<Instant> = None;
    let mut steps = Vec::new();
    for step in chain {
        let (child, new_chain, asked) = apply(&ctx, step, now, &mut steps);
        let inherited = if new_chain { None } else { earliest };
        let got = child.deadline();
        match asked {
            Asked::Nothing => prop_assert_eq!(got, inherited, "{:?}", step),
            Asked::Ahead(d) => {
                let exact = now + d.min(400 * YEAR);
                let with = Some(inherited.map_or(exact, |i| i.min(exact)));
                if d < 200 * YEAR {
                    prop_assert_eq!(got, with, "{:?}", step);
                } else if d > 300 * YEAR {
                    prop_assert_eq!(got, inherited, "{:?}: too far ahead to store", step);
                } else {
                    prop_assert!(got == with || got == inherited, "{:?}: {:?}", step, got);
                }
            }
            Asked::Behind(d) => {
                let at = now - d;
                let with = Some(inherited.map_or(at, |i| i.min(at)));
                if d < 200 * YEAR {
                    prop_assert_eq!(got, with, "{:?}", step);
                } else {
                    // Stored as the earliest deadline there is: passed.
                    let got = got.expect("a deadline in the past is kept");
                    prop_assert!(got <= now - 200 * YEAR, "{:?}: {:?}", step, got);
                }
            }
        }
        // Deriving only tightens, and a deadline that has come is an end.
        if let (Some(parent), Some(got)) = (inherited, got) {
            prop_assert!(got <= parent);
        }
        prop_assert_eq!(child.is_done(), got.is_some_and(|d| d <= now));
        prop_assert_eq!(
            child.remaining(),
            got.map(|d| d.saturating_duration_since(now))
        );
        if let Some(err) = child.err() {
            prop_assert!(err.is_deadline_exceeded());
        }
        earliest = got;
        ctx = child;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_effective_deadline_is_the_earliest_along_the_chain(
        chain in proptest::collection::vec(derive(), 1..16)
    ) {
        check_chain(&chain)?;
    }
}

#[test]
fn the_edges_by_hand() {
    // The cases the strategy draws often, spelled out so that they run
    // on every seed.
    use Derive::*;
    let max = Duration::MAX;
    for chain in [
        vec![Timeout(max), Timeout(Duration::ZERO), Timeout(max)],
        vec![
            DeadlineAhead(YEAR * 250),
            Timeout(YEAR * 100),
            WithoutCancel,
            Child,
        ],
        vec![
            DeadlineBehind(Duration::from_secs(5)),
            Timeout(max),
            Cleanup(max),
        ],
        vec![
            StepTimeout(Duration::ZERO),
            StepDeadline(max),
            Value(1),
            Named,
        ],
        vec![DeadlineBehind(YEAR * 400), Timeout(Duration::ZERO)],
    ] {
        check_chain(&chain).unwrap();
    }
}
