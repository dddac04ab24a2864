//! A staged request under one budget, and where that budget went.
//!
//! A client fetches a chunked response from a small server that this program
//! runs on the loopback interface. The request has one budget of 3 s, and
//! each stage has a limit of its own: `allocate` a socket (1 ms), `connect`
//! and read the server's greeting (2 s), `receive` each chunk (500 ms).
//! The last 50 ms of the request are reserved for `close` (send `BYE`, wait
//! for the server's `OK`), so the connection is closed properly even when
//! the rest of the budget ran out in the middle of receiving. Every stage
//! runs under `work.named(stage).with_timeout(limit, ..)`, so it is granted
//! the smaller of its own limit and what is left of the request, and when
//! it fails the error says which of the two fired.
//!
//! At the end the program prints the request's budget report as a text
//! waterfall: each stage's budget, asked and granted, when it started, how
//! long it took and how it ended. `--svg FILE` also draws it as a picture.
//!
//! ```text
//! cargo run --example http_budget                    # every stage in time
//! cargo run --example http_budget -- --slow close    # close's reserve runs out: recovered
//! cargo run --example http_budget -- --slow receive --svg budget.svg
//! cargo run --example http_budget -- --slow request  # the request budget runs out
//! cargo run --example http_budget -- --help          # all the stages that can be slowed
//! ```
//!
//! The exit code is 0 when the response is complete (even if a best-effort
//! stage ran out of its own time) and 1 when the request failed.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{sleep, Instant};
use tokio_ctx::report::Outcome;
use tokio_ctx::{BudgetReport, Context, Error};

const REQUEST_BUDGET: Duration = Duration::from_secs(3);
const ALLOCATE_LIMIT: Duration = Duration::from_millis(1);
const CONNECT_LIMIT: Duration = Duration::from_secs(2);
const CHUNK_LIMIT: Duration = Duration::from_millis(500);
/// The end of the request's budget kept for closing the connection.
const CLOSE_RESERVE: Duration = Duration::from_millis(50);

/// How many chunks the server sends.
const CHUNKS: usize = 8;

/// The pause before each chunk under `--slow request`.
const SLOW_CHUNK: Duration = Duration::from_millis(400);

// `--slow request` shows an inherited deadline only if no single chunk
// exceeds its own limit while all of them together exceed the request's.
const _: () = assert!(SLOW_CHUNK.as_millis() < CHUNK_LIMIT.as_millis());
const _: () = assert!(SLOW_CHUNK.as_millis() * CHUNKS as u128 > REQUEST_BUDGET.as_millis());

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprint!("error: {msg}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let slow = args.slow;

    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(listener) => listener,
        Err(e) => return setup_failed("cannot start the server", e),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return setup_failed("cannot read the server's address", e),
    };
    // The server runs under a context of its own, so that one cancel stops
    // it wherever it is: waiting to accept, or sleeping before a reply the
    // client has stopped waiting for.
    let (server_ctx, stop_server) = Context::background().named("server").child();
    let server = tokio::spawn(server_ctx.run(serve_one(listener, Pace::of(slow))));

    // The client may open one socket at a time. Under `--slow allocate`, the
    // only slot is held for the whole run, as if by another request, so
    // allocate waits until its own limit fires.
    let pool = Semaphore::new(1);
    let _other_request = match slow {
        Some(Slow::Allocate) => pool.try_acquire().ok(),
        _ => None,
    };

    println!(
        "request to {addr}, budget {REQUEST_BUDGET:?}, {CLOSE_RESERVE:?} of it reserved for close"
    );
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(REQUEST_BUDGET);
    let (request, report) = request.with_budget_report();
    let started = Instant::now();
    let outcome = fetch(&request, addr, &pool).await;
    let elapsed = started.elapsed();

    stop_server.cancel_with("the demo is over");
    match server.await {
        Ok(Ok(Ok(served))) => println!("server: {served}"),
        Ok(Ok(Err(e))) => println!("server: the connection ended with: {e}"),
        Ok(Err(e)) => println!("server: stopped: {e}"),
        Err(e) => println!("server: the task failed: {e}"),
    }

    println!();
    print!("{report}");
    if let Some(path) = &args.svg {
        match std::fs::write(path, report.svg()) {
            Ok(()) => println!("the picture is in {}", path.display()),
            Err(e) => return setup_failed(&format!("cannot write {}", path.display()), e),
        }
    }
    println!();
    summarize(outcome, &report, elapsed)
}

/// The stage `--slow` delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    Allocate,
    Connect,
    Receive,
    Close,
    Request,
}

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    slow: Option<Slow>,
    svg: Option<PathBuf>,
}

enum Command {
    Run(Args),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--slow" if parsed.slow.is_some() => return Err("--slow given twice".into()),
            "--slow" => {
                let stage = args.next().ok_or("--slow needs a stage")?;
                parsed.slow = Some(parse_stage(&stage)?);
            }
            "--svg" if parsed.svg.is_some() => return Err("--svg given twice".into()),
            "--svg" => parsed.svg = Some(args.next().ok_or("--svg needs a file name")?.into()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Command::Run(parsed))
}

fn parse_stage(stage: &str) -> Result<Slow, String> {
    Ok(match stage {
        "allocate" => Slow::Allocate,
        "connect" => Slow::Connect,
        "receive" => Slow::Receive,
        "close" => Slow::Close,
        "request" => Slow::Request,
        other => return Err(format!("unknown stage {other:?}")),
    })
}

fn usage() -> String {
    format!(
        "\
Usage: http_budget [--slow <stage>] [--svg <file>]

Fetches {CHUNKS} chunks from a server on 127.0.0.1, every stage under one
request budget of {REQUEST_BUDGET:?}, the last {CLOSE_RESERVE:?} of it reserved for
closing the connection. Prints where the budget went. --slow makes one
stage slow:

  allocate  the socket pool stays busy: allocate's {ALLOCATE_LIMIT:?} fires (request fails)
  connect   the server greets late: connect's {CONNECT_LIMIT:?} fires (request fails)
  receive   the third chunk comes late: its {CHUNK_LIMIT:?} fires (request fails, closed properly)
  close     the server acknowledges BYE late: close's reserve runs out (recovered)
  request   every chunk takes {SLOW_CHUNK:?}: the request budget runs out while
            receiving (request fails, closed properly in the reserve)

--svg <file> also writes the budget report as an SVG picture.

Exit code: 0 if the response is complete, 1 if the request failed, 2 for bad arguments.
"
    )
}

fn setup_failed(what: &str, e: io::Error) -> ExitCode {
    eprintln!("{what}: {e}");
    ExitCode::FAILURE
}

// ---------------------------------------------------------------- client

/// What a complete response came to.
struct Response {
    chunks: usize,
    bytes: usize,
    /// True if a best-effort stage ran out of its own time.
    recovered: bool,
}

/// Why a stage, and with it the request, did not complete.
enum StageError {
    /// A deadline or cancellation: the stage's own, or the request's.
    Ended(Error),
    /// The network or the server misbehaved.
    Io(io::Error),
}

async fn fetch(
    request: &Context,
    addr: SocketAddr,
    pool: &Semaphore,
) -> Result<Response, StageError> {
    // The work may use all but the last CLOSE_RESERVE of the request; that
    // is kept for closing the connection, whatever happens to the work.
    let (work, reserve) = request.named("work").reserve(CLOSE_RESERVE);

    let (_slot, socket) = stage(&work, "allocate", ALLOCATE_LIMIT, |_| allocate(pool)).await?;
    let mut conn = stage(&work, "connect", CONNECT_LIMIT, |_| connect(socket, addr)).await?;

    let received = receive(&work, &mut conn).await;

    // Whether the work completed or ran out, the connection is closed
    // properly, within the reserve. The response is complete before the
    // server acknowledges BYE: a slow close costs nothing but its own
    // time.
    let closed = reserve.named("close").cleanup(|_| close(&mut conn)).await;
    let bytes = received?;
    let recovered = match closed {
        Ok(Ok(())) => false,
        Ok(Err(e)) => return Err(StageError::Io(e)),
        Err(e) if e.is_own() => {
            println!("close is best effort: its reserve ran out; the response is complete");
            true
        }
        Err(e) => return Err(StageError::Ended(e)),
    };
    Ok(Response {
        chunks: conn.chunks,
        bytes,
        recovered,
    })
}

/// Receives every chunk, each under its own limit.
async fn receive(work: &Context, conn: &mut Connection) -> Result<usize, StageError> {
    let mut bytes = 0;
    for i in 1..=conn.chunks {
        let name = format!("receive {i}/{}", conn.chunks);
        bytes += stage(work, name, CHUNK_LIMIT, |_| conn.read_line())
            .await?
            .len();
    }
    Ok(bytes)
}

/// Runs one stage of the request's work with its own `limit`; the budget
/// report records what it was granted, how long it took and how it ended.
///
/// `#[track_caller]` makes errors point at the stage's call site rather than
/// at this helper; that is why it builds the step here and returns a future
/// instead of being an `async fn`.
#[track_caller]
fn stage<T, F, Fut>(
    work: &Context,
    name: impl Into<Cow<'static, str>>,
    limit: Duration,
    body: F,
) -> impl Future<Output = Result<T, StageError>>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let step = work.named(name).with_timeout(limit, body);
    async move {
        match step.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StageError::Io(e)),
            Err(e) => Err(StageError::Ended(e)),
        }
    }
}

/// Says whether a stage can be written off or the whole request is over.
fn whose_limit(e: &Error) -> &'static str {
    match (e.is_own(), e.is_deadline_exceeded()) {
        (true, true) => "the stage's own limit fired; the request budget was intact",
        (true, false) => "the stage was canceled on its own; the request was intact",
        (false, true) => "inherited: the request's budget ran out, nothing was left to retry with",
        (false, false) => "inherited: the request was canceled from above",
    }
}

/// Takes a slot in the client's socket pool, then the socket. Waiting for
/// the slot is what can make this stage slow; the socket itself is instant.
async fn allocate(pool: &Semaphore) -> io::Result<(SemaphorePermit<'_>, TcpSocket)> {
    let slot = pool
        .acquire()
        .await
        .map_err(|_| io::Error::other("the socket pool is closed"))?;
    Ok((slot, TcpSocket::new_v4()?))
}

/// The client's side of the connection.
struct Connection {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    /// How many chunks the server announced.
    chunks: usize,
}

impl Connection {
    /// One line; end of stream is an error because both sides always
    /// know what comes next.
    async fn read_line(&mut self) -> io::Result<String> {
        read_line(&mut self.lines).await
    }
}

/// Connects, then waits for the greeting that announces the chunk count.
///
/// The greeting is part of the stage, as with an SMTP banner: the
/// connection is of no use before it. It is also what a busy server can be
/// slow at: on loopback the kernel completes the TCP handshake by itself.
async fn connect(socket: TcpSocket, addr: SocketAddr) -> io::Result<Connection> {
    let (read, write) = socket.connect(addr).await?.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = read_line(&mut lines).await?;
    let chunks = greeting
        .strip_prefix("HELLO ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| invalid_data(format!("unexpected greeting {greeting:?}")))?;
    Ok(Connection {
        lines,
        write,
        chunks,
    })
}

/// Says goodbye and waits for the server to acknowledge it; chunks still
/// in flight when the client gave up are skipped.
async fn close(conn: &mut Connection) -> io::Result<()> {
    conn.write.write_all(b"BYE\n").await?;
    loop {
        match conn.read_line().await?.as_str() {
            "OK" => return Ok(()),
            chunk if chunk.starts_with("chunk ") => continue,
            other => return Err(invalid_data(format!("expected OK, got {other:?}"))),
        }
    }
}

/// One line without its terminator; end of stream is an error. Cancel
/// safe (`Lines::next_line` is), so a stage that runs out loses no line.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> io::Result<String> {
    match lines.next_line().await? {
        Some(line) => Ok(line),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection",
        )),
    }
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn summarize(
    outcome: Result<Response, StageError>,
    report: &BudgetReport,
    elapsed: Duration,
) -> ExitCode {
    match outcome {
        Ok(response) => {
            let how = if response.recovered {
                "complete, after writing off a slow close"
            } else {
                "complete"
            };
            println!(
                "summary: response {how}: {} chunks, {} bytes in {elapsed:.1?} of {REQUEST_BUDGET:?}",
                response.chunks, response.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let why = match e {
                StageError::Ended(e) if e.is_own() => format!(
                    "{:?} ran out of its own {}; the stage is required and this demo does not retry",
                    context_name(&e),
                    budget(&e),
                ),
                StageError::Ended(e) if e.is_deadline_exceeded() => format!(
                    "the {:?} budget of {} ran out, {} level{} above the stage",
                    context_name(&e),
                    budget(&e),
                    e.levels_up().unwrap_or(1),
                    if e.levels_up() == Some(1) { "" } else { "s" },
                ),
                StageError::Ended(e) => format!("canceled from above: {e}"),
                StageError::Io(e) => e.to_string(),
            };
            println!("summary: request FAILED after {elapsed:.1?}: {why}");
            if let Some(failed) = report.stages().iter().rev().find(|s| {
                matches!(
                    s.outcome(),
                    Outcome::OwnDeadline | Outcome::InheritedDeadline
                ) && s.name() != Some("work")
            }) {
                if let Some(e) = failed.error() {
                    println!("    {}: {}", failed.label(), whose_limit(e));
                }
            }
            if let Some(close) = report.stages().iter().find(|s| s.name() == Some("close")) {
                println!(
                    "    close ran in the reserve after that: {} in {}",
                    close.outcome(),
                    close
                        .took()
                        .map_or_else(|| "-".to_owned(), |d| format!("{d:.1?}")),
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn context_name(e: &Error) -> &str {
    e.context_name().unwrap_or("unnamed context")
}

fn budget(e: &Error) -> String {
    e.budget()
        .map_or_else(|| "unlimited time".to_owned(), |d| format!("{d:.2?}"))
}

// ---------------------------------------------------------------- server

/// How long the server pauses before each thing it sends.
#[derive(Debug, Clone, Copy)]
struct Pace {
    greeting: Duration,
    chunks: [Duration; CHUNKS],
    ack: Duration,
}

impl Pace {
    fn of(slow: Option<Slow>) -> Pace {
        // A little latency everywhere, so that the timings are not all zero.
        let mut pace = Pace {
            greeting: Duration::from_millis(10),
            chunks: [Duration::from_millis(20); CHUNKS],
            ack: Duration::from_millis(5),
        };
        match slow {
            Some(Slow::Connect) => pace.greeting = CONNECT_LIMIT + Duration::from_millis(500),
            Some(Slow::Receive) => pace.chunks[2] = CHUNK_LIMIT + Duration::from_millis(300),
            Some(Slow::Close) => pace.ack = CLOSE_RESERVE * 4,
            Some(Slow::Request) => pace.chunks = [SLOW_CHUNK; CHUNKS],
            // Allocation is the client's business; the server never sees it.
            Some(Slow::Allocate) | None => {}
        }
        pace
    }
}

/// Serves the one connection this demo makes: a greeting with the chunk
/// count, the chunks, then `OK` in answer to `BYE`. A `BYE` that comes
/// before the last chunk (a client that gave up) stops the chunks.
async fn serve_one(listener: TcpListener, pace: Pace) -> io::Result<String> {
    let (stream, _) = listener.accept().await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();

    sleep(pace.greeting).await;
    send(&mut write, &format!("HELLO {CHUNKS}")).await?;
    let mut sent = 0;
    let mut bye = None;
    for (i, delay) in pace.chunks.iter().enumerate() {
        tokio::select! {
            () = sleep(*delay) => {
                send(&mut write, &format!("chunk {} of {CHUNKS}", i + 1)).await?;
                sent += 1;
            }
            line = read_line(&mut lines) => {
                bye = Some(line?);
                break;
            }
        }
    }
    let bye = match bye {
        Some(line) => line,
        None => read_line(&mut lines).await?,
    };
    if bye != "BYE" {
        return Err(invalid_data(format!("expected BYE, got {bye:?}")));
    }
    sleep(pace.ack).await;
    send(&mut write, "OK").await?;
    Ok(format!(
        "the client said BYE after {sent} of {CHUNKS} chunks; acknowledged, the connection was closed properly"
    ))
}

async fn send(write: &mut OwnedWriteHalf, line: &str) -> io::Result<()> {
    write.write_all(format!("{line}\n").as_bytes()).await
}
