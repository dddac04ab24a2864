//! `BudgetHeaders::read` on any value in any budget header, strictly and
//! leniently: no panic; lenient reading never fails; whatever strict
//! reading accepts, lenient reading reads the same; no header says more
//! than its form can carry; and writing what was read never gives more
//! time on the next hop.
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tokio_ctx::headers::{BudgetHeaders, Parsing, CONNECT_TIMEOUT_MS, GRPC_TIMEOUT};

const PLAIN: HeaderName = HeaderName::from_static("x-timeout-ms");

/// The most each form can say: 99,999,999 hours, or ten digits of
/// milliseconds; lenient reading of human forms stays within a u64 of
/// nanoseconds.
fn most(name: &HeaderName) -> Duration {
    if *name == GRPC_TIMEOUT {
        Duration::from_secs(99_999_999 * 3600)
    } else {
        Duration::from_millis(9_999_999_999)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, value)) = data.split_first() else {
        return;
    };
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return; // http would not deliver it
    };
    let (name, set) = match choice % 3 {
        0 => (GRPC_TIMEOUT, BudgetHeaders::none().grpc()),
        1 => (CONNECT_TIMEOUT_MS, BudgetHeaders::none().connect()),
        _ => (PLAIN, BudgetHeaders::none().millis(PLAIN)),
    };
    let mut headers = HeaderMap::new();
    headers.insert(name.clone(), value);

    let lenient = set.clone().parsing(Parsing::Lenient).read(&headers);
    let lenient = lenient.expect("lenient reading never fails");
    let strict = set.clone().parsing(Parsing::Strict).read(&headers);
    match &strict {
        Ok(read) => {
            assert_eq!(
                *read, lenient,
                "both read a value in the header's own form alike"
            );
            let read = read.expect("one header was there");
            assert!(read <= most(&name), "{read:?}");
        }
        Err(invalid) => {
            assert_eq!(invalid.header(), &name);
            assert!(invalid.to_string().len() < 512, "{invalid}");
        }
    }
    if let Some(read) = lenient {
        if strict.is_err() {
            // Read only leniently, from a human form: within a u64 of
            // nanoseconds.
            assert!(read <= Duration::from_nanos(u64::MAX), "{read:?}");
        }
        // The next hop: written in the same form, read back strictly, it
        // is never more (up to the floor a positive-only form needs).
        let mut next = HeaderMap::new();
        let carried = set.clone().write(read, &mut next);
        let again = set
            .parsing(Parsing::Strict)
            .read(&next)
            .expect("what is written reads strictly")
            .expect("a budget was written");
        assert_eq!(again, carried);
        assert!(
            again <= read.max(Duration::from_millis(1)),
            "{read:?} became {again:?}"
        );
    }
});
