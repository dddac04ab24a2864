//! Deadlines and budgets in eight bytes each.
//!
//! Every node stores its effective deadline and the budget it was asked for.
//! As `Option<Instant>` and `Option<Duration>` they take 16 bytes each, a
//! quarter of the node; here they take 8. A deadline is kept as signed
//! nanoseconds from a process-wide origin (the first instant ever stored),
//! which spans about 292 years either side of it; a budget as nanoseconds.
//! Both are exact within those spans. A deadline further ahead is no
//! deadline (as an `Instant` that overflows is), one further back has
//! passed; a budget beyond 584 years reads back as `Duration::MAX`.
//!
//! Converting an `Instant` costs a subtraction, so a timeout is added to the
//! converted current instant rather than to an `Instant`.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// The instant every stored deadline is measured from.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// An optional deadline in eight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(i64);

/// `d` in nanoseconds, if that fits an `i64` (about 292 years).
fn nanos(d: Duration) -> Option<i64> {
    // Two 64-bit operations instead of `as_nanos`' 128-bit product.
    i64::try_from(d.as_secs())
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(i64::from(d.subsec_nanos()))
}

impl Deadline {
    /// No deadline. Below every stored deadline, so `min` cannot be used
    /// across it: compare with [`Deadline::is_some`] first.
    pub(crate) const NONE: Deadline = Deadline(i64::MIN);

    /// The deadline `at`. One too far ahead to represent (about 292 years
    /// after the origin) is no deadline, as for `Instant::checked_add`.
    pub(crate) fn new(at: Option<Instant>) -> Deadline {
        let Some(at) = at else {
            return Deadline::NONE;
        };
        let origin = origin();
        match at.checked_duration_since(origin) {
            Some(after) => nanos(after).map_or(Deadline::NONE, Deadline),
            // As far back, it has passed anyway: the earliest stored value
            // (i64::MIN is NONE) says as much.
            None => Deadline(nanos(origin.duration_since(at)).map_or(i64::MIN + 1, |n| -n)),
        }
    }

    /// The current instant, as a deadline to compute others from.
    pub(crate) fn now() -> Deadline {
        Deadline::new(Some(Instant::now()))
    }

    /// The deadline `d` after this one; none if that is too far ahead.
    pub(crate) fn after(self, d: Duration) -> Deadline {
        match nanos(d).and_then(|d| self.0.checked_add(d)) {
            Some(at) if self.is_some() => Deadline(at),
            _ => Deadline::NONE,
        }
    }

    /// The time from `earlier` to this deadline, zero if it is not later.
    pub(crate) fn saturating_since(self, earlier: Deadline) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    pub(crate) fn is_some(self) -> bool {
        self != Deadline::NONE
    }

    pub(crate) fn get(self) -> Option<Instant> {
        if !self.is_some() {
            return None;
        }
        // A stored offset came from a real instant: it converts back exactly.
        let origin = origin();
        let offset = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            origin.checked_add(offset)
        } else {
            origin.checked_sub(offset)
        }
    }

    /// True when `now` is at or after the deadline; false without one.
    #[inline]
    pub(crate) fn passed_at(self, now: Instant) -> bool {
        self.get().is_some_and(|deadline| now >= deadline)
    }
}

/// An optional budget in eight bytes: nanoseconds plus one, zero for none.
/// Budgets beyond 584 years read back as `Duration::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget(u64);

impl Budget {
    pub(crate) fn new(budget: Option<Duration>) -> Budget {
        Budget(budget.map_or(0, |b| {
            nanos(b).map_or(u64::MAX, |n| n.unsigned_abs().saturating_add(1))
        }))
    }

    pub(crate) fn get(self) -> Option<Duration> {
        match self.0 {
            0 => None,
            u64::MAX => Some(Duration::MAX),
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

#[cfg(all(test, not(tokio_ctx_loom)))]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_trip_on_both_sides_of_the_origin() {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        for at in [
            now,
            now + hour,
            now - Duration::from_nanos(1),
            now + Duration::from_nanos(7),
        ] {
            assert_eq!(Deadline::new(Some(at)).get(), Some(at));
        }
        assert_eq!(Deadline::new(None).get(), None);
        assert!(Deadline::new(Some(now)).passed_at(now));
        assert!(!Deadline::new(Some(now + hour)).passed_at(now));
        assert!(Deadline::new(Some(now)) < Deadline::new(Some(now + hour)));
        let start = Deadline::new(Some(now));
        assert_eq!(start.after(hour).get(), Some(now + hour));
        assert_eq!(start.after(hour).saturating_since(start), hour);
        assert_eq!(start.saturating_since(start.after(hour)), Duration::ZERO);
    }

    #[test]
    fn deadlines_too_far_ahead_are_none() {
        let now = Deadline::now();
        assert_eq!(now.after(Duration::MAX), Deadline::NONE);
        assert_eq!(
            now.after(Duration::from_secs(300 * 365 * 86_400)),
            Deadline::NONE
        );
        assert_eq!(Deadline::NONE.after(Duration::ZERO), Deadline::NONE);
        let far = Instant::now() + Duration::from_secs(300 * 365 * 86_400);
        assert_eq!(Deadline::new(Some(far)), Deadline::NONE);
    }

    #[test]
    fn budgets_round_trip_and_saturate() {
        for b in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(3600),
        ] {
            assert_eq!(Budget::new(Some(b)).get(), Some(b));
        }
        assert_eq!(Budget::new(None).get(), None);
        assert_eq!(Budget::new(Some(Duration::MAX)).get(), Some(Duration::MAX));
    }
}
