//! Every combinator of the crate, interrupted at every await by
//! `test_util::cancel_at_every_await`: dropped there, or its caller's
//! context canceled there. After each run: every permit is back, every
//! branch that started was cleaned up, no task is left running, nothing a
//! branch produced is lost, the ambient context is restored, and an
//! interrupted combinator reports the caller's cancellation with its cause.
#![cfg(feature = "test-util")]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::time::{self, Instant};
use tokio_ctx::test_util::{cancel_at_every_await, Outcome, Report, CAUSE};
use tokio_ctx::{Context, Either, Error, ScopeError, SelectError, TryJoinError};

const MS: Duration = Duration::from_millis(1);
/// Fewer permits than branches, so that some branches wait in the
/// semaphore's queue and are interrupted there too.
const PERMITS: usize = 2;

/// A value the combinators' caller carries, to tell whether the ambient
/// context leaked out of a combinator that was interrupted.
struct Caller;

/// The state one run shares between the future and its check.
#[derive(Clone)]
struct Probe(Arc<ProbeState>);

struct ProbeState {
    permits: Arc<Semaphore>,
    started: AtomicUsize,
    cleaned_up: AtomicUsize,
    produced: Mutex<Vec<usize>>,
}

/// Counts one cleanup when a branch's future is dropped, however it ends.
struct Cleanup(Probe);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0 .0.cleaned_up.fetch_add(1, Ordering::SeqCst);
    }
}

impl Probe {
    fn new() -> Self {
        Probe(Arc::new(ProbeState {
            permits: Arc::new(Semaphore::new(PERMITS)),
            started: AtomicUsize::new(0),
            cleaned_up: AtomicUsize::new(0),
            produced: Mutex::new(Vec::new()),
        }))
    }

    /// A branch: holds a permit for `steps` sleeps of `id + 1` ms, then
    /// records and returns `id`.
    fn work(&self, id: usize, steps: u32) -> impl Future<Output = usize> + Send + 'static {
        let probe = self.clone();
        async move {
            probe.0.started.fetch_add(1, Ordering::SeqCst);
            let _cleanup = Cleanup(probe.clone());
            let _permit = Arc::clone(&probe.0.permits).acquire_owned().await.unwrap();
            for _ in 0..steps {
                time::sleep(MS * (id as u32 + 1)).await;
            }
            probe.0.produced.lock().unwrap().push(id);
            id
        }
    }

    /// A branch that fails with `id` after its work.
    fn fail(&self, id: usize, steps: u32) -> impl Future<Output = Result<usize, String>> + Send {
        let work = self.work(id, steps);
        async move { Err(format!("branch {} failed", work.await)) }
    }

    fn produced(&self) -> Vec<usize> {
        let mut produced = self.0.produced.lock().unwrap().clone();
        produced.sort_unstable();
        produced
    }

    /// What every run must leave behind, whatever the outcome.
    fn assert_released(&self) {
        assert_eq!(
            self.0.permits.available_permits(),
            PERMITS,
            "every permit is back"
        );
        assert_eq!(
            self.0.cleaned_up.load(Ordering::SeqCst),
            self.0.started.load(Ordering::SeqCst),
            "every branch that started was cleaned up"
        );
        assert!(
            Context::current().value::<Caller>().is_none(),
            "the ambient context was restored"
        );
    }
}

/// The caller's context as the combinators get it.
fn caller(ctx: Context) -> Context {
    ctx.with_value(Caller)
}

/// The error of a combinator whose caller's context was canceled by the
/// utility; `own` says whether the combinator reads it from that context
/// itself rather than from a child.
fn assert_interrupted(err: &Error, own: bool) {
    assert!(err.is_canceled(), "{err:?}");
    assert_eq!(err.cause().map(|c| c.to_string()).as_deref(), Some(CAUSE));
    assert_eq!(err.is_own(), own, "{err:?}");
    assert_eq!(err.context_name(), Some("cancel_at_every_await"));
}

/// Interrupts happened at several awaits: a test that stopped covering
/// anything would fail here rather than pass quietly.
fn assert_covered(report: &Report, at_least: usize) {
    assert!(report.polls() >= at_least, "{report:?}");
    assert_eq!(report.runs(), 2 * report.polls() - 1, "{report:?}");
}

#[test]
fn run() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let fut = caller(ctx).run(probe.work(0, 3));
        (fut, move |outcome: Outcome<Result<usize, Error>>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => assert_eq!(out.unwrap(), 0),
                Outcome::Canceled { output, .. } => assert_interrupted(&output.unwrap_err(), true),
                _ => {}
            }
        })
    });
    assert_covered(&report, 4);
}

#[test]
fn with_timeout_that_is_not_reached() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let work = probe.work(1, 3);
        let fut = caller(ctx).with_timeout(Duration::from_secs(3600), |_| work);
        (fut, move |outcome: Outcome<Result<usize, Error>>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => assert_eq!(out.unwrap(), 1),
                Outcome::Canceled { output, .. } => assert_interrupted(&output.unwrap_err(), false),
                _ => {}
            }
        })
    });
    assert_covered(&report, 4);
}

#[test]
fn with_timeout_whose_own_limit_fires() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let work = probe.work(2, 10);
        let fut = caller(ctx).named("step").with_timeout(10 * MS, |_| work);
        (fut, move |outcome: Outcome<Result<usize, Error>>| {
            probe.assert_released();
            assert!(probe.produced().is_empty(), "30ms of work in a 10ms step");
            match outcome {
                Outcome::Completed(out) => {
                    let err = out.unwrap_err();
                    assert!(err.is_deadline_exceeded() && err.is_own(), "{err:?}");
                    assert_eq!(err.context_name(), Some("step"));
                }
                Outcome::Canceled { output, .. } => assert_interrupted(&output.unwrap_err(), false),
                _ => {}
            }
        })
    });
    assert_covered(&report, 3);
}

#[test]
fn with_deadline() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let work = probe.work(0, 4);
        let fut = caller(ctx).with_deadline(Instant::now() + 2 * MS, |_| work);
        (fut, move |outcome: Outcome<Result<usize, Error>>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => {
                    let err = out.unwrap_err();
                    assert!(err.is_deadline_exceeded() && err.is_own(), "{err:?}");
                    assert_eq!(err.budget(), Some(2 * MS));
                }
                Outcome::Canceled { output, .. } => assert_interrupted(&output.unwrap_err(), false),
                _ => {}
            }
        })
    });
    assert_covered(&report, 3);
}

#[test]
fn race() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let branches = [(0, 3), (1, 3), (2, 1)].map(|(id, steps)| {
            let work = probe.work(id, steps);
            move |_ctx: Context| work
        });
        let fut = caller(ctx).race(branches);
        (
            fut,
            move |outcome: Outcome<Result<(usize, usize), Error>>| {
                probe.assert_released();
                match outcome {
                    Outcome::Completed(out) => {
                        // Branch 2 waits for a permit until branch 0 is done.
                        assert_eq!(out.unwrap(), (0, 0));
                        assert_eq!(probe.produced(), vec![0], "the losers were stopped");
                    }
                    Outcome::Canceled { output, .. } => {
                        assert_interrupted(&output.unwrap_err(), true)
                    }
                    _ => {}
                }
            },
        )
    });
    assert_covered(&report, 4);
}

#[test]
fn race_either() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let (slow, fast) = (probe.work(0, 20), probe.work(1, 2));
        let fut =
            caller(ctx).race_either(|_| slow, |_| async move { format!("fast {}", fast.await) });
        (
            fut,
            move |outcome: Outcome<Result<Either<usize, String>, Error>>| {
                probe.assert_released();
                match outcome {
                    Outcome::Completed(out) => {
                        assert!(matches!(out.unwrap(), Either::Right(s) if s == "fast 1"));
                    }
                    Outcome::Canceled { output, .. } => {
                        assert_interrupted(&output.unwrap_err(), true)
                    }
                    _ => {}
                }
            },
        )
    });
    assert_covered(&report, 3);
}

#[test]
fn select_first() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let branches: Vec<_> = (0..3)
            .map(|id| {
                let probe = probe.clone();
                move |_ctx: Context| async move {
                    match id {
                        0 => probe.fail(0, 1).await,
                        _ => Ok(probe.work(id, 2).await),
                    }
                }
            })
            .collect();
        let fut = caller(ctx).select_first(branches);
        type Out = Result<(usize, usize), SelectError<String>>;
        (fut, move |outcome: Outcome<Out>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => {
                    assert_eq!(out.unwrap(), (1, 1));
                    assert_eq!(probe.produced(), vec![0, 1]);
                }
                Outcome::Canceled { output, .. } => {
                    let err = output.unwrap_err();
                    assert_interrupted(err.ended().expect("the context ended"), true);
                }
                _ => {}
            }
        })
    });
    assert_covered(&report, 4);
}

#[test]
fn join_all() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let branches = [3, 1, 2].map(|id| {
            let work = probe.work(id, 2);
            move |_ctx: Context| work
        });
        let fut = caller(ctx).join_all(branches);
        (fut, move |outcome: Outcome<Result<Vec<usize>, Error>>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => {
                    assert_eq!(out.unwrap(), vec![3, 1, 2], "in input order");
                    assert_eq!(probe.produced(), vec![1, 2, 3], "nothing lost");
                }
                Outcome::Canceled { output, .. } => assert_interrupted(&output.unwrap_err(), true),
                _ => {}
            }
        })
    });
    assert_covered(&report, 5);
}

#[test]
fn try_join_all() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let branches: Vec<_> = (0..3)
            .map(|id| {
                let probe = probe.clone();
                move |_ctx: Context| async move {
                    match id {
                        1 => probe.fail(1, 3).await,
                        _ => Ok(probe.work(id, 30).await),
                    }
                }
            })
            .collect();
        let fut = caller(ctx).try_join_all(branches);
        (
            fut,
            move |outcome: Outcome<Result<Vec<usize>, TryJoinError<String>>>| {
                probe.assert_released();
                match outcome {
                    Outcome::Completed(out) => {
                        let err = out.unwrap_err();
                        assert!(
                            matches!(&err, TryJoinError::Failed { index: 1, error } if error == "branch 1 failed"),
                            "{err:?}"
                        );
                        assert_eq!(probe.produced(), vec![1], "the siblings were stopped");
                    }
                    Outcome::Canceled { output, .. } => match output.unwrap_err() {
                        TryJoinError::Ended(err) => assert_interrupted(&err, true),
                        other => panic!("{other:?}"),
                    },
                    _ => {}
                }
            },
        )
    });
    assert_covered(&report, 3);
}

#[test]
fn settle() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let branches = [0, 1, 2].map(|id| {
            let work = probe.work(id, 2);
            move |_ctx: Context| work
        });
        let fut = caller(ctx).settle(branches);
        (fut, move |outcome: Outcome<Vec<Result<usize, Error>>>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => {
                    let out: Vec<usize> = out.into_iter().map(Result::unwrap).collect();
                    assert_eq!(out, vec![0, 1, 2]);
                }
                Outcome::Canceled { output, .. } => {
                    // Every outcome is reported: what finished before the
                    // cancel, and the caller's own error for the rest.
                    let mut finished = Vec::new();
                    for (id, out) in output.into_iter().enumerate() {
                        match out {
                            Ok(value) => {
                                assert_eq!(value, id);
                                finished.push(id);
                            }
                            Err(err) => assert_interrupted(&err, true),
                        }
                    }
                    assert_eq!(finished, probe.produced(), "nothing produced was lost");
                }
                _ => {}
            }
        })
    });
    assert_covered(&report, 4);
}

#[test]
fn as_completed() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let consumed = Arc::new(Mutex::new(Vec::new()));
        // 2 and 0 take the permits; 1 starts when 0 is done (2ms) and ends
        // at 8ms, after 2 (6ms).
        let branches = [(2, 2), (0, 2), (1, 3)].map(|(id, steps)| {
            let work = probe.work(id, steps);
            move |_ctx: Context| work
        });
        let mut stream = caller(ctx).as_completed(branches);
        let fut = {
            let consumed = Arc::clone(&consumed);
            async move {
                while let Some(next) = stream.next().await {
                    let (_, id) = next?;
                    consumed.lock().unwrap().push(id);
                    // The consumer is slow: the branches go on meanwhile.
                    time::sleep(MS).await;
                }
                Ok::<_, Error>(())
            }
        };
        (fut, move |outcome: Outcome<Result<(), Error>>| {
            probe.assert_released();
            let consumed = consumed.lock().unwrap().clone();
            match outcome {
                Outcome::Completed(out) => {
                    out.unwrap();
                    assert_eq!(consumed, vec![0, 2, 1], "in completion order");
                }
                Outcome::Canceled { output, .. } => {
                    // Outputs that arrived before the cancel were yielded
                    // before its error; a stream that had yielded them all
                    // is simply over.
                    match output {
                        Ok(()) => assert_eq!(consumed, vec![0, 2, 1]),
                        Err(err) => assert_interrupted(&err, true),
                    }
                    let mut consumed = consumed;
                    consumed.sort_unstable();
                    assert_eq!(consumed, probe.produced(), "nothing produced was lost");
                }
                _ => {}
            }
        })
    });
    assert_covered(&report, 5);
}

#[test]
fn stream_with_item_timeout() {
    // Items come from a shared queue, taken only when the stream yields
    // them: an interrupted stream must leave every item it did not yield
    // in the queue. Item 2 is slower than its limit once.
    let report = cancel_at_every_await(|ctx| {
        let queue = Arc::new(Mutex::new((0..4).collect::<VecDeque<u32>>()));
        let consumed = Arc::new(Mutex::new(Vec::new()));
        let source = {
            let queue = Arc::clone(&queue);
            futures::stream::unfold(0u32, move |n| {
                let queue = Arc::clone(&queue);
                async move {
                    let pause = if n == 2 { 15 * MS } else { 2 * MS };
                    time::sleep(pause).await;
                    let item = queue.lock().unwrap().pop_front()?;
                    Some((item, n + 1))
                }
            })
        };
        let stream = caller(ctx)
            .named("item")
            .stream(source)
            .item_timeout(10 * MS);
        let fut = {
            let consumed = Arc::clone(&consumed);
            async move {
                let mut stream = std::pin::pin!(stream);
                let mut item_timeouts = 0;
                while let Some(next) = stream.next().await {
                    match next {
                        Ok(item) => consumed.lock().unwrap().push(item),
                        Err(err) if err.is_own() => item_timeouts += 1,
                        Err(err) => return Err(err),
                    }
                }
                Ok(item_timeouts)
            }
        };
        (fut, move |outcome: Outcome<Result<u32, Error>>| {
            let consumed = consumed.lock().unwrap().clone();
            let left: Vec<u32> = queue.lock().unwrap().iter().copied().collect();
            let all: Vec<u32> = consumed.iter().chain(&left).copied().collect();
            assert_eq!(
                all,
                vec![0, 1, 2, 3],
                "every item was yielded or is still queued"
            );
            assert!(Context::current().value::<Caller>().is_none());
            match outcome {
                Outcome::Completed(out) => assert_eq!(out.unwrap(), 1, "one item was late"),
                Outcome::Canceled { output, .. } => {
                    let err = output.unwrap_err();
                    assert!(err.is_canceled() && !err.is_own(), "{err:?}");
                    assert_eq!(err.cause().unwrap().to_string(), CAUSE);
                }
                _ => {}
            }
        })
    });
    assert_covered(&report, 6);
}

#[test]
fn scope() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let body_probe = probe.clone();
        let fut = caller(ctx).scope(move |scope| async move {
            let handles: Vec<_> = (0..3)
                .map(|id| {
                    let work = body_probe.work(id, 2);
                    scope.spawn(move |_ctx| async move { Ok::<_, String>(work.await) })
                })
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.map_err(|e| e.to_string())?;
            }
            Ok(sum)
        });
        (
            fut,
            move |outcome: Outcome<Result<usize, ScopeError<String>>>| {
                probe.assert_released();
                match outcome {
                    Outcome::Completed(out) => {
                        assert_eq!(out.unwrap(), 3);
                        assert_eq!(probe.produced(), vec![0, 1, 2]);
                    }
                    // As with errgroup, a scope whose tasks all returned
                    // `Ok` is `Ok`, even when the caller's end reached them
                    // first: here the work ignores its context and finishes
                    // within the grace period. Anything else must carry the
                    // caller's end.
                    Outcome::Canceled {
                        output: Ok(sum), ..
                    } => {
                        assert_eq!(sum, 3);
                        assert_eq!(probe.produced(), vec![0, 1, 2]);
                    }
                    Outcome::Canceled {
                        output: Err(err), ..
                    } => {
                        assert_interrupted(err.ended().expect("the caller's end"), true);
                    }
                    _ => {}
                }
            },
        )
    });
    assert_covered(&report, 4);
}

#[test]
fn spawn() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let work = probe.work(4, 3);
        let fut = caller(ctx).spawn(move |_ctx| work);
        (fut, move |outcome: Outcome<Result<usize, Error>>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(out) => assert_eq!(out.unwrap(), 4),
                Outcome::Canceled { output, .. } => assert_interrupted(&output.unwrap_err(), false),
                _ => {}
            }
        })
    });
    // The task runs on its own: the handle is woken once it is done.
    assert_covered(&report, 2);
}

#[test]
fn cleanup_is_not_stopped_by_the_callers_cancellation() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let work = probe.work(0, 3);
        let fut = caller(ctx).cleanup(Duration::from_secs(1), |_| work);
        (fut, move |outcome: Outcome<Result<usize, Error>>| {
            probe.assert_released();
            match outcome {
                // Only dropping stops a cleanup.
                Outcome::Completed(out) | Outcome::Canceled { output: out, .. } => {
                    assert_eq!(out.unwrap(), 0);
                    assert_eq!(probe.produced(), vec![0]);
                }
                _ => {}
            }
        })
    });
    assert_covered(&report, 4);
}

#[test]
fn done() {
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let (step, _cancel) = caller(ctx).named("step").child_with_timeout(5 * MS);
        let work = probe.work(0, 2);
        let fut = async move {
            work.await;
            step.done().await
        };
        (fut, move |outcome: Outcome<Error>| {
            probe.assert_released();
            match outcome {
                Outcome::Completed(err) => {
                    assert!(err.is_deadline_exceeded() && err.is_own(), "{err:?}");
                    assert_eq!(err.context_name(), Some("step"));
                }
                Outcome::Canceled { output, .. } => assert_interrupted(&output, false),
                _ => {}
            }
        })
    });
    assert_covered(&report, 4);
}

#[test]
fn nested_steps_race_in_a_scope_task() {
    // What a handler does: a scope whose task races two replicas, each a
    // step with its own limit.
    let report = cancel_at_every_await(|ctx| {
        let probe = Probe::new();
        let body_probe = probe.clone();
        let fut = caller(ctx).scope(move |scope| async move {
            let task = scope.spawn(move |ctx: Context| async move {
                // Replica 1 is done after 4 ms, replica 0 after 5: a tie
                // would go to the lower index (both polled in one round).
                let replicas = [(0, 5), (1, 2)].map(|(id, steps)| {
                    let work = body_probe.work(id, steps);
                    move |ctx: Context| async move { ctx.with_timeout(50 * MS, |_| work).await }
                });
                match ctx.race(replicas).await {
                    Ok((_, Ok(id))) => Ok(id),
                    Ok((_, Err(e))) | Err(e) => Err(e.to_string()),
                }
            });
            task.await.map_err(|e| e.to_string())
        });
        (
            fut,
            move |outcome: Outcome<Result<usize, ScopeError<String>>>| {
                probe.assert_released();
                match outcome {
                    Outcome::Completed(out) => assert_eq!(out.unwrap(), 1),
                    Outcome::Canceled { output, .. } => {
                        let err = output.unwrap_err();
                        assert_interrupted(err.ended().expect("the caller's end"), true);
                    }
                    _ => {}
                }
            },
        )
    });
    assert_covered(&report, 3);
}
