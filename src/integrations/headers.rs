//! The budget in request headers (feature `http`).
//!
//! Three headers carry a caller's remaining budget to the service it calls:
//!
//! | header | form | spoken by |
//! |---|---|---|
//! | `grpc-timeout` | 1 to 8 digits and a unit (`250m`, `1500000u`, `2S`) | gRPC |
//! | `connect-timeout-ms` | 1 to 10 digits, milliseconds | the Connect protocol |
//! | a name of your choosing | 1 to 10 digits, milliseconds | plain HTTP services that agree on it |
//!
//! [`BudgetHeaders`] says which of them a server reads and a client writes,
//! and how strictly a value is read ([`Parsing`]). A value that cannot be
//! read is an [`InvalidBudgetHeader`], never a panic.
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderMap, HeaderName};
//! use tokio_ctx::headers::BudgetHeaders;
//!
//! let headers = BudgetHeaders::default().millis(HeaderName::from_static("x-timeout-ms"));
//! let mut request = HeaderMap::new();
//! request.insert("x-timeout-ms", "800".parse().unwrap());
//! request.insert("grpc-timeout", "300m".parse().unwrap());
//! // Several budgets: the tightest counts.
//! assert_eq!(headers.read(&request), Ok(Some(Duration::from_millis(300))));
//! ```

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::GrpcTimeout;

/// The header gRPC carries a call's budget in.
///
/// ```
/// use tokio_ctx::headers::GRPC_TIMEOUT;
///
/// let request = http::Request::builder().header(GRPC_TIMEOUT, "250m").body(()).unwrap();
/// assert_eq!(request.headers()["grpc-timeout"], "250m");
/// ```
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The header the Connect protocol carries a call's budget in, in
/// milliseconds.
///
/// ```
/// use tokio_ctx::headers::CONNECT_TIMEOUT_MS;
///
/// assert_eq!(CONNECT_TIMEOUT_MS.as_str(), "connect-timeout-ms");
/// ```
pub const CONNECT_TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");

/// The most digits a millisecond header may have: Connect's limit, about
/// 115 days.
const MILLIS_DIGITS: usize = 10;

/// How strictly a budget header is read.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderMap;
/// use tokio_ctx::headers::{BudgetHeaders, Parsing};
///
/// let mut request = HeaderMap::new();
/// request.insert("connect-timeout-ms", "1.5s".parse().unwrap());
///
/// let strict = BudgetHeaders::default().parsing(Parsing::Strict);
/// assert!(strict.read(&request).is_err());
/// let lenient = BudgetHeaders::default();
/// assert_eq!(lenient.read(&request), Ok(Some(Duration::from_millis(1500))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parsing {
    /// Also accept what people write by hand (`500ms`, `1.5s`, `250us`,
    /// in any of the headers), and ignore a value that still makes no
    /// sense, as if the header were absent: what tonic does with a
    /// malformed `grpc-timeout`. The default.
    #[default]
    Lenient,
    /// Only the forms the protocols define. Any other value is an
    /// [`InvalidBudgetHeader`], which the server layers answer with
    /// `400 Bad Request` or `INVALID_ARGUMENT`.
    Strict,
}

/// Which headers carry the budget, and how strictly they are read.
///
/// A server reads every header in the set; when several carry a budget,
/// the tightest counts. A client writes its budget into every header in
/// the set, keeping one that already asks for less.
///
/// The default is `grpc-timeout` and `connect-timeout-ms`, read
/// [leniently](Parsing::Lenient): what the server layers read unless told
/// otherwise. The client layers each start from the header their protocol
/// speaks.
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderName};
/// use tokio_ctx::headers::BudgetHeaders;
///
/// let plain = BudgetHeaders::none().millis(HeaderName::from_static("x-timeout-ms"));
/// let mut request = HeaderMap::new();
/// plain.write(Duration::from_millis(1500), &mut request);
/// assert_eq!(request["x-timeout-ms"], "1500");
/// assert_eq!(plain.read(&request), Ok(Some(Duration::from_millis(1500))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetHeaders {
    grpc: bool,
    connect: bool,
    millis: Option<HeaderName>,
    parsing: Parsing,
}

impl Default for BudgetHeaders {
    fn default() -> Self {
        BudgetHeaders::none().grpc().connect()
    }
}

/// One header of a set, with its form.
#[derive(Debug, Clone, Copy)]
enum Form {
    Grpc,
    Connect,
    Millis,
}

impl BudgetHeaders {
    /// No header at all: start here to pick headers one by one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::BudgetHeaders;
    ///
    /// let mut request = HeaderMap::new();
    /// request.insert("grpc-timeout", "1S".parse().unwrap());
    /// assert_eq!(BudgetHeaders::none().read(&request), Ok(None));
    /// ```
    pub fn none() -> Self {
        BudgetHeaders {
            grpc: false,
            connect: false,
            millis: None,
            parsing: Parsing::Lenient,
        }
    }

    /// Adds `grpc-timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::BudgetHeaders;
    ///
    /// let mut request = HeaderMap::new();
    /// BudgetHeaders::none().grpc().write(Duration::from_secs(2), &mut request);
    /// assert_eq!(request["grpc-timeout"], "2000000u");
    /// ```
    pub fn grpc(mut self) -> Self {
        self.grpc = true;
        self
    }

    /// Adds `connect-timeout-ms`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::BudgetHeaders;
    ///
    /// let mut request = HeaderMap::new();
    /// BudgetHeaders::none().connect().write(Duration::from_secs(2), &mut request);
    /// assert_eq!(request["connect-timeout-ms"], "2000");
    /// ```
    pub fn connect(mut self) -> Self {
        self.connect = true;
        self
    }

    /// Adds a plain header carrying milliseconds, such as `x-timeout-ms`;
    /// one such header per set (a second call replaces the first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{HeaderMap, HeaderName};
    /// use tokio_ctx::headers::BudgetHeaders;
    ///
    /// let headers = BudgetHeaders::default().millis(HeaderName::from_static("x-timeout-ms"));
    /// let mut request = HeaderMap::new();
    /// request.insert("x-timeout-ms", "250".parse().unwrap());
    /// assert_eq!(headers.read(&request), Ok(Some(Duration::from_millis(250))));
    /// ```
    pub fn millis(mut self, name: HeaderName) -> Self {
        self.millis = Some(name);
        self
    }

    /// Sets how strictly values are read; see [`Parsing`].
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::{BudgetHeaders, Parsing};
    ///
    /// let mut request = HeaderMap::new();
    /// request.insert("grpc-timeout", "soon".parse().unwrap());
    /// assert_eq!(BudgetHeaders::default().read(&request), Ok(None), "ignored");
    /// let strict = BudgetHeaders::default().parsing(Parsing::Strict);
    /// assert!(strict.read(&request).is_err());
    /// ```
    pub fn parsing(mut self, parsing: Parsing) -> Self {
        self.parsing = parsing;
        self
    }

    /// The headers of the set, with their forms.
    fn each(&self) -> impl Iterator<Item = (HeaderName, Form)> + '_ {
        let grpc = self.grpc.then_some((GRPC_TIMEOUT, Form::Grpc));
        let connect = self.connect.then_some((CONNECT_TIMEOUT_MS, Form::Connect));
        let millis = self.millis.clone().map(|name| (name, Form::Millis));
        grpc.into_iter().chain(connect).chain(millis)
    }

    /// The budget the request's headers ask for: the tightest of those in
    /// the set, `None` if none is there (or, when parsing leniently, none
    /// can be read).
    ///
    /// # Errors
    ///
    /// With [`Parsing::Strict`], the first value that is not in its
    /// header's form.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::{BudgetHeaders, Parsing};
    ///
    /// let mut request = HeaderMap::new();
    /// request.insert("connect-timeout-ms", "-5".parse().unwrap());
    /// let err = BudgetHeaders::default().parsing(Parsing::Strict).read(&request).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid connect-timeout-ms \"-5\": expected 1 to 10 digits (milliseconds)");
    /// ```
    pub fn read(&self, headers: &HeaderMap) -> Result<Option<Duration>, InvalidBudgetHeader> {
        let mut tightest: Option<Duration> = None;
        for (name, form) in self.each() {
            for value in headers.get_all(&name) {
                let read = match read_value(value.as_bytes(), form, self.parsing) {
                    Some(budget) => budget,
                    None if self.parsing == Parsing::Lenient => continue,
                    None => return Err(InvalidBudgetHeader::new(name, value.as_bytes(), form)),
                };
                tightest = Some(tightest.map_or(read, |so_far| so_far.min(read)));
            }
        }
        Ok(tightest)
    }

    /// Writes `budget` into every header of the set, keeping a value
    /// already there that asks for less, and returns the budget the
    /// headers now carry: the tightest of them, which is never more than
    /// `budget` by more than the rounding of a form (`1n` for a zero
    /// budget in `grpc-timeout`, `1` millisecond in `connect-timeout-ms`,
    /// which must be positive).
    ///
    /// Values are rounded down: the next service never gets more time than
    /// the caller has left. A value already there that cannot be read is
    /// replaced.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::BudgetHeaders;
    ///
    /// let mut request = HeaderMap::new();
    /// request.insert("grpc-timeout", "100m".parse().unwrap());
    /// let carried = BudgetHeaders::default().write(Duration::from_millis(1500), &mut request);
    /// assert_eq!(request["grpc-timeout"], "100m", "it asked for less: kept");
    /// assert_eq!(request["connect-timeout-ms"], "1500");
    /// assert_eq!(carried, Duration::from_millis(100));
    /// ```
    pub fn write(&self, budget: Duration, headers: &mut HeaderMap) -> Duration {
        let mut carried: Option<Duration> = None;
        for (name, form) in self.each() {
            let (value, ours) = write_value(budget, form);
            let asked = headers
                .get(&name)
                .and_then(|value| read_value(value.as_bytes(), form, Parsing::Strict));
            let kept = match asked {
                Some(asked) if asked <= ours => asked,
                _ => {
                    headers.insert(name, value);
                    ours
                }
            };
            carried = Some(carried.map_or(kept, |so_far| so_far.min(kept)));
        }
        carried.unwrap_or(budget)
    }
}

/// Reads one header value in `form`, `None` if it is not one.
fn read_value(bytes: &[u8], form: Form, parsing: Parsing) -> Option<Duration> {
    let strict = match form {
        Form::Grpc => GrpcTimeout::from_bytes(bytes).ok().map(|t| t.duration()),
        Form::Connect | Form::Millis => read_millis(trim(bytes)),
    };
    match (strict, parsing) {
        (Some(budget), _) => Some(budget),
        (None, Parsing::Strict) => None,
        (None, Parsing::Lenient) => read_human(trim(bytes)),
    }
}

/// 1 to 10 ASCII digits, as milliseconds.
fn read_millis(digits: &[u8]) -> Option<Duration> {
    if digits.is_empty() || digits.len() > MILLIS_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let millis = digits
        .iter()
        .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
    Some(Duration::from_millis(millis))
}

/// A duration as people write it: digits, an optional fraction, and one of
/// the units `ns`, `us`, `µs`, `ms` or `s` (`500ms`, `1.5s`, `250 us`).
/// Minutes are left out on purpose: `m` is a millisecond in `grpc-timeout`.
fn read_human(text: &[u8]) -> Option<Duration> {
    const UNITS: [(&[u8], u64); 5] = [
        (b"ns", 1),
        (b"us", 1_000),
        ("µs".as_bytes(), 1_000),
        (b"ms", 1_000_000),
        (b"s", 1_000_000_000),
    ];
    // Longest suffix first, so that `ms` is not read as `s`.
    let (number, unit) = UNITS
        .iter()
        .filter(|(suffix, _)| text.ends_with(suffix))
        .max_by_key(|(suffix, _)| suffix.len())
        .map(|&(suffix, nanos)| (trim(&text[..text.len() - suffix.len()]), nanos))?;
    let (whole, fraction) = match number.iter().position(|&b| b == b'.') {
        Some(dot) => (&number[..dot], &number[dot + 1..]),
        None => (number, &[][..]),
    };
    let digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    if whole.is_empty() || !digits(whole) || !digits(fraction) || whole.len() > 12 {
        return None;
    }
    let whole = whole
        .iter()
        .fold(0u128, |value, digit| value * 10 + u128::from(digit - b'0'));
    // Nine fraction digits are a nanosecond of a second; more say nothing.
    let mut scale = 1u128;
    let mut fraction_value = 0u128;
    for &digit in fraction.iter().take(9) {
        fraction_value = fraction_value * 10 + u128::from(digit - b'0');
        scale *= 10;
    }
    let nanos = whole * u128::from(unit) + fraction_value * u128::from(unit) / scale;
    let nanos = u64::try_from(nanos).ok()?;
    Some(Duration::from_nanos(nanos))
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

/// The value that carries `budget` in `form`, and the budget it says.
fn write_value(budget: Duration, form: Form) -> (HeaderValue, Duration) {
    match form {
        Form::Grpc => {
            let timeout = GrpcTimeout::from(budget);
            (HeaderValue::from(timeout), timeout.duration())
        }
        Form::Connect | Form::Millis => {
            const MAX: u128 = 9_999_999_999;
            let floor = match form {
                // Connect wants a positive value: a spent budget is sent as
                // 1 ms, so that the peer reports its deadline exceeded
                // rather than a malformed header.
                Form::Connect => 1,
                _ => 0,
            };
            let millis = budget.as_millis().clamp(floor, MAX);
            // At most ten digits: fits a u64.
            let millis = u64::try_from(millis).unwrap_or(u64::MAX);
            (HeaderValue::from(millis), Duration::from_millis(millis))
        }
    }
}

impl From<GrpcTimeout> for HeaderValue {
    /// The `grpc-timeout` header value.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio_ctx::GrpcTimeout;
    ///
    /// let value = http::HeaderValue::from(GrpcTimeout::from(Duration::from_secs(2)));
    /// assert_eq!(value, "2000000u");
    /// ```
    fn from(budget: GrpcTimeout) -> Self {
        // Digits and a unit letter are always a valid header value. The
        // fallback only keeps this free of a panic path, and errs on the
        // side of less time.
        HeaderValue::from_str(&budget.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("1n"))
    }
}

/// A budget header whose value is not in its header's form: malformed,
/// too long, negative, empty or not ASCII.
///
/// The server layers answer it with `400 Bad Request` (axum) or
/// `INVALID_ARGUMENT` (tonic) when they read [strictly](Parsing::Strict).
///
/// ```
/// use http::HeaderMap;
/// use tokio_ctx::headers::{BudgetHeaders, Parsing};
///
/// let mut request = HeaderMap::new();
/// request.insert("grpc-timeout", "123456789S".parse().unwrap());
/// let err = BudgetHeaders::default().parsing(Parsing::Strict).read(&request).unwrap_err();
/// assert_eq!(err.header(), "grpc-timeout");
/// assert!(err.to_string().starts_with("invalid grpc-timeout \"123456789S\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBudgetHeader {
    header: HeaderName,
    /// The start of the value, as text.
    value: String,
    expected: &'static str,
}

/// How much of a rejected value an error keeps: a header can be kilobytes
/// long.
const SHOWN: usize = 32;

impl InvalidBudgetHeader {
    fn new(header: HeaderName, value: &[u8], form: Form) -> Self {
        let shown = String::from_utf8_lossy(&value[..value.len().min(SHOWN)]);
        let value = if value.len() > SHOWN {
            format!("{shown}…")
        } else {
            shown.into_owned()
        };
        let expected = match form {
            Form::Grpc => "1 to 8 digits and one of H, M, S, m, u, n",
            Form::Connect | Form::Millis => "1 to 10 digits (milliseconds)",
        };
        InvalidBudgetHeader {
            header,
            value,
            expected,
        }
    }

    /// The header whose value was refused.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::{BudgetHeaders, Parsing};
    ///
    /// let mut request = HeaderMap::new();
    /// request.insert("connect-timeout-ms", "".parse().unwrap());
    /// let err = BudgetHeaders::default().parsing(Parsing::Strict).read(&request).unwrap_err();
    /// assert_eq!(err.header(), "connect-timeout-ms");
    /// ```
    pub fn header(&self) -> &HeaderName {
        &self.header
    }
}

impl fmt::Display for InvalidBudgetHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: expected {}",
            self.header, self.value, self.expected
        )
    }
}

impl std::error::Error for InvalidBudgetHeader {}

impl From<InvalidBudgetHeader> for std::io::Error {
    /// An [`InvalidData`](std::io::ErrorKind::InvalidData) error.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tokio_ctx::headers::{BudgetHeaders, Parsing};
    ///
    /// let mut request = HeaderMap::new();
    /// request.insert("grpc-timeout", "x".parse().unwrap());
    /// let err = BudgetHeaders::default().parsing(Parsing::Strict).read(&request).unwrap_err();
    /// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::InvalidData);
    /// ```
    fn from(err: InvalidBudgetHeader) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn map(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn strict() -> BudgetHeaders {
        BudgetHeaders::default()
            .millis(HeaderName::from_static("x-timeout-ms"))
            .parsing(Parsing::Strict)
    }

    fn lenient() -> BudgetHeaders {
        strict().parsing(Parsing::Lenient)
    }

    #[test]
    fn each_header_in_its_form() {
        for (name, value, budget) in [
            ("grpc-timeout", "250m", 250 * MS),
            ("grpc-timeout", " 2S ", 2000 * MS),
            ("connect-timeout-ms", "1500", 1500 * MS),
            ("connect-timeout-ms", "0", Duration::ZERO),
            (
                "x-timeout-ms",
                "9999999999",
                Duration::from_millis(9_999_999_999),
            ),
        ] {
            let headers = map(&[(name, value.as_bytes())]);
            assert_eq!(strict().read(&headers), Ok(Some(budget)), "{name}: {value}");
            assert_eq!(
                lenient().read(&headers),
                Ok(Some(budget)),
                "{name}: {value}"
            );
        }
        assert_eq!(strict().read(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn bad_values_are_errors_when_strict_and_ignored_when_lenient() {
        let long = vec![b'9'; 4096];
        for (name, value) in [
            ("grpc-timeout", &b"1.5S"[..]),
            ("grpc-timeout", b"123456789m"), // oversized
            ("grpc-timeout", b"-1S"),        // negative
            ("grpc-timeout", b""),           // empty
            ("grpc-timeout", b"\xff1S"),     // not ASCII
            ("connect-timeout-ms", b"12345678901"),
            ("connect-timeout-ms", b"-5"),
            ("connect-timeout-ms", b""),
            ("connect-timeout-ms", b"\xe4\xb8\x80"),
            ("x-timeout-ms", &long),
            ("x-timeout-ms", b"soon"),
            ("x-timeout-ms", b"1e3"),
        ] {
            let headers = map(&[(name, value)]);
            let err = strict().read(&headers).unwrap_err();
            assert_eq!(err.header(), name);
            assert!(err.to_string().len() < 120, "{err}");
            if name != "grpc-timeout" || value != b"1.5S" {
                assert_eq!(lenient().read(&headers), Ok(None), "{name}: {value:?}");
            }
        }
    }

    #[test]
    fn lenient_reads_what_people_write() {
        for (value, budget) in [
            ("500ms", 500 * MS),
            ("1.5s", 1500 * MS),
            ("250 us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("40ns", Duration::from_nanos(40)),
            ("0.0000000015s", Duration::from_nanos(1)),
        ] {
            let headers = map(&[("x-timeout-ms", value.as_bytes())]);
            assert_eq!(lenient().read(&headers), Ok(Some(budget)), "{value}");
            assert!(strict().read(&headers).is_err(), "{value}");
        }
        // In grpc-timeout, `m` stays a millisecond.
        let headers = map(&[("grpc-timeout", b"5m")]);
        assert_eq!(lenient().read(&headers), Ok(Some(5 * MS)));
        // Too large for a u64 of nanoseconds: ignored, not a panic.
        let headers = map(&[("x-timeout-ms", b"999999999999s")]);
        assert_eq!(lenient().read(&headers), Ok(None));
    }

    #[test]
    fn the_tightest_budget_counts() {
        let headers = map(&[
            ("grpc-timeout", b"1S"),
            ("connect-timeout-ms", b"700"),
            ("x-timeout-ms", b"900"),
            ("x-timeout-ms", b"300"),
        ]);
        assert_eq!(strict().read(&headers), Ok(Some(300 * MS)));
    }

    #[test]
    fn writing_rounds_down_and_keeps_tighter_values() {
        let mut headers = HeaderMap::new();
        let budget = Duration::from_micros(1_500_700);
        let carried = strict().write(budget, &mut headers);
        assert_eq!(headers["grpc-timeout"], "1500700u");
        assert_eq!(headers["connect-timeout-ms"], "1500");
        assert_eq!(headers["x-timeout-ms"], "1500");
        assert_eq!(carried, 1500 * MS);

        let mut headers = map(&[("connect-timeout-ms", b"20"), ("x-timeout-ms", b"junk")]);
        let carried = strict().write(100 * MS, &mut headers);
        assert_eq!(headers["connect-timeout-ms"], "20");
        assert_eq!(headers["x-timeout-ms"], "100");
        assert_eq!(carried, 20 * MS);

        let mut headers = HeaderMap::new();
        let carried = strict().write(Duration::ZERO, &mut headers);
        assert_eq!(headers["grpc-timeout"], "1n");
        assert_eq!(headers["connect-timeout-ms"], "1");
        assert_eq!(headers["x-timeout-ms"], "0");
        assert_eq!(carried, Duration::ZERO);

        let mut headers = HeaderMap::new();
        strict().write(Duration::MAX, &mut headers);
        assert_eq!(headers["grpc-timeout"], "99999999H");
        assert_eq!(headers["connect-timeout-ms"], "9999999999");
    }
}
