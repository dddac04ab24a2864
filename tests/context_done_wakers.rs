//! Wakers are user code: a waker's drop may drop a context, and with it
//! the last reference to a node that must then unlink itself. No waker is
//! dropped under a lock of the crate, so none of that can deadlock.

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Wake, Waker};
use std::thread;
use std::time::Duration;

use tokio_ctx::Context;

/// A waker that owns a context: dropping its last clone drops the context.
struct Owning {
    _context: Context,
}

impl Wake for Owning {
    fn wake(self: Arc<Self>) {}
}

/// Runs `f` on a thread of its own and fails if it does not finish within
/// ten seconds (a deadlock shows as a timeout, not as a hung test run).
fn within_bound(f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        f();
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: let its panic fail the test.
            worker.join().unwrap();
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlocked"),
    }
}

#[test]
fn a_replaced_waker_that_owns_the_last_clone_of_a_linked_child_does_not_deadlock() {
    within_bound(|| {
        let (parent, cancel) = Context::background().child();
        let (child, _) = parent.child();
        // Something waits on the child, so it is linked into the parent's list.
        drop(child.on_done(|| {}));
        let owning = Arc::new(Owning { _context: child });
        let mut done = pin!(parent.done());
        {
            let waker = Waker::from(Arc::clone(&owning));
            assert!(done
                .as_mut()
                .poll(&mut TaskContext::from_waker(&waker))
                .is_pending());
        }
        // Now only the waker's clones (the future's and the parent's list's)
        // keep the child alive.
        drop(owning);
        // Polled by another task: the old waker is replaced and dropped.
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(futures::task::noop_waker_ref()))
            .is_pending());
        cancel.cancel();
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(futures::task::noop_waker_ref()))
            .is_ready());
    });
}

#[test]
fn a_deregistered_waker_that_owns_the_last_clone_of_a_linked_child_does_not_deadlock() {
    within_bound(|| {
        let (parent, cancel) = Context::background().child();
        let (child, _) = parent.child();
        drop(child.on_done(|| {}));
        let owning = Arc::new(Owning { _context: child });
        {
            let mut done = pin!(parent.done());
            let waker = Waker::from(owning);
            assert!(done
                .as_mut()
                .poll(&mut TaskContext::from_waker(&waker))
                .is_pending());
        }
        cancel.cancel();
        assert!(parent.is_done());
    });
}

#[test]
fn a_woken_waker_that_owns_the_last_clone_of_a_linked_child_does_not_deadlock() {
    within_bound(|| {
        let (parent, cancel) = Context::background().child();
        let (child, _) = parent.child();
        drop(child.on_done(|| {}));
        let owning = Arc::new(Owning { _context: child });
        let mut done = pin!(parent.done());
        {
            let waker = Waker::from(owning);
            assert!(done
                .as_mut()
                .poll(&mut TaskContext::from_waker(&waker))
                .is_pending());
        }
        // Cancelling wakes (and so drops) the list's clone; the future's
        // goes when it resolves.
        cancel.cancel();
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(futures::task::noop_waker_ref()))
            .is_ready());
    });
}
