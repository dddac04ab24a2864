//! A staged request under one budget.
//!
//! A client fetches a chunked response from a small server that this program
//! runs on the loopback interface. The request has one budget of 3 s, and
//! each stage has a limit of its own: `allocate` a socket (1 ms), `connect`
//! and read the server's greeting (2 s), `receive` each chunk (500 ms), and
//! `close` (50 ms: send `BYE`, wait for the server's `OK`). Every stage runs
//! under `request.named(stage).with_timeout(limit, ..)`, so it is granted the
//! smaller of its own limit and what is left of the request, and when it
//! fails the error says which of the two fired.
//!
//! ```text
//! cargo run --example http_budget                    # every stage in time
//! cargo run --example http_budget -- --slow close    # close's own limit fires: recovered
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
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{sleep, Instant};
use tokio_ctx::{Context, Error};

const REQUEST_BUDGET: Duration = Duration::from_secs(3);
const ALLOCATE_LIMIT: Duration = Duration::from_millis(1);
const CONNECT_LIMIT: Duration = Duration::from_secs(2);
const CHUNK_LIMIT: Duration = Duration::from_millis(500);
const CLOSE_LIMIT: Duration = Duration::from_millis(50);

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
    let slow = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(slow)) => slow,
        Ok(Command::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprint!("error: {msg}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };

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

    println!("request to {addr}, budget {REQUEST_BUDGET:?}");
    let started = Instant::now();
    let outcome = fetch(addr, &pool).await;
    let elapsed = started.elapsed();

    stop_server.cancel_with("the demo is over");
    match server.await {
        Ok(Ok(Err(e))) => println!("(the server's side ended with: {e})"),
        Ok(_) => {}
        Err(e) => println!("(the server task failed: {e})"),
    }

    summarize(outcome, elapsed)
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

enum Command {
    Run(Option<Slow>),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut slow = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--slow" if slow.is_some() => return Err("--slow given twice".into()),
            "--slow" => {
                let stage = args.next().ok_or("--slow needs a stage")?;
                slow = Some(parse_stage(&stage)?);
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Command::Run(slow))
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
Usage: http_budget [--slow <stage>]

Fetches {CHUNKS} chunks from a server on 127.0.0.1, every stage under one
request budget of {REQUEST_BUDGET:?}. --slow makes one stage slow:

  allocate  the socket pool stays busy: allocate's {ALLOCATE_LIMIT:?} fires (request fails)
  connect   the server greets late: connect's {CONNECT_LIMIT:?} fires (request fails)
  receive   the third chunk comes late: its {CHUNK_LIMIT:?} fires (request fails)
  close     the server acknowledges BYE late: close's {CLOSE_LIMIT:?} fires (recovered)
  request   every chunk takes {SLOW_CHUNK:?}: the {REQUEST_BUDGET:?} request budget runs out (request fails)

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

async fn fetch(addr: SocketAddr, pool: &Semaphore) -> Result<Response, StageError> {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(REQUEST_BUDGET);

    let (_slot, socket) = stage(&request, "allocate", ALLOCATE_LIMIT, |_| allocate(pool)).await?;
    let (mut conn, chunks) = stage(&request, "connect", CONNECT_LIMIT, |_| {
        connect(socket, addr)
    })
    .await?;

    let mut bytes = 0;
    for i in 1..=chunks {
        let name = format!("receive {i}/{chunks}");
        bytes += stage(&request, name, CHUNK_LIMIT, |_| read_line(&mut conn))
            .await?
            .len();
    }

    // The response is complete before the server acknowledges BYE: a slow
    // close costs nothing but its own time, unless the request is gone too.
    let recovered = match stage(&request, "close", CLOSE_LIMIT, |_| close(&mut conn)).await {
        Ok(()) => false,
        Err(StageError::Ended(e)) if e.is_own() => {
            println!("    close is best effort: dropping the connection, the response is complete");
            true
        }
        Err(e) => return Err(e),
    };
    Ok(Response {
        chunks,
        bytes,
        recovered,
    })
}

/// Runs one stage of `request` with its own `limit`, and prints what it was
/// granted, how long it took and how it ended.
///
/// `#[track_caller]` makes errors point at the stage's call site rather than
/// at this helper; that is why it builds the step here and returns a future
/// instead of being an `async fn`.
#[track_caller]
fn stage<T, F, Fut>(
    request: &Context,
    name: impl Into<Cow<'static, str>>,
    limit: Duration,
    body: F,
) -> impl Future<Output = Result<T, StageError>>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let name = name.into();
    let started = Instant::now();
    let mut granted = None;
    // `with_timeout` calls the closure before it returns, so `granted` is
    // set by the time the step runs; the step's error cannot carry it.
    let step = request.named(name.clone()).with_timeout(limit, |ctx| {
        granted = ctx.remaining();
        body(ctx)
    });
    async move {
        let result = match step.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StageError::Io(e)),
            Err(e) => Err(StageError::Ended(e)),
        };
        report(&name, granted, started.elapsed(), &result);
        result
    }
}

fn report<T>(
    name: &str,
    granted: Option<Duration>,
    took: Duration,
    result: &Result<T, StageError>,
) {
    let granted = granted.map_or_else(|| "unbounded".to_owned(), |d| format!("{d:.1?}"));
    let outcome = match result {
        Ok(_) => "ok".to_owned(),
        Err(StageError::Io(e)) => format!("failed: {e}"),
        Err(StageError::Ended(e)) => e.to_string(),
    };
    println!("{name:<12} granted {granted:>9}  took {took:>9.1?}  {outcome}");
    if let Err(StageError::Ended(e)) = result {
        println!("    {}", whose_limit(e));
    }
}

/// Says whether a stage can be written off or the whole request is over.
fn whose_limit(e: &Error) -> &'static str {
    match (e.is_own(), e.is_deadline_exceeded()) {
        (true, true) => "this stage's own limit fired; the request budget is intact (recoverable)",
        (true, false) => "this stage was canceled on its own; the request is intact (recoverable)",
        (false, true) => "inherited: the request budget ran out, nothing is left to retry with",
        (false, false) => "inherited: the request was canceled from above, giving up",
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

/// Connects, then waits for the greeting that announces the chunk count.
///
/// The greeting is part of the stage, as with an SMTP banner: the
/// connection is of no use before it. It is also what a busy server can be
/// slow at: on loopback the kernel completes the TCP handshake by itself.
async fn connect(socket: TcpSocket, addr: SocketAddr) -> io::Result<(BufReader<TcpStream>, usize)> {
    let mut conn = BufReader::new(socket.connect(addr).await?);
    let greeting = read_line(&mut conn).await?;
    let chunks = greeting
        .strip_prefix("HELLO ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| invalid_data(format!("unexpected greeting {greeting:?}")))?;
    Ok((conn, chunks))
}

/// Says goodbye and waits for the server to acknowledge it.
async fn close(conn: &mut BufReader<TcpStream>) -> io::Result<()> {
    conn.write_all(b"BYE\n").await?;
    match read_line(conn).await?.as_str() {
        "OK" => Ok(()),
        other => Err(invalid_data(format!("expected OK, got {other:?}"))),
    }
}

/// One line without its terminator; end of stream is an error because both
/// sides always know what comes next.
async fn read_line(conn: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection",
        ));
    }
    line.truncate(line.trim_end().len());
    Ok(line)
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn summarize(outcome: Result<Response, StageError>, elapsed: Duration) -> ExitCode {
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
                    "the {:?} budget of {} ran out",
                    context_name(&e),
                    budget(&e),
                ),
                StageError::Ended(e) => format!("canceled from above: {e}"),
                StageError::Io(e) => e.to_string(),
            };
            println!("summary: request FAILED after {elapsed:.1?}: {why}");
            ExitCode::FAILURE
        }
    }
}

fn context_name(e: &Error) -> &str {
    e.context_name().unwrap_or("unnamed context")
}

fn budget(e: &Error) -> String {
    e.budget()
        .map_or_else(|| "unlimited time".to_owned(), |d| format!("{d:?}"))
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
            Some(Slow::Close) => pace.ack = CLOSE_LIMIT * 4,
            Some(Slow::Request) => pace.chunks = [SLOW_CHUNK; CHUNKS],
            // Allocation is the client's business; the server never sees it.
            Some(Slow::Allocate) | None => {}
        }
        pace
    }
}

/// Serves the one connection this demo makes: a greeting with the chunk
/// count, the chunks, then `OK` in answer to `BYE`.
async fn serve_one(listener: TcpListener, pace: Pace) -> io::Result<()> {
    let (stream, _) = listener.accept().await?;
    let mut conn = BufReader::new(stream);

    sleep(pace.greeting).await;
    send(&mut conn, &format!("HELLO {CHUNKS}")).await?;
    for (i, delay) in pace.chunks.iter().enumerate() {
        sleep(*delay).await;
        send(&mut conn, &format!("chunk {} of {CHUNKS}", i + 1)).await?;
    }

    let bye = read_line(&mut conn).await?;
    if bye != "BYE" {
        return Err(invalid_data(format!("expected BYE, got {bye:?}")));
    }
    sleep(pace.ack).await;
    send(&mut conn, "OK").await
}

async fn send(conn: &mut BufReader<TcpStream>, line: &str) -> io::Result<()> {
    conn.write_all(format!("{line}\n").as_bytes()).await
}
