//! Properties of every header codec that carries a budget between
//! services: a budget written and read back never grows (so a hop can only
//! shorten it), writing what was read is stable, and no input, however
//! malformed, panics a decoder.
//!
//! Each codec is described once by an implementation of [`Codec`]; the
//! `codec_properties!` macro then states every property for it. A new
//! header is one `impl` and one line. The millisecond headers
//! (`connect-timeout-ms`, a plain one) need the `http` feature.

use std::time::Duration;

use proptest::prelude::*;
use tokio_ctx::{Context, GrpcTimeout};

/// A budget's form in one header.
trait Codec {
    /// The smallest budget written: zero is sent as this much (gRPC wants
    /// a positive value, so a zero budget reaches the next service as an
    /// exceeded deadline rather than a malformed header).
    const FLOOR: Duration;
    /// The largest budget the header carries; longer ones are written as
    /// this.
    const MAX: Duration;

    /// The header value for `budget`.
    fn encode(budget: Duration) -> String;
    /// The budget in a header value, or why it is not one.
    fn decode(value: &[u8]) -> Result<Duration, String>;
    /// How much writing `budget` may lose, at most.
    fn max_loss(budget: Duration) -> Duration;
    /// The budget a context carries, in this form.
    fn of_context(ctx: &Context) -> Option<String>;
    /// A value the header may carry, built from arbitrary numbers.
    fn valid(number: u64, choice: u8) -> String;
}

struct Grpc;

impl Codec for Grpc {
    const FLOOR: Duration = Duration::from_nanos(1);
    const MAX: Duration = Duration::from_secs(99_999_999 * 3600);

    fn encode(budget: Duration) -> String {
        GrpcTimeout::from(budget).to_string()
    }

    fn decode(value: &[u8]) -> Result<Duration, String> {
        GrpcTimeout::from_bytes(value)
            .map(|t| t.duration())
            .map_err(|e| e.to_string())
    }

    fn max_loss(budget: Duration) -> Duration {
        // Under one unit of the finest unit that holds it in eight digits.
        budget / 99_999 + Duration::from_nanos(1)
    }

    fn of_context(ctx: &Context) -> Option<String> {
        ctx.grpc_timeout().map(|t| t.to_string())
    }

    fn valid(number: u64, choice: u8) -> String {
        let unit = ['H', 'M', 'S', 'm', 'u', 'n'][usize::from(choice) % 6];
        let digits = number % 100_000_000;
        // Leading zeros are allowed, up to eight digits in all.
        let width = (usize::from(choice) / 6) % 9;
        let value = format!("{digits:0width$}");
        if value.len() > 8 {
            format!("{}{unit}", digits % 10)
        } else {
            format!("{value}{unit}")
        }
    }
}

/// Any duration, with the edges drawn often.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_nanos(1)),
        (0..100_000_000u64).prop_map(Duration::from_nanos),
        any::<u64>().prop_map(Duration::from_nanos),
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

/// Bytes that look like header values more often than uniform noise does.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let near = prop::sample::select(b"0123456789HMSmun \t\x0c-+.\xff".to_vec());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(near, 0..16),
        proptest::collection::vec(any::<u8>(), 4096..8192),
    ]
}

macro_rules! codec_properties {
    ($name:ident, $codec:ty) => {
        mod $name {
            use super::*;

            type C = $codec;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(1024))]

                #[test]
                fn a_written_budget_reads_back_no_larger_and_close(budget in duration()) {
                    let written = C::encode(budget);
                    let read = C::decode(written.as_bytes())
                        .map_err(|e| TestCaseError::fail(format!("{written:?}: {e}")))?;
                    prop_assert!(read <= budget.max(C::FLOOR), "{:?} became {:?}", budget, read);
                    if budget <= C::MAX {
                        let loss = budget.saturating_sub(read);
                        prop_assert!(loss <= C::max_loss(budget), "{:?} lost {:?}", budget, loss);
                    } else {
                        prop_assert_eq!(read, C::MAX);
                    }
                }

                #[test]
                fn writing_what_was_read_is_stable(budget in duration()) {
                    let once = C::encode(budget);
                    let read = C::decode(once.as_bytes()).unwrap();
                    prop_assert_eq!(C::encode(read), once);
                }

                #[test]
                fn every_valid_value_reads_and_never_grows_on_the_next_hop(
                    number in any::<u64>(),
                    choice in any::<u8>(),
                ) {
                    let value = C::valid(number, choice);
                    let read = C::decode(value.as_bytes())
                        .map_err(|e| TestCaseError::fail(format!("{value:?}: {e}")))?;
                    let again = C::decode(C::encode(read).as_bytes()).unwrap();
                    prop_assert!(again <= read.max(C::FLOOR), "{:?}: {:?} became {:?}", value, read, again);
                }

                #[test]
                fn a_context_derived_from_a_header_passes_on_no_more(
                    number in any::<u64>(),
                    choice in any::<u8>(),
                ) {
                    let value = C::valid(number, choice);
                    let read = C::decode(value.as_bytes()).unwrap();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .start_paused(true)
                        .build()
                        .unwrap();
                    let _time = runtime.enter();
                    let (ctx, _cancel) = Context::background().child_with_timeout(read);
                    match C::of_context(&ctx) {
                        Some(out) => {
                            let out = C::decode(out.as_bytes()).unwrap();
                            prop_assert!(out <= read.max(C::FLOOR), "{:?} went out as {:?}", read, out);
                        }
                        // Only a budget too long for a deadline to be stored
                        // (centuries) leaves the context without one.
                        None => prop_assert!(read > Duration::from_secs(200 * 365 * 86_400)),
                    }
                }

                #[test]
                fn arbitrary_bytes_never_panic_the_decoder(bytes in header_bytes()) {
                    match C::decode(&bytes) {
                        Ok(read) => {
                            prop_assert!(read <= C::MAX);
                            // What reads as a budget is printable ASCII.
                            prop_assert!(bytes.iter().all(|b| b.is_ascii() && !b.is_ascii_control() || *b == b'\t'));
                        }
                        // An error quotes the start of the value (32 bytes,
                        // each escaped in at most 10 characters).
                        Err(message) => prop_assert!(message.len() < 512, "{}", message),
                    }
                }

                #[test]
                fn arbitrary_text_never_panics_the_decoder(text in ".{0,40}") {
                    let _ = C::decode(text.as_bytes());
                }
            }
        }
    };
}

codec_properties!(grpc_timeout, Grpc);

/// The millisecond headers, through the set a server reads and a client
/// writes (feature `http`): Connect's `connect-timeout-ms`, and a plain
/// header whose name the services agree on.
#[cfg(feature = "http")]
mod millis {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use tokio_ctx::headers::{BudgetHeaders, Parsing};

    const PLAIN: HeaderName = HeaderName::from_static("x-timeout-ms");

    /// Reads `value` as the only header of `headers`' set, strictly.
    fn decode_in(
        headers: BudgetHeaders,
        name: HeaderName,
        value: &[u8],
    ) -> Result<Duration, String> {
        let value = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
        let mut map = HeaderMap::new();
        map.insert(name, value);
        match headers.parsing(Parsing::Strict).read(&map) {
            Ok(Some(budget)) => Ok(budget),
            Ok(None) => Err("no budget read".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn encode_in(headers: BudgetHeaders, name: HeaderName, budget: Duration) -> String {
        let mut map = HeaderMap::new();
        headers.write(budget, &mut map);
        map[name].to_str().unwrap().to_owned()
    }

    /// One to ten digits, with leading zeros at times.
    fn valid_millis(number: u64, choice: u8) -> String {
        let digits = number % 10_000_000_000;
        let width = usize::from(choice) % 11;
        let value = format!("{digits:0width$}");
        if value.len() > 10 {
            format!("{}", digits % 10)
        } else {
            value
        }
    }

    pub(super) struct Connect;

    impl Codec for Connect {
        // Connect wants a positive value: a spent budget goes out as 1 ms.
        const FLOOR: Duration = Duration::from_millis(1);
        const MAX: Duration = Duration::from_millis(9_999_999_999);

        fn encode(budget: Duration) -> String {
            encode_in(
                BudgetHeaders::none().connect(),
                http::HeaderName::from_static("connect-timeout-ms"),
                budget,
            )
        }

        fn decode(value: &[u8]) -> Result<Duration, String> {
            decode_in(
                BudgetHeaders::none().connect(),
                http::HeaderName::from_static("connect-timeout-ms"),
                value,
            )
        }

        fn max_loss(_budget: Duration) -> Duration {
            // Rounded down to the millisecond.
            Duration::from_millis(1)
        }

        fn of_context(ctx: &Context) -> Option<String> {
            ctx.remaining().map(Self::encode)
        }

        fn valid(number: u64, choice: u8) -> String {
            valid_millis(number, choice)
        }
    }

    pub(super) struct Plain;

    impl Codec for Plain {
        // A plain header may say zero: the budget is spent.
        const FLOOR: Duration = Duration::ZERO;
        const MAX: Duration = Duration::from_millis(9_999_999_999);

        fn encode(budget: Duration) -> String {
            encode_in(BudgetHeaders::none().millis(PLAIN), PLAIN, budget)
        }

        fn decode(value: &[u8]) -> Result<Duration, String> {
            decode_in(BudgetHeaders::none().millis(PLAIN), PLAIN, value)
        }

        fn max_loss(_budget: Duration) -> Duration {
            Duration::from_millis(1)
        }

        fn of_context(ctx: &Context) -> Option<String> {
            ctx.remaining().map(Self::encode)
        }

        fn valid(number: u64, choice: u8) -> String {
            valid_millis(number, choice)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Read leniently (the default, as tonic reads), anything at all is
        /// a budget no larger than the header can say, or nothing: never a
        /// panic, never an error.
        #[test]
        fn lenient_reading_never_fails_nor_panics(bytes in header_bytes(), text in ".{0,40}") {
            for value in [bytes.as_slice(), text.as_bytes()] {
                let Ok(value) = HeaderValue::from_bytes(value) else { continue };
                let mut map = HeaderMap::new();
                map.insert("grpc-timeout", value.clone());
                map.insert("connect-timeout-ms", value.clone());
                map.insert(PLAIN, value);
                let read = BudgetHeaders::default().millis(PLAIN).read(&map);
                prop_assert!(read.is_ok(), "{:?}", read);
            }
        }

        /// Several headers at once: the tightest wins, so a caller cannot
        /// stretch its budget by sending a looser one beside it.
        #[test]
        fn the_tightest_header_wins(a in 0..10_000_000u64, b in 0..10_000_000u64) {
            let mut map = HeaderMap::new();
            map.insert("connect-timeout-ms", HeaderValue::from(a));
            map.insert(PLAIN, HeaderValue::from(b));
            let read = BudgetHeaders::none().connect().millis(PLAIN).read(&map).unwrap();
            prop_assert_eq!(read, Some(Duration::from_millis(a.min(b))));
        }
    }
}

#[cfg(feature = "http")]
codec_properties!(connect_timeout_ms, millis::Connect);
#[cfg(feature = "http")]
codec_properties!(plain_millis, millis::Plain);
