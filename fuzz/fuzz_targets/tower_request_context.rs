//! The server layer reading any `grpc-timeout` header a caller sends: a
//! malformed value is refused with `InvalidGrpcTimeout` before the handler
//! runs, a valid one gives the handler no more than it asks for, and
//! nothing panics.
#![no_main]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_ctx::tower::{RequestContextLayer, GRPC_TIMEOUT};
use tokio_ctx::{Context, GrpcTimeout, InvalidGrpcTimeout};
use tower_layer::Layer;
use tower_service::Service;

/// Answers with the budget its request context was given.
struct Remaining;

impl Service<Request<()>> for Remaining {
    type Response = Response<Option<Duration>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let ctx = request
            .extensions()
            .get::<Context>()
            .expect("the layer adds it");
        ready(Ok(Response::new(ctx.remaining())))
    }
}

/// One runtime for every input, with time paused so that budgets are
/// exact.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return; // http would not deliver it
    };
    let request = Request::builder()
        .header(GRPC_TIMEOUT, value)
        .body(())
        .unwrap();
    let expected = GrpcTimeout::from_bytes(data);
    let mut service = RequestContextLayer::new(Context::background()).layer(Remaining);
    // The call derives the context: inside the runtime, on its paused clock.
    let answer = runtime().block_on(async { service.call(request).await });
    match (expected, answer) {
        (Ok(asked), Ok(response)) => {
            let given = *response.body();
            // A budget too long to store as a deadline (centuries) gives
            // no deadline; any other is exactly what was asked.
            match given {
                Some(given) => assert_eq!(given, asked.duration()),
                None => assert!(asked.duration() > Duration::from_secs(200 * 365 * 86_400)),
            }
        }
        (Err(_), Err(refused)) => assert!(refused.is::<InvalidGrpcTimeout>()),
        (Ok(_), Err(err)) => {
            // Only an expired context fails a valid call: a zero budget.
            let err = err.downcast::<tokio_ctx::Error>().expect("a context error");
            assert!(err.is_deadline_exceeded());
        }
        (Err(malformed), Ok(_)) => panic!("{malformed} reached the handler"),
    }
});
