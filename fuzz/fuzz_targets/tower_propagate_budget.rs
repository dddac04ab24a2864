//! The client layer writing the caller's budget into an outgoing request
//! that already carries any `grpc-timeout` value: what goes out parses and
//! asks for no more than the context has left, nor more than a valid value
//! already asked; without a budget of its own the header passes untouched;
//! only an ended context, or a request that asks for no time, fails the
//! call; nothing panics.
#![no_main]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_ctx::headers::GRPC_TIMEOUT;
use tokio_ctx::tower::PropagateBudgetLayer;
use tokio_ctx::{Context, GrpcTimeout};
use tower_layer::Layer;
use tower_service::Service;

/// What arrived in the header, carried back in the response's extensions.
#[derive(Clone)]
struct Sent(Option<HeaderValue>);

/// Answers with the `grpc-timeout` value it received.
struct Echo;

impl Service<Request<()>> for Echo {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let mut response = Response::new(String::new());
        let sent = Sent(request.headers().get(GRPC_TIMEOUT).cloned());
        response.extensions_mut().insert(sent);
        ready(Ok(response))
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
                let Sent(sent) = response
                    .extensions()
                    .get::<Sent>()
                    .cloned()
                    .expect("it arrived");
                match left {
                    None => assert_eq!(sent, existing),
                    Some(left) => {
                        let sent = sent.expect("a budget is always sent");
                        let sent = GrpcTimeout::from_bytes(sent.as_bytes())
                            .expect("what is sent parses")
                            .duration();
                        assert!(
                            sent <= left.max(Duration::from_nanos(1)),
                            "{sent:?} > {left:?}"
                        );
                        if let Some(asked) = asked {
                            assert!(sent <= asked.duration(), "{sent:?} > asked {asked:?}");
                        }
                    }
                }
            }
            Err(err) => {
                // Only a context that has ended refuses to send, or a call
                // whose request already asks for no time at all: the call
                // runs under exactly the budget it sends, and that one is
                // spent before it starts.
                let err = err.downcast::<tokio_ctx::Error>().expect("a context error");
                let asked_nothing = asked.is_some_and(|asked| asked.duration().is_zero());
                assert!(ctx.is_done() || (asked_nothing && err.is_deadline_exceeded()), "{err}");
            }
        }
    });
});
