//! Across services: the caller's budget travels with the call, and a caller
//! that gives up stops the work downstream.
//!
//! A *frontend* request has a budget of 600 ms. It spends 200 ms on its own
//! work, then calls an *inventory* service through `PropagateBudgetLayer`,
//! which writes what is left into the `grpc-timeout` header. The inventory
//! service sits behind `RequestContextLayer`, which turns the header back
//! into a request context, so the lookup it runs knows it has about 400 ms,
//! not a fresh budget of its own. The lookup also starts a background
//! refresh under the request's context, which reports how it ended.
//!
//! The two services are joined in-process here (the layers only see
//! `http::Request`s); over a network, the call being dropped is the
//! connection closing. `examples/grpc_chain.rs` does the same over real
//! connections, with tonic and axum. Three cases run, with real delays:
//!
//! 1. the lookup fits the budget: the answer comes back, and the refresh
//!    stops when the answer is complete, as the request ends with it;
//! 2. the lookup is too slow: the inventory's copy of the budget runs out
//!    and both sides report the deadline, which names the request;
//! 3. the frontend's user hangs up after 300 ms: the frontend drops the
//!    call, and the inventory's request context is canceled at once.
//!
//! ```text
//! cargo run --example across_services --features tower
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};
use tokio_ctx::headers::GRPC_TIMEOUT;
use tokio_ctx::tower::{BoxError, ContextBody, PropagateBudgetLayer, RequestContextLayer};
use tokio_ctx::{Context, Error};
use tower_layer::Layer;
use tower_service::Service;

const MS: Duration = Duration::from_millis(1);

/// The inventory service's handler: a lookup that takes `lookup` and
/// starts a refresh task under the request's context.
#[derive(Clone)]
struct Inventory {
    lookup: Duration,
    started: Instant,
    /// Told when the refresh has stopped.
    refreshed: mpsc::UnboundedSender<()>,
}

impl Service<Request<()>> for Inventory {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let header = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let ctx = Context::current();
        let at = self.started.elapsed();
        println!(
            "  {:>4} ms  inventory: grpc-timeout {header}, so the request has {} ms left",
            at.as_millis(),
            ctx.remaining().unwrap_or_default().as_millis()
        );
        let started = self.started;
        let refresh = ctx.clone();
        let refreshed = self.refreshed.clone();
        tokio::spawn(async move {
            let err = refresh.done().await;
            println!(
                "  {:>4} ms  inventory: background refresh stopped: {err}",
                started.elapsed().as_millis()
            );
            let _ = refreshed.send(());
        });
        let lookup = self.lookup;
        Box::pin(async move {
            sleep(lookup).await;
            Ok(Response::new(format!(
                "3 in stock (lookup took {} ms)",
                lookup.as_millis()
            )))
        })
    }
}

/// What the frontend saw of its call, after reading the answer's body.
async fn describe(outcome: Result<Response<ContextBody<ContextBody<String>>>, BoxError>) -> String {
    match outcome {
        Ok(response) => match response.into_body().collect().await {
            Ok(body) => format!("answer: {}", String::from_utf8_lossy(&body.to_bytes())),
            Err(err) => format!("the answer was cut off: {err}"),
        },
        Err(err) => match err.downcast_ref::<Error>() {
            Some(ended) if ended.is_deadline_exceeded() => {
                format!("no answer, the budget ran out: {ended}")
            }
            Some(ended) => format!("no answer, stopped: {ended}"),
            None => format!("the call failed: {err}"),
        },
    }
}

async fn run_case(title: &str, lookup: Duration, hang_up_after: Option<Duration>) {
    println!("\n{title}");
    let started = Instant::now();
    let (refreshed, mut refresh_stopped) = mpsc::unbounded_channel();
    let inventory = RequestContextLayer::new(Context::background()).layer(Inventory {
        lookup,
        started,
        refreshed,
    });
    let mut client = PropagateBudgetLayer::new().layer(inventory);

    let (frontend, hang_up) = Context::background()
        .named("frontend request")
        .child_with_timeout(600 * MS);
    let _hang_up = match hang_up_after {
        Some(after) => {
            tokio::spawn(async move {
                sleep(after).await;
                hang_up.cancel_with("the user hung up");
            });
            None
        }
        None => Some(hang_up),
    };

    let outcome = frontend
        .run(async {
            sleep(200 * MS).await; // the frontend's own work
            let lookup = Request::builder()
                .uri("/inventory.Stock/Lookup")
                .body(())
                .expect("a valid request");
            client.call(lookup).await
        })
        .await;
    let said = match outcome {
        Ok(call) => describe(call).await,
        Err(ended) => format!("the frontend request ended first: {ended}"),
    };
    println!(
        "  {:>4} ms  frontend: {said}",
        started.elapsed().as_millis()
    );
    // The refresh ends with the inventory's request, whenever that is.
    let _ = refresh_stopped.recv().await;
}

#[tokio::main]
async fn main() {
    println!("A frontend request with a 600 ms budget calls the inventory after 200 ms.");
    run_case("1. the lookup fits the budget", 100 * MS, None).await;
    run_case("2. the lookup is too slow", 800 * MS, None).await;
    run_case(
        "3. the user hangs up after 300 ms",
        800 * MS,
        Some(300 * MS),
    )
    .await;
}
