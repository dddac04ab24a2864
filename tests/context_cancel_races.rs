//! A cancellation racing checks and cancels on other threads: whoever has
//! seen a context canceled sees every context below it canceled too, with
//! the first cause.
//!
//! The interleavings themselves are model-checked in `src/core/loom_tests.rs`;
//! these tests run the real code on real threads, many times, so that a
//! window between two steps of a cancellation shows.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use tokio_ctx::{CancelHandle, Context};

/// A parent, its handle and a child.
type Family = (Context, CancelHandle, Context);
/// A parent and a child, with their handles.
type Family2 = (Context, CancelHandle, Context, CancelHandle);

/// Rounds per test. Before the epoch counted cancellations in flight, a
/// debug build on two cores saw the first race about fifty times in ten
/// thousand rounds and the second a few times.
const ROUNDS: usize = 10_000;

type Step<S> = Box<dyn Fn(&S) + Send + Sync>;

/// Runs `rounds` rounds: `setup` on this thread, then every step on a
/// thread of its own, all started together.
fn race<S: Send + Sync + 'static>(rounds: usize, setup: impl Fn() -> S, steps: Vec<Step<S>>) {
    let slot: Arc<std::sync::Mutex<Option<Arc<S>>>> = Arc::default();
    let start = Arc::new(Barrier::new(steps.len() + 1));
    let end = Arc::new(Barrier::new(steps.len() + 1));
    let threads: Vec<_> = steps
        .into_iter()
        .map(|step| {
            let slot = Arc::clone(&slot);
            let start = Arc::clone(&start);
            let end = Arc::clone(&end);
            thread::spawn(move || {
                for _ in 0..rounds {
                    start.wait();
                    let state = slot.lock().unwrap().clone().unwrap();
                    step(&state);
                    drop(state);
                    end.wait();
                }
            })
        })
        .collect();
    for _ in 0..rounds {
        *slot.lock().unwrap() = Some(Arc::new(setup()));
        start.wait();
        end.wait();
    }
    for thread in threads {
        thread.join().unwrap();
    }
}

/// Registers and drops a waiter on `ctx` until it ends: the canceling
/// thread then often finds the context's lock contended, and releasing it
/// takes a system call, which widens any window in the cancellation.
fn contend(ctx: &Context) {
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    while !ctx.is_done() {
        let mut done = std::pin::pin!(ctx.done());
        let _ = done.as_mut().poll(&mut cx);
    }
}

#[test]
fn a_context_seen_canceled_has_every_descendant_canceled() {
    let torn = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&torn);
    race(
        ROUNDS,
        || {
            let (parent, cancel) = Context::background().child().0.child();
            let (child, _) = parent.child();
            // A live check remembers the epoch: the next one takes the shortcut.
            assert!(!child.is_done());
            (parent, cancel, child)
        },
        vec![
            Box::new(|(_, cancel, _): &Family| cancel.cancel()),
            Box::new(|(parent, _, _)| contend(parent)),
            Box::new(move |(parent, _, child)| {
                while !parent.is_done() {
                    std::hint::spin_loop();
                }
                if !child.is_done() {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }),
        ],
    );
    assert_eq!(
        torn.load(Ordering::Relaxed),
        0,
        "rounds in which the parent read canceled and then its child read live"
    );
}

#[test]
fn a_descendant_canceled_after_its_parent_was_seen_canceled_keeps_the_parents_cause() {
    let inverted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&inverted);
    race(
        ROUNDS,
        || {
            let (parent, cancel) = Context::background().child().0.child();
            let (child, cancel_child) = parent.child();
            assert!(!child.is_done());
            (parent, cancel, child, cancel_child)
        },
        vec![
            Box::new(|(_, cancel, _, _): &Family2| cancel.cancel_with("parent")),
            Box::new(|(parent, _, _, _)| contend(parent)),
            Box::new(move |(parent, _, child, cancel_child)| {
                while !parent.is_done() {
                    std::hint::spin_loop();
                }
                // The parent has ended, so the child has: this changes nothing.
                cancel_child.cancel_with("child");
                let err = child.err().expect("the child ended with its parent");
                if err.cause().map(ToString::to_string).as_deref() != Some("parent") || err.is_own()
                {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }),
        ],
    );
    assert_eq!(
        inverted.load(Ordering::Relaxed),
        0,
        "rounds in which a cancel after the parent's won with its own cause"
    );
}
