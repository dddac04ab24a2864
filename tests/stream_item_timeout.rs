//! `Context::stream` / `ContextStream::item_timeout`: items under a request
//! budget, each with a limit of its own (scenario 7).

use std::pin::pin;
use std::time::Duration;

use futures::stream::{self, FusedStream};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{self, Instant};
use tokio_ctx::{Context, Error};
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

const MS: Duration = Duration::from_millis(1);

/// A socket-like stream: items are whatever is sent on the returned sender.
fn socket<T>() -> (mpsc::UnboundedSender<T>, impl Stream<Item = T> + Unpin) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    (tx, stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

fn request(budget: Duration) -> (Context, tokio_ctx::CancelHandle) {
    Context::background()
        .named("request")
        .child_with_timeout(budget)
}

#[tokio::test(start_paused = true)]
async fn items_pass_through_in_order_and_the_stream_ends_with_the_inner_one() {
    let (request, _cancel) = request(Duration::from_secs(60));
    let (tx, socket) = socket();
    let producer = tokio::spawn(async move {
        for chunk in ["a", "b", "c"] {
            time::sleep(9 * MS).await;
            tx.send(chunk).unwrap();
        }
    });
    let chunks = request.named("chunk").stream(socket).item_timeout(10 * MS);
    let mut chunks = pin!(chunks);
    let mut got = Vec::new();
    while let Some(chunk) = chunks.next().await {
        got.push(chunk.unwrap());
    }
    assert_eq!(got, ["a", "b", "c"], "each 9ms item fits its own 10ms");
    assert!(chunks.is_terminated());
    assert!(chunks.next().await.is_none());
    producer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_is_always_ready_passes_under_a_zero_item_limit() {
    let out: Vec<_> = Context::background()
        .stream(stream::iter(1..=3))
        .item_timeout(Duration::ZERO)
        .collect()
        .await;
    assert_eq!(
        out.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_item_fires_its_own_limit_and_names_it() {
    let (request, _cancel) = request(Duration::from_secs(60));
    let (tx, socket) = socket();
    let chunks = request
        .named("chunk")
        .stream(socket)
        .item_timeout(Duration::from_millis(500)); // <- this line
    let line = line!() - 1;
    let mut chunks = task::spawn(chunks);

    tx.send(1).unwrap();
    assert_eq!(assert_ready!(chunks.poll_next()).unwrap().unwrap(), 1);
    assert_pending!(chunks.poll_next());
    time::advance(499 * MS).await;
    assert_pending!(chunks.poll_next());
    time::advance(MS).await;
    assert!(chunks.is_woken());
    let err = assert_ready!(chunks.poll_next()).unwrap().unwrap_err();

    assert!(err.is_deadline_exceeded());
    assert!(err.is_own(), "the item's limit, not the request's budget");
    assert_eq!(err.context_name(), Some("chunk"));
    assert_eq!(err.budget(), Some(500 * MS));
    assert_eq!(
        (err.location().file(), err.location().line()),
        (file!(), line),
        "located where the limit was written"
    );
    assert!(err
        .to_string()
        .starts_with(r#"deadline of "chunk" (500ms, set at tests/stream_item_timeout.rs:"#));
    assert!(!request.is_done(), "the request goes on");
}

#[tokio::test(start_paused = true)]
async fn after_an_item_timeout_the_stream_goes_on_with_a_fresh_limit() {
    let (tx, socket) = socket();
    let mut chunks = task::spawn(Box::pin(
        Context::background().stream(socket).item_timeout(10 * MS),
    ));

    assert_pending!(chunks.poll_next());
    time::advance(10 * MS).await;
    assert!(assert_ready!(chunks.poll_next())
        .unwrap()
        .unwrap_err()
        .is_own());
    assert!(!chunks.is_terminated());

    // The next wait starts a new 10ms, however late the item was.
    assert_pending!(chunks.poll_next());
    time::advance(9 * MS).await;
    tx.send("late").unwrap();
    assert_eq!(assert_ready!(chunks.poll_next()).unwrap().unwrap(), "late");
}

#[tokio::test(start_paused = true)]
async fn the_item_clock_starts_when_the_consumer_asks_for_the_item() {
    let (tx, socket) = socket();
    let chunks = Context::background().stream(socket).item_timeout(10 * MS);
    let mut chunks = pin!(chunks);
    tx.send(1).unwrap();
    assert_eq!(chunks.next().await.unwrap().unwrap(), 1);

    // The consumer is busy for longer than the item limit...
    time::sleep(50 * MS).await;
    let producer = tokio::spawn(async move {
        time::sleep(8 * MS).await;
        tx.send(2).unwrap();
    });
    // ...which does not count against the next item.
    let start = Instant::now();
    assert_eq!(chunks.next().await.unwrap().unwrap(), 2);
    assert_eq!(start.elapsed(), 8 * MS);
    producer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fast_items_that_outlive_the_request_budget_fail_naming_the_request() {
    let (request, _cancel) = request(25 * MS);
    let (tx, socket) = socket();
    let producer = tokio::spawn(async move {
        for n in 0.. {
            time::sleep(8 * MS).await;
            if tx.send(n).is_err() {
                break;
            }
        }
    });
    let chunks = request.named("chunk").stream(socket).item_timeout(10 * MS);
    let mut chunks = Box::pin(chunks);
    let start = Instant::now();
    let mut got = Vec::new();
    let err = loop {
        match chunks.next().await.unwrap() {
            Ok(n) => got.push(n),
            Err(err) => break err,
        }
    };

    assert_eq!(
        got,
        [0, 1, 2],
        "items at 8, 16 and 24ms each beat their 10ms"
    );
    assert_eq!(start.elapsed(), 25 * MS, "then the request's 25ms ran out");
    assert!(err.is_deadline_exceeded());
    assert!(!err.is_own(), "not recoverable: the request is over");
    assert_eq!(err.context_name(), Some("request"));
    assert!(
        chunks.next().await.is_none(),
        "the stream ended with the request"
    );
    drop(chunks); // closes the socket, so the producer stops
    producer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_item_limit_beyond_the_remaining_budget_is_clipped() {
    let (request, _cancel) = request(Duration::from_secs(3));
    let (_tx, socket) = socket::<()>();
    let chunks = request
        .named("chunk")
        .stream(socket)
        .item_timeout(Duration::from_secs(10));
    let start = Instant::now();
    let err = pin!(chunks).next().await.unwrap().unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert!(!err.is_own());
    assert_eq!(err.context_name(), Some("request"));
    assert_eq!(err.budget(), Some(Duration::from_secs(3)));
}

#[tokio::test(start_paused = true)]
async fn an_item_limit_equal_to_the_remaining_budget_counts_as_the_request() {
    let (request, _cancel) = request(10 * MS);
    let (_tx, socket) = socket::<()>();
    let chunks = request.named("chunk").stream(socket).item_timeout(10 * MS);
    let err = pin!(chunks).next().await.unwrap().unwrap_err();
    assert!(!err.is_own(), "the request is over too");
    assert_eq!(err.context_name(), Some("request"));
}

async fn cancel_ends_the_stream_with_the_cause(item_limit: Option<Duration>) {
    let (request, cancel) = request(Duration::from_secs(60));
    let (tx, socket) = socket();
    let chunks = request.named("chunk").stream(socket);
    let chunks = match item_limit {
        Some(limit) => chunks.item_timeout(limit),
        None => chunks,
    };
    let mut chunks = task::spawn(Box::pin(chunks));

    tx.send(1).unwrap();
    assert_eq!(assert_ready!(chunks.poll_next()).unwrap().unwrap(), 1);
    assert_pending!(chunks.poll_next());
    cancel.cancel_with("client went away");
    assert!(
        chunks.is_woken(),
        "a waiting consumer is woken by the cancellation"
    );
    let err = assert_ready!(chunks.poll_next()).unwrap().unwrap_err();

    assert!(err.is_canceled());
    assert_eq!(err.cause().unwrap().to_string(), "client went away");
    assert_eq!(err.cause().unwrap().to_string(), "client went away");
    if item_limit.is_some() {
        assert!(!err.is_own(), "from above the item");
    }

    // Fused: nothing more, even when the inner stream has items ready.
    tx.send(2).unwrap();
    assert!(chunks.is_terminated());
    assert!(assert_ready!(chunks.poll_next()).is_none());
    assert!(assert_ready!(chunks.poll_next()).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_from_outside_ends_the_stream_with_its_cause() {
    cancel_ends_the_stream_with_the_cause(None).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_from_outside_ends_a_stream_with_an_item_limit() {
    cancel_ends_the_stream_with_the_cause(Some(Duration::from_secs(10))).await;
}

#[tokio::test(start_paused = true)]
async fn without_an_item_limit_the_error_is_the_contexts_own() {
    let (request, _cancel) = request(5 * MS);
    let (_tx, socket) = socket::<()>();
    let mut chunks = pin!(request.stream(socket));
    let err = chunks.next().await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), request.err().unwrap().to_string());
    assert!(err.is_own(), "read from the stream's context itself");
    assert!(chunks.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn an_ended_context_stops_even_a_stream_that_is_always_ready() {
    let (request, cancel) = request(Duration::from_secs(60));
    let (tx, socket) = socket();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let mut chunks = pin!(request.stream(socket).item_timeout(Duration::from_secs(1)));
    assert_eq!(chunks.next().await.unwrap().unwrap(), 1);
    cancel.cancel();
    let err: Error = chunks.next().await.unwrap().unwrap_err();
    assert!(err.is_canceled());
    assert!(!err.is_own(), "the context ended, not the item's limit");
    assert!(
        chunks.next().await.is_none(),
        "the ready item 2 is not taken"
    );
}

#[tokio::test(start_paused = true)]
async fn an_item_ready_in_the_poll_its_limit_passes_is_delivered() {
    let (tx, socket) = socket();
    let mut chunks = task::spawn(Context::background().stream(socket).item_timeout(10 * MS));
    assert_pending!(chunks.poll_next());
    time::advance(10 * MS).await;
    tx.send("just in time").unwrap();
    assert_eq!(
        assert_ready!(chunks.poll_next()).unwrap().unwrap(),
        "just in time"
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_item_limit_fails_a_pending_item_at_once() {
    let (tx, socket) = socket();
    let mut chunks = task::spawn(
        Context::background()
            .named("chunk")
            .stream(socket)
            .item_timeout(Duration::ZERO),
    );
    tx.send(1).unwrap();
    assert_eq!(assert_ready!(chunks.poll_next()).unwrap().unwrap(), 1);
    let err = assert_ready!(chunks.poll_next()).unwrap().unwrap_err();
    assert!(err.is_own());
    assert_eq!(err.context_name(), Some("chunk"));
    assert_eq!(err.budget(), Some(Duration::ZERO));
    tx.send(2).unwrap();
    assert_eq!(assert_ready!(chunks.poll_next()).unwrap().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_max_item_limit_adds_no_limit_of_its_own() {
    let (tx, inner) = socket();
    let mut chunks = task::spawn(
        Context::background()
            .stream(inner)
            .item_timeout(Duration::MAX),
    );
    assert_pending!(chunks.poll_next());
    time::advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert_pending!(chunks.poll_next());
    tx.send(1).unwrap();
    assert_eq!(assert_ready!(chunks.poll_next()).unwrap().unwrap(), 1);

    let (request, _cancel) = request(Duration::from_secs(1));
    let (_tx, socket) = socket::<()>();
    let chunks = request.stream(socket).item_timeout(Duration::MAX);
    let err = pin!(chunks).next().await.unwrap().unwrap_err();
    assert!(!err.is_own(), "only the request's budget applies");
    assert_eq!(err.context_name(), Some("request"));
}

#[tokio::test(start_paused = true)]
async fn the_stream_works_in_a_select_loop_without_losing_items() {
    let (request, _cancel) = request(Duration::from_secs(60));
    let (tx, socket) = socket();
    let producer = tokio::spawn(async move {
        for n in 0..5 {
            time::sleep(7 * MS).await;
            tx.send(n).unwrap();
        }
    });
    let mut chunks = pin!(request.stream(socket).item_timeout(10 * MS));
    let mut ticks = time::interval(3 * MS);
    let mut got = Vec::new();
    loop {
        tokio::select! {
            chunk = chunks.next() => match chunk {
                Some(chunk) => got.push(chunk.unwrap()),
                None => break,
            },
            _ = ticks.tick() => {}
        }
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    producer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_item_clock_is_not_restarted_by_a_select_loop() {
    // `select!` drops the `next()` future every time the tick wins; the item's
    // limit lives in the stream, so it still fires after 10ms, not never.
    let (_tx, socket) = socket::<()>();
    let mut chunks = pin!(Context::background().stream(socket).item_timeout(10 * MS));
    let mut ticks = time::interval(3 * MS);
    let start = Instant::now();
    let mut tick_count = 0;
    let err = loop {
        tokio::select! {
            chunk = chunks.next() => break chunk.unwrap().unwrap_err(),
            _ = ticks.tick() => tick_count += 1,
        }
    };
    assert!(err.is_own());
    assert_eq!(start.elapsed(), 10 * MS);
    assert_eq!(tick_count, 4, "ticks at 0, 3, 6 and 9ms");
}
