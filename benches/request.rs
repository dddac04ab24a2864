//! A whole request under load, written twice: with contexts, and wired by
//! hand with `CancellationToken`, `tokio::time::timeout` and `select!`.
//!
//! A context is judged in a server, not in a loop: this bench runs one
//! synthetic request shape with many requests in flight on a multi-thread
//! runtime and reports throughput, latency percentiles and the memory each
//! request in flight holds, ours against hand-wired, in the same run.
//!
//! The shape of one request:
//!
//! - a request budget, derived from a long-lived server root: 50 ms, or
//!   1 ms for a request that arrives with little budget left;
//! - a request id carried down and read back (ours: a context value; by
//!   hand: a function argument);
//! - three steps, each with its own limit, clipped to what is left of the
//!   budget; each step's work yields to the scheduler a few times, as a
//!   call that waits on I/O does;
//! - a race of two replicas, one ready after one yield and one after three,
//!   whose loser is canceled;
//! - one request in ten is canceled from outside (by another task, once
//!   its first step is under way; that step then waits until it is
//!   stopped), and one in ten runs out of budget (it arrives with 1 ms left, and
//!   its second step waits on a 5 ms timer).
//!
//! ```text
//! cargo bench --bench request                       # 1, 2 and 4 workers
//! cargo bench --bench request -- --workers 2 --rounds 5 --requests 40000
//! ```
//!
//! Each round runs both versions one after the other, alternating which
//! goes first; the report gives, per worker count, the median over the
//! rounds of each figure and the range of each ratio (ours / hand-wired).
//! For throughput a ratio above 1 is better; for latency and memory, below.
//! Latency is given over all requests and over those that completed: the
//! two in ten that end by a timer or by another task mostly measure that
//! timer or that task, the same on both sides, and set the overall p99.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;
use tokio::task::yield_now;
use tokio::time::Instant;
use tokio_ctx::{CancelHandle, Context};
use tokio_util::sync::CancellationToken;

/// Counts the bytes live on the heap, the most live at once since the last
/// reset, and the allocations made, so that memory per request in flight
/// and allocations per request can be read off a run.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            grew(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            grew(new_size as isize);
        }
        new
    }
}

fn grew(size: isize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The whole request's budget.
const BUDGET: Duration = Duration::from_millis(50);
/// The budget of a request that arrives with little left: short, so that
/// waiting for it to run out does not hide the cost of the rest.
const SHORT_BUDGET: Duration = Duration::from_millis(1);
/// Each step's own limit: looser than the budget for the last one, so the
/// clipping to what is left is part of the work.
const STEP_LIMITS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(100),
];
/// How long the slow step of an out-of-budget request waits: past its
/// budget, within the step's own limit.
const TOO_SLOW: Duration = Duration::from_millis(5);

/// What happens to one request, decided by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Completes,
    CanceledFromOutside,
    RunsOutOfBudget,
}

impl Fate {
    fn budget(self) -> Duration {
        match self {
            Fate::RunsOutOfBudget => SHORT_BUDGET,
            _ => BUDGET,
        }
    }

    fn of(request: u64) -> Fate {
        match request % 10 {
            3 => Fate::CanceledFromOutside,
            7 => Fate::RunsOutOfBudget,
            _ => Fate::Completes,
        }
    }
}

/// The work of step `k`: a call that waits for I/O `k + 1` times. The slow
/// step of an out-of-budget request waits on a timer instead, and the first
/// step of a request canceled from outside tells the canceler it started
/// and waits to be stopped, so both versions end the same requests.
async fn work(k: usize, fate: Fate, started: Option<oneshot::Sender<()>>) -> u64 {
    if let Some(started) = started {
        let _ = started.send(());
        std::future::pending::<()>().await;
    }
    if k == 1 && fate == Fate::RunsOutOfBudget {
        tokio::time::sleep(TOO_SLOW).await;
    }
    for _ in 0..=k {
        yield_now().await;
    }
    k as u64
}

/// A replica that answers after `yields` waits.
async fn replica(yields: usize) -> u64 {
    for _ in 0..yields {
        yield_now().await;
    }
    yields as u64
}

/// Cancels the request from another task once its first step has started;
/// gives the signal that step sends.
fn cancel_later(cancel: impl FnOnce() + Send + 'static) -> oneshot::Sender<()> {
    let (started, wait) = oneshot::channel();
    tokio::spawn(async move {
        if wait.await.is_ok() {
            cancel();
        }
    });
    started
}

#[derive(Debug)]
struct RequestId(u64);

/// The request with contexts.
async fn with_contexts(server: &Context, id: u64) -> Option<u64> {
    let fate = Fate::of(id);
    let (request, cancel) = server.child_with_timeout(fate.budget());
    let request = request.with_value(RequestId(id));
    let mut started = (fate == Fate::CanceledFromOutside)
        .then(|| cancel_later(move || CancelHandle::cancel_with(&cancel, "client went away")));
    let mut total = 0;
    for (k, limit) in STEP_LIMITS.into_iter().enumerate() {
        let started = started.take();
        total += request
            .with_timeout(limit, |_ctx| work(k, fate, started))
            .await
            .ok()?;
    }
    let (_, fastest) = request
        .race([1, 3].map(|yields| move |_ctx| replica(yields)))
        .await
        .ok()?;
    let id = request.value::<RequestId>()?.0;
    Some(total + fastest + id)
}

/// The same request wired by hand, as a careful Tokio user writes it today:
/// a child token per step and per replica so that whatever a step starts
/// can be stopped with it, a deadline computed once and each step's limit
/// clipped to it.
async fn by_hand(server: &CancellationToken, id: u64) -> Option<u64> {
    let fate = Fate::of(id);
    let request = server.child_token();
    let deadline = Instant::now() + fate.budget();
    let mut started = (fate == Fate::CanceledFromOutside).then(|| {
        let canceler = request.clone();
        cancel_later(move || canceler.cancel())
    });
    let mut total = 0;
    for (k, limit) in STEP_LIMITS.into_iter().enumerate() {
        let step = request.child_token();
        let until = deadline.min(Instant::now() + limit);
        let out = step
            .run_until_cancelled(tokio::time::timeout_at(
                until,
                work(k, fate, started.take()),
            ))
            .await;
        step.cancel();
        total += out?.ok()?;
    }
    let (a, b) = (request.child_token(), request.child_token());
    let fastest = request
        .run_until_cancelled(tokio::time::timeout_at(deadline, async {
            tokio::select! {
                out = a.run_until_cancelled(replica(1)) => out,
                out = b.run_until_cancelled(replica(3)) => out,
            }
        }))
        .await;
    a.cancel();
    b.cancel();
    let fastest = fastest?.ok()??;
    Some(total + fastest + id)
}

/// What one run of one version measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// The same, over the requests that completed only: two in ten requests
    /// end by a timer or another task, and their latency is mostly that
    /// timer's or that task's, on both sides.
    p50_completed: Duration,
    p99_completed: Duration,
    /// Peak heap above the baseline, divided by the requests in flight.
    bytes_per_request: f64,
    /// Allocations (and reallocations) made during the run, per request.
    allocations_per_request: f64,
    /// Requests that completed (the rest were canceled or out of budget).
    completed: usize,
}

/// Runs `requests` requests, `in_flight` at a time, and measures them.
fn run<F, Fut>(rt: &Runtime, requests: u64, in_flight: u64, request: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<u64>> + Send + 'static,
{
    let request = Arc::new(request);
    let completed = Arc::new(AtomicUsize::new(0));
    // Where each client records its latencies, allocated before the heap's
    // baseline is read: they are the bench's, not the requests'. (Each
    // holds a client's share of the requests: counted in, they added some
    // 5 KB per request in flight to both sides and pulled the ratio
    // towards 1.)
    let per_client = (requests / in_flight + 1) as usize;
    let records: Vec<Vec<(Duration, bool)>> = (0..in_flight)
        .map(|_| Vec::with_capacity(per_client))
        .collect();
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let start = StdInstant::now();
    let records: Vec<Vec<(Duration, bool)>> = rt.block_on(async {
        let clients: Vec<_> = records
            .into_iter()
            .zip(0..in_flight)
            .map(|(mut latencies, client)| {
                let request = Arc::clone(&request);
                let completed = Arc::clone(&completed);
                tokio::spawn(async move {
                    let mut id = client;
                    while id < requests {
                        let started = StdInstant::now();
                        let done = request(id).await.is_some();
                        if done {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                        latencies.push((started.elapsed(), done));
                        id += in_flight;
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::with_capacity(clients.len());
        for client in clients {
            all.push(client.await.expect("a client panicked"));
        }
        all
    });
    let elapsed = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - baseline;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let mut all: Vec<Duration> = records.iter().flatten().map(|&(d, _)| d).collect();
    let mut done: Vec<Duration> = records
        .iter()
        .flatten()
        .filter(|&&(_, done)| done)
        .map(|&(d, _)| d)
        .collect();
    all.sort_unstable();
    done.sort_unstable();
    let at = |latencies: &[Duration], q: f64| {
        latencies[((latencies.len().max(1) - 1) as f64 * q) as usize]
    };
    Run {
        per_second: requests as f64 / elapsed.as_secs_f64(),
        p50: at(&all, 0.50),
        p99: at(&all, 0.99),
        p50_completed: at(&done, 0.50),
        p99_completed: at(&done, 0.99),
        bytes_per_request: peak.max(0) as f64 / in_flight as f64,
        allocations_per_request: allocations as f64 / requests as f64,
        completed: completed.load(Ordering::Relaxed),
    }
}

/// A line of the report: the figure's name, how to read it off a run, its unit.
type Row = (&'static str, fn(&Run) -> f64, &'static str);

struct Options {
    workers: Vec<usize>,
    rounds: usize,
    requests: u64,
    in_flight: u64,
}

fn options() -> Options {
    let mut options = Options {
        workers: vec![1, 2, 4],
        rounds: 3,
        requests: 20_000,
        in_flight: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--workers" => {
                options.workers = value()
                    .split(',')
                    .map(|n| n.parse().expect("--workers takes numbers, e.g. 1,2,4"))
                    .collect();
            }
            "--rounds" => options.rounds = value().parse().expect("--rounds takes a number"),
            "--requests" => options.requests = value().parse().expect("--requests takes a number"),
            "--in-flight" => {
                options.in_flight = value().parse().expect("--in-flight takes a number");
            }
            // `cargo bench` passes `--bench`; criterion-style filters are not used here.
            _ => {}
        }
    }
    options
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn range(values: &[f64]) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{low:.2}–{high:.2}")
}

fn main() {
    let options = options();
    println!(
        "whole request: {} requests per run, {} in flight, {} rounds",
        options.requests, options.in_flight, options.rounds
    );
    println!();
    println!("| workers | figure | ours | by hand | ratio | range |");
    println!("|---|---|---|---|---|---|");
    for &workers in &options.workers {
        let rt = Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("a runtime");
        let (server, _shutdown) = Context::background().named("server").child();
        let server_token = CancellationToken::new();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 0..options.rounds {
            let measure_ours = || {
                let server = server.clone();
                run(&rt, options.requests, options.in_flight, move |id| {
                    let server = server.clone();
                    async move { with_contexts(&server, id).await }
                })
            };
            let measure_theirs = || {
                let server = server_token.clone();
                run(&rt, options.requests, options.in_flight, move |id| {
                    let server = server.clone();
                    async move { by_hand(&server, id).await }
                })
            };
            if round % 2 == 0 {
                ours.push(measure_ours());
                theirs.push(measure_theirs());
            } else {
                theirs.push(measure_theirs());
                ours.push(measure_ours());
            }
        }
        // Both versions run the same shape: eight in ten requests complete.
        // A loaded machine may push a few past their 50 ms budget, on
        // either side; more than 1 % means the shapes differ.
        for run in ours.iter().chain(&theirs) {
            let expected = options.requests as f64 * 0.8;
            assert!(
                (run.completed as f64 - expected).abs() <= expected * 0.01,
                "{} of {} requests completed, not eight in ten",
                run.completed,
                options.requests
            );
        }
        let rows: [Row; 7] = [
            ("requests/s", |r| r.per_second, ""),
            ("p50 latency", |r| r.p50.as_secs_f64() * 1e6, " µs"),
            ("p99 latency", |r| r.p99.as_secs_f64() * 1e6, " µs"),
            (
                "p50, completed only",
                |r| r.p50_completed.as_secs_f64() * 1e6,
                " µs",
            ),
            (
                "p99, completed only",
                |r| r.p99_completed.as_secs_f64() * 1e6,
                " µs",
            ),
            ("heap per request in flight", |r| r.bytes_per_request, " B"),
            ("allocations per request", |r| r.allocations_per_request, ""),
        ];
        for (figure, read, unit) in rows {
            let ratios: Vec<f64> = ours
                .iter()
                .zip(&theirs)
                .map(|(o, t)| read(o) / read(t))
                .collect();
            // Small figures (allocations per request) with a decimal.
            let show = |v: f64| match v {
                v if v < 100.0 => format!("{v:.1}"),
                v => format!("{v:.0}"),
            };
            let ours_median = show(median(ours.iter().map(read).collect()));
            let theirs_median = show(median(theirs.iter().map(read).collect()));
            println!(
                "| {workers} | {figure} | {ours_median}{unit} | {theirs_median}{unit} | {:.2} | {} |",
                median(ratios.clone()),
                range(&ratios),
            );
        }
    }
}
