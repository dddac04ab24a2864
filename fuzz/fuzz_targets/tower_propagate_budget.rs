//! The client layer reading the `grpc-timeout` header already on an
//! outgoing request (any bytes), under a context with any budget: what
//! goes out never asks for more than the context has left, nor more than
//! a valid header already asked for, and nothing panics.
#![no_main]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_ctx::tower::{PropagateBudgetLayer, GRPC_TIMEOUT};
use tokio_ctx::{Context, GrpcTimeout};
use tower_layer::Layer;
use tower_service::Service;

/// Answers with the header value it was sent.
struct Echo;

impl Service<Request<()>> for Echo {
    type Response = Response<Option<HeaderValue>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        ready(Ok(Response::new(
            request.headers().get(GRPC_TIMEOUT).cloned(),
        )))
    }
}

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
    let Some((budget, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    // Any budget, from a nanosecond to centuries, or none.
    let nanos = u64::from_le_bytes(*budget);
    let budget = (nanos != u64::MAX).then(|| Duration::from_nanos(nanos));
    let mut request = Request::builder().body(()).unwrap();
    let existing = HeaderValue::from_bytes(header).ok();
    if let Some(existing) = &existing {
        request.headers_mut().insert(GRPC_TIMEOUT, existing.clone());
    }
    let asked = existing
        .as_ref()
        .and_then(|v| GrpcTimeout::from_bytes(v.as_bytes()).ok());
    runtime().block_on(async {
        let (ctx, _cancel) = match budget {
            Some(budget) => Context::background().child_with_timeout(budget),
            None => Context::background().child(),
        };
        request.extensions_mut().insert(ctx.clone());
        let left = ctx.remaining();
        let mut client = PropagateBudgetLayer::new().layer(Echo);
        match client.call(request).await {
            Ok(response) => {
                let sent = response.body().as_ref();
                match left {
                    // No budget of our own: the header passes untouched.
                    None => assert_eq!(sent, existing.as_ref()),
                    Some(left) => {
                        let sent = sent.expect("a budget is always sent");
                        let sent = GrpcTimeout::from_bytes(sent.as_bytes())
                            .expect("what is sent parses")
                            .duration();
                        assert!(sent <= left.max(Duration::from_nanos(1)));
                        if let Some(asked) = asked {
                            assert!(sent <= asked.duration());
                        }
                    }
                }
            }
            // Only a context that has already ended refuses to send.
            Err(err) => {
                let err = err.downcast::<tokio_ctx::Error>().expect("a context error");
                assert!(err.is_deadline_exceeded());
                assert_eq!(left, Some(Duration::ZERO));
            }
        }
    });
});
