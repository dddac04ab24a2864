//! First success among replicas: ask them all, take the first good answer.
//!
//! This program starts three replica servers on 127.0.0.1 and keeps one
//! more address where nothing listens:
//!
//! - `A` answers after 300 ms;
//! - `B` answers after 80 ms;
//! - `C` refuses at once with an error line;
//! - `D` is down: connecting is refused.
//!
//! A client asks several of them with `Context::select_first` under one
//! request budget. The first `Ok` wins; the failures that came before it are
//! collected with their index; the queries still running are canceled with
//! the cause "lost the race" and dropped, which closes their connections.
//! When no replica succeeds, the `SelectError` holds every failure, and the
//! request's own error if its budget ran out first.
//!
//! Each query starts a small cleanup sub-task under its own context, which
//! waits for that context to end and then prints one line: what the query
//! got, or that it was stopped and the error saying why.
//!
//! Three rounds, about half a second in all:
//!
//! 1. all four replicas, 1 s budget: `B` wins, `C` and `D` failed, `A` is canceled;
//! 2. all four, 50 ms budget: the budget runs out before `B` answers;
//! 3. only `C` and `D`, 1 s budget: every replica fails.
//!
//! ```text
//! cargo run --example first_response
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout, Instant};
use tokio_ctx::{Context, SelectError};

/// What a replica server does with a query.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Answers `OK <answer>` after a delay.
    Answer {
        after: Duration,
        answer: &'static str,
    },
    /// Answers `ERR <reason>` at once.
    Refuse(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Replica {
    name: &'static str,
    addr: SocketAddr,
}

struct Round {
    title: &'static str,
    budget: Duration,
    ask: &'static [&'static str],
}

const ROUNDS: [Round; 3] = [
    Round {
        title: "every replica, a comfortable budget",
        budget: Duration::from_secs(1),
        ask: &["A", "B", "C", "D"],
    },
    Round {
        title: "every replica, a budget too short for any answer",
        budget: Duration::from_millis(50),
        ask: &["A", "B", "C", "D"],
    },
    Round {
        title: "only the broken replicas",
        budget: Duration::from_secs(1),
        ask: &["C", "D"],
    },
];

/// How long the cleanups get to report once a round is over. They run as
/// soon as their queries' contexts end, so this only matters if a query
/// kept running, which `select_first` must not allow.
const REPORT_WINDOW: Duration = Duration::from_secs(1);

/// Where the cleanups send their lines. Every cleanup holds a sender, so
/// the channel closes once all of them have reported.
type Outcomes = mpsc::UnboundedSender<String>;

#[tokio::main]
async fn main() -> ExitCode {
    // The servers run under a context of their own, so that one cancel stops
    // every server and every answer still being prepared.
    let (servers, stop_servers) = Context::background().named("servers").child();
    let replicas = match start_replicas(&servers).await {
        Ok(replicas) => replicas,
        Err(e) => {
            eprintln!("cannot start the replicas: {e}");
            return ExitCode::FAILURE;
        }
    };
    for replica in &replicas {
        println!("replica {} at {}", replica.name, replica.addr);
    }
    println!();

    for (n, round) in ROUNDS.iter().enumerate() {
        println!(
            "round {}: {} ({:?}, asking {})",
            n + 1,
            round.title,
            round.budget,
            round.ask.join(", ")
        );
        let asked: Vec<Replica> = replicas
            .iter()
            .filter(|replica| round.ask.contains(&replica.name))
            .copied()
            .collect();
        run_round(&asked, round.budget).await;
        println!();
    }

    stop_servers.cancel_with("the demo is over");
    ExitCode::SUCCESS
}

async fn run_round(asked: &[Replica], budget: Duration) {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(budget);

    let (outcomes, mut lines) = mpsc::unbounded_channel();
    let started = Instant::now();
    let result = request
        .select_first(asked.iter().map(|&replica| {
            let outcomes = outcomes.clone();
            move |ctx| query(ctx, replica, outcomes)
        }))
        .await;
    let elapsed = started.elapsed();

    drop(outcomes);
    let all_reported = timeout(REPORT_WINDOW, async {
        while let Some(line) = lines.recv().await {
            println!("  {line}");
        }
    })
    .await;
    if all_reported.is_err() {
        println!("  (a query's context never ended: something is still running)");
    }

    match result {
        // A win returns only the winner: the failures before it were seen
        // by the queries themselves (the lines above), not by the caller.
        Ok((index, answer)) => {
            println!(
                "  result  {} won after {elapsed:.0?} with {answer:?}",
                asked[index].name
            );
        }
        Err(e) => report_no_answer(asked, &e, elapsed),
    }
}

/// Explains a round without a winner: whether the request ended first, and
/// every failure seen, with the replica it came from.
fn report_no_answer(asked: &[Replica], e: &SelectError<io::Error>, elapsed: Duration) {
    println!("  result  no answer after {elapsed:.0?}: {e}");
    let why = match e.ended() {
        Some(ended) if ended.is_deadline_exceeded() => "the request's budget ran out first",
        Some(_) => "the request was canceled first",
        None => "every replica asked has failed",
    };
    println!("          {why}; failures:");
    for (index, failure) in e.failures() {
        println!("          [{index}] {}: {failure}", asked[*index].name);
    }
}

// ---------------------------------------------------------------- client

/// Asks one replica, reporting through a cleanup that outlives the query.
async fn query(ctx: Context, replica: Replica, outcomes: Outcomes) -> io::Result<String> {
    let finished = start_cleanup(replica.name, &ctx, &outcomes);
    let result = ask(replica.addr).await;
    finished.report(match &result {
        Ok(answer) => format!("answered {answer:?}"),
        Err(e) => format!("failed: {e}"),
    });
    result
}

/// One question, one line of answer: `OK <answer>` or `ERR <reason>`.
async fn ask(addr: SocketAddr) -> io::Result<String> {
    let mut conn = BufReader::new(TcpStream::connect(addr).await?);
    conn.write_all(b"QUERY\n").await?;
    let line = read_line(&mut conn).await?;
    match line.split_once(' ') {
        Some(("OK", answer)) => Ok(answer.to_owned()),
        Some(("ERR", reason)) => Err(io::Error::other(format!("the replica refused: {reason}"))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected answer {line:?}"),
        )),
    }
}

/// What a query tells its cleanup when it completes.
struct Finished(oneshot::Sender<String>);

impl Finished {
    fn report(self, what: String) {
        // The cleanup lives as long as the query's context, which outlives
        // the query's future: it is still there to receive this.
        let _ = self.0.send(what);
    }
}

/// Starts the cleanup of query `name`: a sub-task under the query's own
/// context that waits for that context to end, then reports how the query
/// ended.
///
/// It has to be a task of its own: a query that lost is dropped, never
/// polled again, so its future cannot see the cancellation. It is detached
/// rather than held by the query, because a held handle would be dropped
/// with the losing future and stop the cleanup with a cause of its own ("its
/// task handle was dropped") before the race's cause arrives. Detached, it
/// is still bounded by the query's context, so it cannot outlive the round.
fn start_cleanup(name: &'static str, ctx: &Context, outcomes: &Outcomes) -> Finished {
    let (finished, mut result) = oneshot::channel();
    let outcomes = outcomes.clone();
    let cleanup = ctx.spawn(move |ctx| async move {
        let why = ctx.done().await;
        let line = match result.try_recv() {
            Ok(what) => format!("query {name}  {what}"),
            Err(_) => format!("query {name}  stopped ({why})"),
        };
        let _ = outcomes.send(line);
    });
    // Nobody joins it: it reports through `outcomes`.
    drop(cleanup.detach());
    Finished(finished)
}

// ---------------------------------------------------------------- servers

async fn start_replicas(servers: &Context) -> io::Result<Vec<Replica>> {
    let a = Behaviour::Answer {
        after: Duration::from_millis(300),
        answer: "42 (from A)",
    };
    let b = Behaviour::Answer {
        after: Duration::from_millis(80),
        answer: "42 (from B)",
    };
    let c = Behaviour::Refuse("overloaded, try another replica");
    Ok(vec![
        Replica {
            name: "A",
            addr: start_replica(servers, a).await?,
        },
        Replica {
            name: "B",
            addr: start_replica(servers, b).await?,
        },
        Replica {
            name: "C",
            addr: start_replica(servers, c).await?,
        },
        Replica {
            name: "D",
            addr: unused_addr().await?,
        },
    ])
}

/// Binds a listener and serves it on a task that ends with `servers`.
async fn start_replica(servers: &Context, behaviour: Behaviour) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    // Detached: it runs until `servers` ends, not until a handle is dropped.
    let server = servers.spawn(move |ctx| serve(ctx, listener, behaviour));
    drop(server.detach());
    Ok(addr)
}

/// A port that was just released: nothing listens there, so a connection is
/// refused at once, as with a replica that is down.
async fn unused_addr() -> io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await?
        .local_addr()
}

async fn serve(ctx: Context, listener: TcpListener, behaviour: Behaviour) {
    loop {
        match listener.accept().await {
            // Each connection on its own task: a slow answer must not hold
            // up the next round's query.
            Ok((stream, _)) => {
                let handler = ctx.spawn(move |_ctx| answer(stream, behaviour));
                drop(handler.detach());
            }
            Err(e) => {
                eprintln!("a replica stopped accepting: {e}");
                return;
            }
        }
    }
}

async fn answer(stream: TcpStream, behaviour: Behaviour) -> io::Result<()> {
    let mut conn = BufReader::new(stream);
    read_line(&mut conn).await?;
    let reply = match behaviour {
        Behaviour::Answer { after, answer } => {
            sleep(after).await;
            format!("OK {answer}\n")
        }
        Behaviour::Refuse(reason) => format!("ERR {reason}\n"),
    };
    // The client may have hung up by now (it took another answer): writing
    // then fails, which is nobody's concern any more.
    conn.write_all(reply.as_bytes()).await
}

/// One line without its terminator; end of stream is an error, since both
/// sides always expect a line.
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
