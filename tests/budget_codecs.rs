//! Properties of every header codec that carries a budget between
//! services: a budget written and read back never grows (so a hop can only
//! shorten it), writing what was read is stable, and no input, however
//! malformed, panics a decoder.
//!
//! Each codec is described once by an implementation of [`Codec`]; the
//! `codec_properties!` macro then states every property for it. A new
//! header is one `impl` and one line.

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
// When the headers `connect-timeout-ms` and a plain milliseconds header
// get decoders: implement `Codec` for each and add a line here.
