//! Deadlines and budgets in eight bytes each.
//!
//! Every node stores its effective deadline and the budget it was asked for.
//! As `Option<Instant>` and `Option<Duration>` they take 16 bytes each, a
//! quarter of the node; here they take 8. A deadline is kept as the whole
//! seconds (signed) and nanoseconds since a process-wide origin (the first
//! instant ever stored), packed so that integer order is time order; that
//! spans about 272 years either side of the origin, exactly. A deadline
//! further ahead is no deadline (as an `Instant` that overflows is), one
//! further back has passed. A budget is kept as nanoseconds; one beyond 584
//! years reads back as `Duration::MAX`.
//!
//! The packing keeps the hot conversion, back to an `Instant` for a clock
//! comparison, to an addition without a division. Converting an `Instant`
//! costs a subtraction, so a timeout is added to the converted current
//! instant rather than to an `Instant`.

#[cfg(not(tokio_ctx_loom))]
use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

#[cfg(not(tokio_ctx_loom))]
thread_local! {
    /// The last deadline this thread converted back to an instant, packed
    /// (`NONE`, which is never converted, until the first) and converted.
    static LAST: Cell<(i64, Option<std::time::Instant>)> =
        const { Cell::new((i64::MIN, None)) };
}

/// The instant every stored deadline is measured from.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

#[inline]
fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

const NANOS_PER_SEC: u32 = 1_000_000_000;
/// Nanoseconds take the low 30 bits (10^9 < 2^30), seconds the rest.
const NANOS_BITS: u32 = 30;
const NANOS_MASK: i64 = (1 << NANOS_BITS) - 1;
/// The most seconds either way that fit above the nanoseconds, with
/// `i64::MIN` left free for `NONE`.
const MAX_SECS: i64 = (1 << (63 - NANOS_BITS)) - 1;

/// An optional deadline in eight bytes: `secs << 30 | nanos` after the
/// origin, where `secs` may be negative and `nanos` is below a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(i64);

impl Deadline {
    /// No deadline. Below every stored deadline, so `min` cannot be used
    /// across it: compare with [`Deadline::is_some`] first.
    pub(crate) const NONE: Deadline = Deadline(i64::MIN);

    /// The earliest deadline stored: every deadline further back has passed
    /// just as surely.
    const EARLIEST: Deadline = Deadline(-MAX_SECS << NANOS_BITS);

    fn pack(secs: i64, nanos: u32) -> Option<Deadline> {
        (-MAX_SECS..=MAX_SECS)
            .contains(&secs)
            .then(|| Deadline(secs << NANOS_BITS | i64::from(nanos)))
    }

    fn unpack(self) -> (i64, u32) {
        // Masked to 30 bits, the nanoseconds always fit.
        (self.0 >> NANOS_BITS, (self.0 & NANOS_MASK) as u32)
    }

    /// The deadline `at`. One too far ahead to represent (about 272 years
    /// after the origin) is no deadline, as for `Instant::checked_add`.
    pub(crate) fn new(at: Option<Instant>) -> Deadline {
        let Some(at) = at else {
            return Deadline::NONE;
        };
        let origin = origin();
        match at.checked_duration_since(origin) {
            Some(after) => Deadline::after_origin(after),
            None => {
                // Before the origin: whole seconds rounded down, so that
                // the nanoseconds stay positive.
                let before = origin.duration_since(at);
                let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                let packed = match before.subsec_nanos() {
                    0 => Deadline::pack(-secs, 0),
                    nanos => Deadline::pack(-secs - 1, NANOS_PER_SEC - nanos),
                };
                packed.unwrap_or(Deadline::EARLIEST)
            }
        }
    }

    /// The deadline `after` the origin; none if that is too far ahead.
    #[inline]
    fn after_origin(after: Duration) -> Deadline {
        i64::try_from(after.as_secs())
            .ok()
            .and_then(|secs| Deadline::pack(secs, after.subsec_nanos()))
            .unwrap_or(Deadline::NONE)
    }

    /// The current instant, as a deadline to compute others from.
    #[cfg(all(test, not(tokio_ctx_loom)))]
    pub(crate) fn now() -> Deadline {
        Deadline::new(Some(Instant::now()))
    }

    /// The deadline `timeout` from now; none if that is too far ahead.
    ///
    /// Every timed derivation comes here: adding the timeout before
    /// packing converts once instead of packing the current instant and
    /// repacking the sum. Inlined, and on the standard library's instants
    /// (which tokio's wrap), so that the one subtraction is the only call
    /// besides the clock's.
    #[inline]
    pub(crate) fn from_now(timeout: Duration) -> Deadline {
        let now = Instant::now();
        match now.into_std().checked_duration_since(origin().into_std()) {
            Some(elapsed) => Deadline::sum(elapsed, timeout),
            // A paused clock can stand before the origin another runtime set.
            None => Deadline::new(Some(now)).after(timeout),
        }
    }

    /// The deadline `a + b` after the origin; none if that is too far
    /// ahead. Integer arithmetic on the parts: every timed derivation comes
    /// here (`benches/peers.rs`, "with_timeout(1h, ready)").
    #[inline]
    fn sum(a: Duration, b: Duration) -> Deadline {
        let mut nanos = a.subsec_nanos() + b.subsec_nanos();
        let mut secs = a.as_secs().saturating_add(b.as_secs());
        if nanos >= NANOS_PER_SEC {
            nanos -= NANOS_PER_SEC;
            secs = secs.saturating_add(1);
        }
        match i64::try_from(secs) {
            Ok(secs) if secs <= MAX_SECS => Deadline(secs << NANOS_BITS | i64::from(nanos)),
            _ => Deadline::NONE,
        }
    }

    /// The deadline `d` after this one; none if that is too far ahead.
    pub(crate) fn after(self, d: Duration) -> Deadline {
        if !self.is_some() {
            return Deadline::NONE;
        }
        let (secs, nanos) = self.unpack();
        let nanos = nanos + d.subsec_nanos();
        let (carry, nanos) = if nanos >= NANOS_PER_SEC {
            (1, nanos - NANOS_PER_SEC)
        } else {
            (0, nanos)
        };
        i64::try_from(d.as_secs())
            .ok()
            .and_then(|d| secs.checked_add(d))
            .and_then(|secs| Deadline::pack(secs + carry, nanos))
            .unwrap_or(Deadline::NONE)
    }

    /// The packed value, to keep in an atomic word.
    pub(crate) fn to_bits(self) -> u64 {
        self.0 as u64
    }

    /// The deadline [`to_bits`](Self::to_bits) packed.
    pub(crate) fn from_bits(bits: u64) -> Deadline {
        Deadline(bits as i64)
    }

    #[inline]
    pub(crate) fn is_some(self) -> bool {
        self != Deadline::NONE
    }

    /// The deadline as an instant.
    #[inline]
    pub(crate) fn get(self) -> Option<Instant> {
        if !self.is_some() {
            return None;
        }
        self.convert()
    }

    /// [`get`](Self::get) for a check that reads the same deadline over and
    /// over (`is_done()` in a loop over work items): each thread remembers
    /// the last deadline it converted this way. The conversion is a pure
    /// function of the packed value (the origin never changes once set),
    /// and the memo costs a comparison where the conversion costs about
    /// fifty instructions. Waits convert once per deadline and do not use
    /// it: for them it would only add the remembering.
    #[inline]
    pub(crate) fn get_again(self) -> Option<Instant> {
        if !self.is_some() {
            return None;
        }
        #[cfg(not(tokio_ctx_loom))]
        {
            // `try_with`: the key has no destructor, so it cannot be gone,
            // but a check keeps no panic path even if that changes; it
            // would convert without the memo.
            if let Ok((packed, at)) = LAST.try_with(Cell::get) {
                if packed == self.0 {
                    return at.map(Instant::from_std);
                }
            }
            self.convert_and_remember()
        }
        #[cfg(tokio_ctx_loom)]
        self.convert()
    }

    /// [`get_again`](Self::get_again) when the memo holds another deadline: out of line,
    /// so that the check of the memo stays small where it is inlined.
    #[cfg(not(tokio_ctx_loom))]
    #[inline(never)]
    fn convert_and_remember(self) -> Option<Instant> {
        let at = self.convert();
        let _ = LAST.try_with(|last| last.set((self.0, at.map(Instant::into_std))));
        at
    }

    /// The conversion itself: `self` is a deadline, not `NONE`.
    #[inline]
    fn convert(self) -> Option<Instant> {
        let (secs, nanos) = self.unpack();
        // A stored deadline came from a real instant: it converts back
        // exactly, and without a division.
        if secs >= 0 {
            origin().checked_add(Duration::new(secs.unsigned_abs(), nanos))
        } else {
            origin()
                .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
                .checked_add(Duration::new(0, nanos))
        }
    }

    /// True when `now` is at or after the deadline; false without one.
    #[inline]
    pub(crate) fn passed_at(self, now: Instant) -> bool {
        self.get_again().is_some_and(|deadline| now >= deadline)
    }
}

/// An optional budget in eight bytes: nanoseconds plus one, zero for none.
/// Budgets beyond 584 years read back as `Duration::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget(u64);

impl Budget {
    /// In 64-bit arithmetic: every timed derivation comes here, and a
    /// `u128` of nanoseconds costs a wide multiplication and a range check.
    #[inline]
    pub(crate) fn new(budget: Option<Duration>) -> Budget {
        Budget(budget.map_or(0, |b| {
            b.as_secs()
                .checked_mul(u64::from(NANOS_PER_SEC))
                .and_then(|n| n.checked_add(u64::from(b.subsec_nanos()) + 1))
                .unwrap_or(u64::MAX)
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
        let at = |d: Deadline| d.get().expect("a stored deadline");
        assert_eq!(at(start.after(hour)) - at(start), hour);
        assert!(start < start.after(hour));
        let past = Deadline::new(Some(now - Duration::from_millis(2500)));
        for d in [past, start, Deadline::NONE] {
            assert_eq!(
                Deadline::from_bits(d.to_bits()),
                d,
                "through an atomic word"
            );
        }
        assert!(past < start);
        assert_eq!(at(start) - at(past), Duration::from_millis(2500));
        assert_eq!(past.after(Duration::from_millis(2500)), start);
    }

    #[test]
    fn a_remembered_conversion_is_the_conversion_of_the_deadline_asked() {
        let now = Instant::now();
        let deadlines = [
            Deadline::new(Some(now + Duration::from_secs(3600))),
            Deadline::new(Some(now - Duration::from_millis(2500))),
            Deadline::NONE,
            Deadline::new(Some(now + Duration::from_nanos(7))),
        ];
        // Interleaved, twice in a row, and back: the memo of the previous
        // deadline never answers for another.
        for round in 0..3 {
            for (i, d) in deadlines.iter().enumerate() {
                assert_eq!(d.get_again(), d.get(), "round {round}, deadline {i}");
                assert_eq!(d.get_again(), d.get(), "round {round}, deadline {i} again");
            }
        }
        assert!(deadlines[1].passed_at(now));
        assert!(!deadlines[0].passed_at(now));
        assert!(!Deadline::NONE.passed_at(now));
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

    #[tokio::test(start_paused = true)]
    async fn a_timeout_from_now_ends_that_long_after_now() {
        let hour = Duration::from_secs(3600);
        assert_eq!(Deadline::from_now(hour).get(), Some(Instant::now() + hour));
        assert_eq!(
            Deadline::from_now(Duration::ZERO).get(),
            Some(Instant::now())
        );
        assert_eq!(Deadline::from_now(Duration::MAX), Deadline::NONE);
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
