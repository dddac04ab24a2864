//! Callbacks, and running user code so that one panic loses nothing else.
//!
//! A [`Callback`] is an `on_done` function (or the cancellation of a token
//! handed out by `cancellation_token`): it runs at most once, whoever gets to
//! it first (a cancel, a deadline, the drop of its context), unless stopped.
//!
//! User code that the core runs on behalf of others (callbacks, wakes) goes
//! through [`Panics`], which follows Trio's rule: a panic in one never keeps
//! the others from running. Each runs under `catch_unwind`; once all have
//! run, the first panic is resumed on the thread that ran them, unless that
//! thread is already unwinding (a cancel from a destructor during a panic):
//! a second panic there would abort the process, so the panic is reported
//! to `tracing` and dropped.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use super::alarm::AlarmKey;
use crate::loom::{lock, Mutex};

/// A function to run once, when a context ends, unless stopped first.
pub(crate) struct Callback {
    state: Mutex<State>,
}

struct State {
    f: Option<Box<dyn FnOnce() + Send + 'static>>,
    /// The alarm that fires it at its context's deadline, if one is set:
    /// taken out as soon as the callback is spent.
    alarm: Option<AlarmKey>,
}

impl Callback {
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> Self {
        Self {
            state: Mutex::new(State {
                f: Some(Box::new(f)),
                alarm: None,
            }),
        }
    }

    /// Takes the function out, so that nobody else runs or stops it: from
    /// here on the callback is spent, even if the function then panics. Its
    /// alarm, if any, is taken out too.
    fn take(&self) -> Option<Box<dyn FnOnce() + Send + 'static>> {
        let (f, alarm) = {
            let mut state = lock(&self.state);
            (state.f.take(), state.alarm.take())
        };
        // Unlocked: at most one lock at a time (invariant 6 of the core).
        if let Some(alarm) = alarm {
            alarm.cancel();
        }
        f
    }

    /// Records the alarm set for this callback; takes it out again at once
    /// if the callback was spent meanwhile. Replaces (and takes out) the
    /// alarm of a driver that handed it over.
    pub(crate) fn set_alarm(&self, key: AlarmKey) {
        let stale = {
            let mut state = lock(&self.state);
            if state.f.is_some() {
                state.alarm.replace(key)
            } else {
                Some(key)
            }
        };
        if let Some(stale) = stale {
            stale.cancel();
        }
    }

    /// Takes out the alarm set for this callback, if any: its context has
    /// no deadline any more (a movable deadline was removed).
    pub(crate) fn clear_alarm(&self) {
        let alarm = lock(&self.state).alarm.take();
        if let Some(alarm) = alarm {
            alarm.cancel();
        }
    }

    /// Runs the function if nobody has run or stopped it; true if this call
    /// ran it. A panic of the function goes to the caller.
    pub(crate) fn fire(&self) -> bool {
        match self.take() {
            Some(f) => {
                f();
                true
            }
            None => false,
        }
    }

    /// Prevents the function from running; true if it had not run (or been
    /// attempted) yet. The function is dropped here, unlocked.
    pub(crate) fn stop(&self) -> bool {
        self.take().is_some()
    }

    /// True once the function has run, been attempted or been stopped.
    pub(crate) fn is_spent(&self) -> bool {
        lock(&self.state).f.is_none()
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback").finish_non_exhaustive()
    }
}

/// The first panic of a batch of user code, kept until the whole batch has
/// run (see the module documentation).
#[derive(Default)]
pub(crate) struct Panics {
    first: Option<Box<dyn Any + Send + 'static>>,
}

impl Panics {
    /// Runs `f`, keeping its panic if it is the first.
    pub(crate) fn run(&mut self, f: impl FnOnce()) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            match self.first {
                None => self.first = Some(payload),
                Some(_) => discard(payload),
            }
        }
    }

    /// Fires `callback`, keeping its panic if it is the first.
    pub(crate) fn fire(&mut self, callback: &Callback) {
        if let Some(f) = callback.take() {
            self.run(f);
        }
    }

    /// Resumes the first panic, if any; on a thread that is already
    /// unwinding, reports and drops it instead.
    pub(crate) fn resume(self) {
        let Some(payload) = self.first else {
            return;
        };
        if std::thread::panicking() {
            report(&*payload, "while the thread was already panicking");
            discard(payload);
        } else {
            panic::resume_unwind(payload);
        }
    }
}

impl Panics {
    /// Reports and drops the first panic, if any: for callbacks that no
    /// caller waits on (fired by a deadline's alarm).
    pub(crate) fn report(self) {
        if let Some(payload) = self.first {
            report(&*payload, "at its deadline");
            discard(payload);
        }
    }
}

impl std::fmt::Debug for Panics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Panics")
            .field("panicked", &self.first.is_some())
            .finish()
    }
}

/// Drops a panic payload; a payload whose drop panics in turn is leaked, as
/// the standard library does.
fn discard(payload: Box<dyn Any + Send + 'static>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Tells `tracing` about a panic of user code that nobody will see resumed.
/// (The panic hook has already printed it where it happened.)
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn report(payload: &(dyn Any + Send + 'static), when: &'static str) {
    #[cfg(feature = "tracing")]
    {
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        tracing::error!(
            target: "tokio_ctx",
            panic = message,
            "a context callback or waker panicked {when}; the panic was dropped",
        );
    }
}
