//! The server layer reading any budget header a caller sends, strictly and
//! leniently: a value strict reading refuses is refused before the handler
//! runs (strict) or ignored (lenient); any other gives the handler no more
//! than it asks for; nothing panics.
#![no_main]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_ctx::headers::{
    BudgetHeaders, InvalidBudgetHeader, Parsing, CONNECT_TIMEOUT_MS, GRPC_TIMEOUT,
};
use tokio_ctx::tower::RequestContextLayer;
use tokio_ctx::Context;
use tower_layer::Layer;
use tower_service::Service;

/// What the handler was given, carried back in the response's extensions.
#[derive(Clone, Copy)]
struct Given(Option<Duration>);

/// Answers with the budget its request context was given.
struct Remaining;

impl Service<Request<()>> for Remaining {
    type Response = Response<String>;
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
        let mut response = Response::new(String::new());
        response.extensions_mut().insert(Given(ctx.remaining()));
        ready(Ok(response))
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
    let Some((&choice, value)) = data.split_first() else {
        return;
    };
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return; // http would not deliver it
    };
    let name: HeaderName = if choice & 1 == 0 {
        GRPC_TIMEOUT
    } else {
        CONNECT_TIMEOUT_MS
    };
    let parsing = if choice & 2 == 0 {
        Parsing::Strict
    } else {
        Parsing::Lenient
    };
    let headers = BudgetHeaders::default().parsing(parsing);
    let mut alone = HeaderMap::new();
    alone.insert(name.clone(), value.clone());
    let expected = headers.read(&alone);

    let request = Request::builder().header(name, value).body(()).unwrap();
    let mut service = RequestContextLayer::new(Context::background())
        .headers(headers)
        .layer(Remaining);
    // The call derives the context: inside the runtime, on its paused clock.
    let answer = runtime().block_on(async { service.call(request).await });
    match (expected, answer) {
        (Ok(asked), Ok(response)) => {
            let Given(given) = *response
                .extensions()
                .get::<Given>()
                .expect("the handler ran");
            match (asked, given) {
                (None, None) => {}
                // A budget too long to store as a deadline (centuries)
                // gives no deadline; any other is exactly what was asked.
                (Some(asked), Some(given)) => assert_eq!(given, asked),
                (Some(asked), None) => assert!(asked > Duration::from_secs(200 * 365 * 86_400)),
                (None, Some(given)) => panic!("no budget asked, {given:?} given"),
            }
        }
        (Err(_), Err(refused)) => assert!(refused.is::<InvalidBudgetHeader>(), "{refused}"),
        (Ok(asked), Err(err)) => {
            // Only an expired context fails a valid call: a zero budget.
            let err = err.downcast::<tokio_ctx::Error>().expect("a context error");
            assert!(err.is_deadline_exceeded(), "{err}");
            assert_eq!(asked, Some(Duration::ZERO));
        }
        (Err(malformed), Ok(_)) => panic!("{malformed} reached the handler"),
    }
});
