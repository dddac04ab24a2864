//! [`GrpcTimeout`]: a budget as gRPC carries it between services.
//!
//! A caller puts its remaining budget in the `grpc-timeout` request header;
//! the service it calls derives its request context from that header, so
//! the budget keeps shrinking across the hop instead of starting over.
//!
//! The value is one to eight ASCII digits followed by a unit: `H` (hours),
//! `M` (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) or
//! `n` (nanoseconds). Units are case-sensitive: `M` is a minute, `m` a
//! millisecond.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Context;

/// The largest value eight digits hold.
const MAX_VALUE: u64 = 99_999_999;

/// The units, finest first, with their length in nanoseconds.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// A budget in the form of gRPC's `grpc-timeout` header: up to eight
/// digits and a unit.
///
/// Equality is of the written form (`1S` is not `1000m`); compare
/// [`duration`](Self::duration)s to compare budgets.
///
/// [`Display`](fmt::Display) writes the header value and
/// [`FromStr`] reads one. A budget is written in the finest unit that
/// holds it in eight digits, rounded down, so the next service never gets
/// more time than the caller has left; the rounding takes less than a
/// hundred-thousandth of the budget.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tokio_ctx::GrpcTimeout;
///
/// let budget = GrpcTimeout::from(Duration::from_millis(1500));
/// assert_eq!(budget.to_string(), "1500000u");
///
/// let parsed: GrpcTimeout = "250m".parse().unwrap();
/// assert_eq!(parsed.duration(), Duration::from_millis(250));
/// assert!("250ms".parse::<GrpcTimeout>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrpcTimeout {
    value: u64,
    /// Index into `UNITS`.
    unit: usize,
}

impl GrpcTimeout {
    /// The largest budget the header can carry: 99,999,999 hours, about
    /// 11,400 years. Longer budgets are written as this one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::GrpcTimeout;
    ///
    /// assert_eq!(GrpcTimeout::MAX.to_string(), "99999999H");
    /// assert_eq!(GrpcTimeout::from(Duration::MAX), GrpcTimeout::MAX);
    /// ```
    pub const MAX: GrpcTimeout = GrpcTimeout {
        value: MAX_VALUE,
        unit: UNITS.len() - 1,
    };

    /// The budget as a [`Duration`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::GrpcTimeout;
    ///
    /// let budget: GrpcTimeout = "2M".parse().unwrap();
    /// assert_eq!(budget.duration(), Duration::from_secs(120));
    /// ```
    pub fn duration(&self) -> Duration {
        let (_, nanos) = UNITS[self.unit];
        // 99,999,999 hours is 3.6 * 10^20 ns, more than a u64 of nanoseconds
        // holds: units of a second or more are counted in seconds.
        if nanos >= 1_000_000_000 {
            Duration::from_secs(self.value * (nanos / 1_000_000_000))
        } else {
            Duration::from_nanos(self.value * nanos)
        }
    }

    /// Reads a header value; the same as [`str::parse`], for bytes as they
    /// come off the wire. Surrounding spaces or tabs are ignored.
    ///
    /// # Errors
    ///
    /// [`InvalidGrpcTimeout`] unless the value is one to eight ASCII digits
    /// and one of the units `H`, `M`, `S`, `m`, `u`, `n`.
    ///
    /// ```
    /// use tokio_ctx::GrpcTimeout;
    ///
    /// assert!(GrpcTimeout::from_bytes(b"100m").is_ok());
    /// assert!(GrpcTimeout::from_bytes(b"123456789S").is_err(), "nine digits");
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<GrpcTimeout, InvalidGrpcTimeout> {
        let trimmed = trim(bytes);
        let invalid = || InvalidGrpcTimeout::new(bytes);
        let Some((&unit, digits)) = trimmed.split_last() else {
            return Err(invalid());
        };
        if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        let unit = UNITS
            .iter()
            .position(|&(symbol, _)| symbol == unit)
            .ok_or_else(invalid)?;
        let value = digits
            .iter()
            .fold(0, |value, digit| value * 10 + u64::from(digit - b'0'));
        Ok(GrpcTimeout { value, unit })
    }
}

/// `bytes` without the spaces and tabs around it.
fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

impl From<Duration> for GrpcTimeout {
    /// The finest unit that holds `budget` in eight digits, rounded down;
    /// [`GrpcTimeout::MAX`] for anything longer. A zero budget is written
    /// `1n`, the smallest the header allows (gRPC wants a positive value),
    /// so that the next service reports its deadline exceeded rather than
    /// a malformed header.
    fn from(budget: Duration) -> Self {
        let nanos = budget.as_nanos().max(1);
        UNITS
            .iter()
            .enumerate()
            .find_map(|(unit, &(_, length))| {
                let value = nanos / u128::from(length);
                let value = u64::try_from(value).ok().filter(|&v| v <= MAX_VALUE)?;
                Some(GrpcTimeout { value, unit })
            })
            .unwrap_or(GrpcTimeout::MAX)
    }
}

impl FromStr for GrpcTimeout {
    type Err = InvalidGrpcTimeout;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GrpcTimeout::from_bytes(s.as_bytes())
    }
}

impl fmt::Display for GrpcTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, char::from(UNITS[self.unit].0))
    }
}

/// A `grpc-timeout` header value that is not one to eight digits and a
/// unit.
///
/// ```
/// use tokio_ctx::GrpcTimeout;
///
/// let err = "1.5S".parse::<GrpcTimeout>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid grpc-timeout \"1.5S\": expected 1 to 8 digits and one of H, M, S, m, u, n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidGrpcTimeout {
    /// The start of the value, as text.
    value: String,
}

/// How much of a rejected value an error keeps: a valid one is at most
/// nine bytes, and a header can be kilobytes long.
const SHOWN: usize = 32;

impl InvalidGrpcTimeout {
    fn new(value: &[u8]) -> Self {
        let shown = String::from_utf8_lossy(&value[..value.len().min(SHOWN)]);
        let value = if value.len() > SHOWN {
            format!("{shown}…")
        } else {
            shown.into_owned()
        };
        InvalidGrpcTimeout { value }
    }
}

impl fmt::Display for InvalidGrpcTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid grpc-timeout {:?}: expected 1 to 8 digits and one of H, M, S, m, u, n",
            self.value
        )
    }
}

impl std::error::Error for InvalidGrpcTimeout {}

impl From<InvalidGrpcTimeout> for std::io::Error {
    /// An [`InvalidData`](std::io::ErrorKind::InvalidData) error.
    fn from(err: InvalidGrpcTimeout) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, err)
    }
}

/// **Across services**: the remaining budget as a `grpc-timeout` value.
impl Context {
    /// The budget left, as the `grpc-timeout` header that carries it to the
    /// next service; `None` without a deadline.
    ///
    /// A deadline that has passed gives the smallest budget the header can
    /// say, `1n`: the next service starts out of time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (request, _) = Context::background().child_with_timeout(Duration::from_secs(2));
    /// tokio::time::advance(Duration::from_millis(500)).await;
    /// assert_eq!(request.grpc_timeout().unwrap().to_string(), "1500000u");
    /// assert_eq!(Context::background().grpc_timeout(), None);
    /// # }
    /// ```
    pub fn grpc_timeout(&self) -> Option<GrpcTimeout> {
        self.remaining().map(GrpcTimeout::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Duration, InvalidGrpcTimeout> {
        s.parse::<GrpcTimeout>().map(|t| t.duration())
    }

    #[test]
    fn every_unit_reads_as_its_length() {
        assert_eq!(parse("3H"), Ok(Duration::from_secs(3 * 3600)));
        assert_eq!(parse("2M"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("7S"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("250m"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("40u"), Ok(Duration::from_micros(40)));
        assert_eq!(parse("5n"), Ok(Duration::from_nanos(5)));
        assert_eq!(parse("0S"), Ok(Duration::ZERO));
        assert_eq!(parse("00000001S"), Ok(Duration::from_secs(1)));
        assert_eq!(parse(" 10S\t"), Ok(Duration::from_secs(10)));
        assert_eq!(
            parse("99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            "",
            " ",
            "S",
            "10",
            "123456789S",
            "1.5S",
            "-1S",
            "+1S",
            "10s",
            "10ms",
            "1 S",
            "１S",
            "10Sx",
            "0x10S",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid grpc-timeout"), "{bad:?}");
        }
        let err = GrpcTimeout::from_bytes(b"\xff1S").unwrap_err();
        assert!(err.to_string().contains("\u{fffd}1S"), "{err}");
        let long = GrpcTimeout::from_bytes(&[b'9'; 4096]).unwrap_err();
        assert!(long.to_string().len() < 150, "{long}");
        assert!(long.to_string().contains('…'));
        let io = std::io::Error::from(err);
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_budget_is_written_in_the_finest_unit_that_holds_it() {
        let written = |d: Duration| GrpcTimeout::from(d).to_string();
        assert_eq!(written(Duration::ZERO), "1n");
        assert_eq!(written(Duration::from_nanos(1)), "1n");
        assert_eq!(written(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(written(Duration::from_nanos(100_000_000)), "100000u");
        assert_eq!(written(Duration::from_secs(30)), "30000000u");
        assert_eq!(written(Duration::from_secs(3600)), "3600000m");
        assert_eq!(written(Duration::from_secs(200_000)), "200000S");
        assert_eq!(written(Duration::from_secs(100_000_000)), "1666666M");
        assert_eq!(written(Duration::MAX), "99999999H");
        assert_eq!(GrpcTimeout::from(Duration::MAX), GrpcTimeout::MAX);
    }

    #[test]
    fn writing_never_gives_more_time_and_reads_back() {
        for nanos in [1, 999, 1_000_001, 123_456_789_012, 987_654_321_098_765] {
            let budget = Duration::from_nanos(nanos);
            let carried = GrpcTimeout::from(budget);
            let back = carried.duration();
            assert!(back <= budget, "{budget:?} became {back:?}");
            // Less than one unit, and a unit is under a 99,999th of a
            // budget written in it.
            assert!(budget - back < budget / 99_999 + Duration::from_nanos(1));
            assert_eq!(carried.to_string().parse::<GrpcTimeout>(), Ok(carried));
        }
    }
}
