//! `GrpcTimeout::from_bytes` and `str::parse` on any input: no panic, the
//! two agree, and whatever reads as a budget writes back as itself.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio_ctx::GrpcTimeout;

fuzz_target!(|data: &[u8]| {
    let read = GrpcTimeout::from_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(text.parse::<GrpcTimeout>(), read);
    }
    match read {
        Ok(budget) => {
            let written = budget.to_string();
            assert_eq!(written.parse::<GrpcTimeout>(), Ok(budget));
            assert!(written.len() <= 9, "{written:?}");
            assert!(budget.duration() <= GrpcTimeout::MAX.duration());
            // Writing the budget again never gives more time (a zero budget
            // is written as the smallest positive one).
            let again = GrpcTimeout::from(budget.duration()).duration();
            assert!(again <= budget.duration().max(Duration::from_nanos(1)));
        }
        Err(malformed) => {
            // The error quotes the start of the value (32 bytes, each
            // escaped in at most 10 characters), and converts.
            assert!(malformed.to_string().len() < 512, "{malformed}");
            let _ = std::io::Error::from(malformed);
        }
    }
});
