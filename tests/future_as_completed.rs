//! `as_completed`: outputs in completion order; the context's end is yielded
//! once; dropping the stream leaves nothing running.

use std::future::pending;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::time;
use tokio_ctx::Context;

fn after(
    ms: u64,
) -> impl FnOnce(Context) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
    move |_ctx| {
        Box::pin(async move {
            time::sleep(Duration::from_millis(ms)).await;
            ms
        })
    }
}

#[tokio::test(start_paused = true)]
async fn outputs_come_in_completion_order_with_their_index() {
    let stream = Context::background().as_completed([after(30), after(10), after(20)]);
    let all: Vec<_> = stream.map(Result::unwrap).collect().await;
    assert_eq!(all, vec![(1, 10), (2, 20), (0, 30)]);
}

#[tokio::test(start_paused = true)]
async fn the_context_ending_yields_its_error_once_and_ends_the_stream() {
    let (ctx, _) = Context::background().child_with_timeout(Duration::from_millis(15));
    let mut stream = pin!(ctx.as_completed([after(10), after(20), after(30)]));
    assert_eq!(stream.next().await.unwrap().unwrap(), (0, 10));
    assert!(stream
        .next()
        .await
        .unwrap()
        .unwrap_err()
        .is_deadline_exceeded());
    assert!(stream.next().await.is_none());
    assert!(stream.next().await.is_none(), "fused");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_early_drops_what_is_still_running() {
    let permits = Arc::new(Semaphore::new(3));
    let fns = (0..3u64).map(|i| {
        let permits = Arc::clone(&permits);
        move |_ctx: Context| async move {
            let _permit = permits.acquire_owned().await.unwrap();
            if i == 0 {
                time::sleep(Duration::from_millis(1)).await;
                return i;
            }
            pending().await
        }
    });
    {
        let mut stream = pin!(Context::background().as_completed(fns));
        assert_eq!(stream.next().await.unwrap().unwrap(), (0, 0));
        assert_eq!(permits.available_permits(), 1);
    }
    assert_eq!(permits.available_permits(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_ended_context_yields_only_the_error() {
    let (ctx, cancel) = Context::background().child();
    cancel.cancel_with("stop");
    let all: Vec<_> = ctx.as_completed([after(10)]).collect().await;
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].as_ref().unwrap_err().cause().unwrap().to_string(),
        "stop"
    );
}
