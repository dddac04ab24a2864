//! Deadlines and budgets in eight bytes each.
//!
//! Every node stores its effective deadline and the budget it was asked for.
//! As `Option<Instant>` and `Option<Duration>` they take 16 bytes each, a
//! quarter of the node; here they take 8. A deadline is kept as signed
//! nanoseconds from a process-wide origin (the first deadline ever stored),
//! which spans about 292 years either side of it; a budget as nanoseconds.
//! Both are exact within those spans and saturate beyond them, where every
//! timer and clock comparison would give the same answers anyway.

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

impl Deadline {
    /// No deadline. Below every stored deadline, so `min` cannot be used
    /// across it: see [`Deadline::earliest`].
    pub(crate) const NONE: Deadline = Deadline(i64::MIN);

    pub(crate) fn new(at: Option<Instant>) -> Deadline {
        let Some(at) = at else {
            return Deadline::NONE;
        };
        let origin = origin();
        // i64::MIN is NONE, so the earliest storable offset is one above it.
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Deadline(match at.checked_duration_since(origin) {
            Some(after) => nanos(after),
            None => -nanos(origin.duration_since(at)),
        })
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
            u64::try_from(b.as_nanos()).map_or(u64::MAX, |n| n.saturating_add(1))
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
