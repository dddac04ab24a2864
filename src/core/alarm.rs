//! Alarms: running `on_done` callbacks at their context's deadline.
//!
//! A cancellation reaches a callback through the node it is registered on,
//! so only a deadline needs something that watches the clock. What watches
//! it holds the deadline and the callback, never the node or its values, and
//! forgets the callback as soon as it is spent (fired by a cancellation or
//! by its context's drop, or stopped).
//!
//! Inside a Tokio runtime the clock is the runtime's, so that a paused clock
//! and `tokio::time::advance` work: each thread keeps one driver task per
//! runtime, which sleeps until the earliest of its alarms, fires the due
//! ones and ends when it has none left. There is no task per registration,
//! and none once nothing is watched. A driver dropped with its runtime hands
//! its alarms to the fallback.
//!
//! Outside a runtime, and for alarms handed over by a runtime that is gone,
//! one process-wide thread watches the real clock. It is started the first
//! time it is needed and then parks while it has nothing to watch.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll, Waker};

use tokio::runtime::{self, Handle};
use tokio::time::{Instant, Sleep};

use super::callback::{Callback, Panics};
use crate::loom::lock_std;

/// Alarms are ordered by deadline, then by the order they were set.
type Key = (Instant, u64);

/// The alarms of one driver, or of the fallback thread.
#[derive(Debug)]
pub(crate) struct Alarms {
    inner: Mutex<Inner>,
    /// Where the fallback thread waits; a driver has its task's waker.
    wakeup: Option<Condvar>,
}

#[derive(Debug)]
struct Inner {
    due: BTreeMap<Key, Arc<Callback>>,
    next: u64,
    /// False once a driver has ended or was dropped: it takes no more
    /// alarms. The fallback never closes.
    open: bool,
    /// The driver task, to wake when an earlier alarm is set or the last
    /// one is removed.
    waker: Option<Waker>,
    /// When the driver's timer is set to wake it (the earliest alarm when
    /// it last looked): a later alarm needs no wake-up.
    sleeps_until: Option<Instant>,
}

/// Where a callback's alarm is set, so that the callback can take it out
/// once it is spent.
#[derive(Debug)]
pub(crate) struct AlarmKey {
    alarms: Arc<Alarms>,
    key: Key,
}

impl AlarmKey {
    /// Takes the alarm out: its callback is spent.
    pub(crate) fn cancel(self) {
        self.alarms.remove(self.key);
    }
}

impl Alarms {
    fn new(thread: bool) -> Self {
        Alarms {
            inner: Mutex::new(Inner {
                due: BTreeMap::new(),
                next: 0,
                open: true,
                waker: None,
                sleeps_until: None,
            }),
            wakeup: thread.then(Condvar::new),
        }
    }

    /// Sets an alarm; `None` if these alarms are closed.
    fn insert(self: &Arc<Self>, at: Instant, callback: Arc<Callback>) -> Option<AlarmKey> {
        let (key, wake) = {
            let mut inner = lock_std(&self.inner);
            if !inner.open {
                return None;
            }
            let key = (at, inner.next);
            inner.next += 1;
            inner.due.insert(key, callback);
            // A driver that sleeps until later must wake to sleep less.
            let sooner = inner.sleeps_until.is_some_and(|until| at < until);
            (key, if sooner { inner.waker.take() } else { None })
        };
        // Woken unlocked: the driver takes the lock as soon as it runs.
        if let Some(waker) = wake {
            waker.wake();
        }
        if let Some(thread) = &self.wakeup {
            thread.notify_one();
        }
        Some(AlarmKey {
            alarms: Arc::clone(self),
            key,
        })
    }

    fn remove(&self, key: Key) {
        let (removed, wake) = {
            let mut inner = lock_std(&self.inner);
            let removed = inner.due.remove(&key);
            // A driver with nothing left ends at once instead of sleeping
            // until a deadline that no longer matters.
            let wake = if removed.is_some() && inner.due.is_empty() {
                inner.waker.take()
            } else {
                None
            };
            (removed, wake)
        };
        drop(removed);
        if let Some(waker) = wake {
            waker.wake();
        }
    }

    /// Takes the alarms due at `now`, and tells when the next one is.
    fn take_due(inner: &mut Inner, now: Instant) -> (Vec<Arc<Callback>>, Option<Instant>) {
        let mut due = Vec::new();
        while let Some(entry) = inner.due.first_entry() {
            if entry.key().0 > now {
                return (due, Some(entry.key().0));
            }
            due.push(entry.remove());
        }
        (due, None)
    }
}

/// Sets an alarm that fires `callback` at `at`: on this thread's driver for
/// the current runtime if there is one, on the fallback thread otherwise.
/// The callback forgets the alarm when it is spent.
pub(crate) fn set(at: Instant, callback: &Arc<Callback>) {
    let key = match Handle::try_current() {
        Ok(handle) => on_driver(&handle, at, callback),
        Err(_) => None,
    };
    let key = match key {
        Some(key) => key,
        None => match fallback().insert(at, Arc::clone(callback)) {
            Some(key) => key,
            None => return,
        },
    };
    callback.set_alarm(key);
}

/// What a thread knows of the driver of the runtime it last set an alarm in.
enum Slot {
    Driver(runtime::Id, Arc<Alarms>),
    /// That runtime has no timer: its alarms go to the fallback.
    NoTimer(runtime::Id),
}

thread_local! {
    static DRIVER: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

/// Sets the alarm on this thread's driver for the runtime of `handle`,
/// starting one if needed; `None` if the runtime has no timer.
fn on_driver(handle: &Handle, at: Instant, callback: &Arc<Callback>) -> Option<AlarmKey> {
    let id = handle.id();
    let current = DRIVER
        .try_with(|slot| match &*slot.borrow() {
            Some(Slot::Driver(of, alarms)) if *of == id => Some(Some(Arc::clone(alarms))),
            Some(Slot::NoTimer(of)) if *of == id => Some(None),
            _ => None,
        })
        .ok()
        .flatten();
    match current {
        Some(Some(alarms)) => {
            if let Some(key) = alarms.insert(at, Arc::clone(callback)) {
                return Some(key);
            }
        }
        Some(None) => return None,
        None => {}
    }
    // No open driver for this runtime on this thread: start one. Its timer
    // is made here, in the runtime's context, so that a runtime without a
    // timer shows now and not as a panic inside the task.
    let sleep = panic::catch_unwind(|| Box::pin(tokio::time::sleep_until(at))).ok();
    let Some(sleep) = sleep else {
        let _ = DRIVER.try_with(|slot| *slot.borrow_mut() = Some(Slot::NoTimer(id)));
        return None;
    };
    let alarms = Arc::new(Alarms::new(false));
    let key = alarms.insert(at, Arc::clone(callback));
    let _ =
        DRIVER.try_with(|slot| *slot.borrow_mut() = Some(Slot::Driver(id, Arc::clone(&alarms))));
    // A runtime that is shutting down drops the driver inside `spawn`; its
    // drop hands the alarm to the fallback.
    drop(handle.spawn(Driver { alarms, sleep }));
    key
}

/// The task that fires a thread's alarms on its runtime's clock.
struct Driver {
    alarms: Arc<Alarms>,
    sleep: Pin<Box<Sleep>>,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        loop {
            let waker = cx.waker().clone();
            let (due, next) = {
                let mut inner = lock_std(&self.alarms.inner);
                let (due, next) = Alarms::take_due(&mut inner, Instant::now());
                if due.is_empty() && next.is_none() {
                    // Nothing left to watch: end, and take no more.
                    inner.open = false;
                    let old = inner.waker.take();
                    drop(inner);
                    drop(old);
                    return Poll::Ready(());
                }
                let old = inner.waker.replace(waker);
                inner.sleeps_until = next;
                drop(inner);
                drop(old);
                (due, next)
            };
            let mut panics = Panics::default();
            for callback in due {
                panics.fire(&callback);
            }
            // Nobody waits on a deadline's callbacks: a panic is reported,
            // and the driver goes on with the others.
            panics.report();
            if let Some(next) = next {
                self.sleep.as_mut().reset(next);
                if self.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Dropped with its runtime (or by a panic): nothing here will fire
        // the alarms any more, so the fallback takes them over.
        let (handed, waker) = {
            let mut inner = lock_std(&self.alarms.inner);
            inner.open = false;
            (std::mem::take(&mut inner.due), inner.waker.take())
        };
        drop(waker);
        for ((at, _), callback) in handed {
            if let Some(key) = fallback().insert(at, Arc::clone(&callback)) {
                callback.set_alarm(key);
            }
        }
    }
}

/// The process-wide alarms on the real clock, and their thread.
fn fallback() -> &'static Arc<Alarms> {
    static FALLBACK: OnceLock<Arc<Alarms>> = OnceLock::new();
    FALLBACK.get_or_init(|| {
        let alarms = Arc::new(Alarms::new(true));
        let watched = Arc::clone(&alarms);
        let started = std::thread::Builder::new()
            .name("tokio-ctx-alarms".into())
            .spawn(move || watch_forever(&watched));
        if started.is_err() {
            // Without the thread, deadlines outside a runtime cannot fire;
            // cancellations and drops still run every callback.
            lock_std(&alarms.inner).open = false;
        }
        alarms
    })
}

fn watch_forever(alarms: &Alarms) {
    let Some(wakeup) = &alarms.wakeup else {
        return;
    };
    let mut inner = lock_std(&alarms.inner);
    loop {
        let (due, next) = Alarms::take_due(&mut inner, Instant::now());
        if due.is_empty() {
            inner = match next {
                Some(next) => {
                    let wait = next.saturating_duration_since(Instant::now());
                    wakeup
                        .wait_timeout(inner, wait)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
                None => wakeup
                    .wait(inner)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            };
            continue;
        }
        drop(inner);
        let mut panics = Panics::default();
        for callback in due {
            panics.fire(&callback);
        }
        panics.report();
        inner = lock_std(&alarms.inner);
    }
}
