//! `loadtest`: concurrent HTTP load against a running `guardrail serve`, the client of
//! `scripts/load-server`. A development tool, not a product command, so it is an
//! example of the package (`cargo build --release --example loadtest`), never
//! installed with guardrail.
//!
//! Each client is one OS thread with one keep-alive connection, written against `std`
//! alone: the client shares the machine with the server and the database, so it must
//! cost as little CPU per request as possible (a Python client took a third of the
//! two cores and made the server look slower than it is). Clients loop over the pages
//! a triage session hits, with no pause by default (closed loop: the worst case,
//! where latency is the queue) or with `--pause-ms` between requests (people reading).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;

/// HTTP load on a running guardrail server (loopback only).
#[derive(clap::Parser)]
#[command(name = "loadtest")]
pub struct Args {
    /// text, or json for the report as one JSON object.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// The server, on loopback: http://127.0.0.1:PORT
    #[arg(long)]
    url: String,
    /// A viewer token (or set GUARDRAIL_TOKEN).
    #[arg(long, env = "GUARDRAIL_TOKEN", hide_env_values = true)]
    token: String,
    /// Item and finding ids 1..=N are requested at random (the seeded database has
    /// one finding per item).
    #[arg(long)]
    items: u64,
    /// Concurrent clients, each with one connection.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Seconds at the start whose requests are sent but not counted (connections
    /// opening, caches filling).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Pause after each request, per client (0: closed loop, no pause).
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// The account the filtered findings pages ask for.
    #[arg(long, default_value = "100000000003")]
    account: String,
}

/// The routes one iteration of a client visits, in order: a triage session's pages.
const ROUTES: [&str; 7] = [
    "GET /api/v1/findings",
    "GET /api/v1/findings (next page)",
    "GET /findings",
    "GET /findings/{id}",
    "GET /items/{id}",
    "GET /api/v1/items/{id}/revisions",
    "GET / (dashboard)",
];

#[derive(Default)]
struct Tally {
    latencies_us: BTreeMap<&'static str, Vec<u64>>,
    errors: Vec<String>,
    error_count: u64,
}

#[derive(Serialize)]
struct RouteFigures {
    route: &'static str,
    requests: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct Report {
    clients: usize,
    pause_ms: u64,
    warmup_seconds: f64,
    seconds: f64,
    requests: usize,
    requests_per_second: f64,
    errors: u64,
    routes: Vec<RouteFigures>,
    first_errors: Vec<String>,
}

/// A small deterministic generator; the load only needs to be spread, not secret.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One keep-alive HTTP/1.1 connection; reconnects when the server closes it.
struct Connection {
    addr: SocketAddr,
    host: String,
    auth: String,
    stream: Option<BufReader<TcpStream>>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Connection {
    fn get(&mut self, path: &str) -> std::io::Result<Answer> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let result = self.exchange(path);
        if result.as_ref().map_or(true, |(_, close)| *close) {
            self.stream = None;
        }
        result.map(|(a, _)| a)
    }

    /// Sends one request and reads its answer; the flag says the server closes.
    fn exchange(&mut self, path: &str) -> std::io::Result<(Answer, bool)> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let Some(r) = self.stream.as_mut() else {
            return Err(bad("not connected".into()));
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nAccept: text/html,application/json\r\n\r\n",
            self.host, self.auth
        );
        r.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(bad("connection closed in the headers".into()));
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    line.clear();
                    r.read_line(&mut line)?;
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                r.read_exact(&mut body[start..])?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        } else {
            r.read_to_end(&mut body)?;
            close = true;
        }
        Ok((Answer { status, body }, close))
    }
}

fn loopback_addr(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--url {url:?}: use http://127.0.0.1:PORT"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("--url {url:?}: cannot resolve {host:?}"))?
        .next()
        .with_context(|| format!("--url {url:?}: {host:?} has no address"))?;
    let ip: IpAddr = addr.ip();
    if !ip.is_loopback() {
        bail!("--url {url:?}: load tests stay on this machine; use a loopback address (127.0.0.1)");
    }
    Ok((addr, host.to_owned()))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)] as f64 / 1000.0
}

fn next_cursor(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("next_cursor")?.as_str().map(str::to_owned)
}

fn client(
    a: &Args,
    seed: u64,
    addr: SocketAddr,
    host: &str,
    count_from: Instant,
    stop: Instant,
) -> Tally {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut conn = Connection {
        addr,
        host: host.to_owned(),
        auth: format!("Bearer {}", a.token),
        stream: None,
    };
    let mut t = Tally::default();
    let filters = [
        String::new(),
        "&min_score=7".to_owned(),
        "&severity=critical".to_owned(),
        format!("&account={}", a.account),
    ];
    while Instant::now() < stop {
        let filter = &filters[rng.below(filters.len() as u64) as usize];
        let item = 1 + rng.below(a.items);
        let mut cursor: Option<String> = None;
        for (n, route) in ROUTES.iter().enumerate() {
            let path = match n {
                0 => format!("/api/v1/findings?state=open&limit=50{filter}"),
                1 => match cursor.take() {
                    Some(c) => format!("/api/v1/findings?state=open&limit=50{filter}&cursor={c}"),
                    None => continue,
                },
                2 => format!("/findings?state=open{filter}"),
                3 => format!("/findings/{item}"),
                4 => format!("/items/{item}"),
                5 => format!("/api/v1/items/{item}/revisions?limit=20"),
                _ => "/".to_owned(),
            };
            let t0 = Instant::now();
            match conn.get(&path) {
                Ok(answer) if answer.status == 200 => {
                    let us = t0.elapsed().as_micros() as u64;
                    if t0 >= count_from {
                        t.latencies_us.entry(route).or_default().push(us);
                    }
                    if n == 0 {
                        cursor = next_cursor(&answer.body);
                    }
                }
                Ok(answer) => {
                    t.error_count += 1;
                    if t.errors.len() < 5 {
                        let body = String::from_utf8_lossy(&answer.body);
                        t.errors.push(format!(
                            "{route}: HTTP {} {}",
                            answer.status,
                            body.chars().take(200).collect::<String>()
                        ));
                    }
                }
                Err(e) => {
                    t.error_count += 1;
                    if t.errors.len() < 5 {
                        t.errors.push(format!("{route}: {e}"));
                    }
                }
            }
            if a.pause_ms > 0 {
                std::thread::sleep(Duration::from_millis(a.pause_ms));
            }
            if Instant::now() >= stop {
                break;
            }
        }
    }
    t
}

fn main() -> ExitCode {
    match run(<Args as clap::Parser>::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(64)
        }
    }
}

fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.clients == 0 || a.items == 0 || a.seconds.is_nan() || a.seconds <= 0.0 {
        bail!("--clients, --items and --seconds must be greater than zero");
    }
    if a.warmup.is_nan() || a.warmup < 0.0 {
        bail!("--warmup must be zero or more seconds");
    }
    let (addr, host) = loopback_addr(&a.url)?;
    let a = Arc::new(a);
    let started = Instant::now() + Duration::from_secs_f64(a.warmup);
    let stop = started + Duration::from_secs_f64(a.seconds);
    let threads: Vec<_> = (0..a.clients)
        .map(|i| {
            let (a, host) = (a.clone(), host.clone());
            std::thread::spawn(move || client(&a, i as u64 + 1, addr, &host, started, stop))
        })
        .collect();
    let mut all = Tally::default();
    for t in threads {
        let Ok(t) = t.join() else {
            bail!("a load client thread panicked");
        };
        for (route, v) in t.latencies_us {
            all.latencies_us.entry(route).or_default().extend(v);
        }
        all.error_count += t.error_count;
        let room = 5usize.saturating_sub(all.errors.len());
        all.errors.extend(t.errors.into_iter().take(room));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut routes = Vec::new();
    for route in ROUTES {
        let Some(v) = all.latencies_us.get_mut(route) else {
            continue;
        };
        v.sort_unstable();
        routes.push(RouteFigures {
            route,
            requests: v.len(),
            p50_ms: percentile(v, 50.0),
            p95_ms: percentile(v, 95.0),
            p99_ms: percentile(v, 99.0),
            max_ms: v.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        });
    }
    let requests: usize = routes.iter().map(|r| r.requests).sum();
    let report = Report {
        clients: a.clients,
        pause_ms: a.pause_ms,
        warmup_seconds: a.warmup,
        seconds: elapsed,
        requests,
        requests_per_second: requests as f64 / elapsed,
        errors: all.error_count,
        routes,
        first_errors: all.errors,
    };
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => {
            println!(
                "{} clients (pause {} ms), {:.0} s warm-up, then {:.1} s: {} requests, {:.0} req/s, {} errors",
                report.clients,
                report.pause_ms,
                report.warmup_seconds,
                report.seconds,
                report.requests,
                report.requests_per_second,
                report.errors
            );
            let width = report
                .routes
                .iter()
                .map(|r| r.route.len())
                .max()
                .unwrap_or(5)
                .max(5);
            println!(
                "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
                "route", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"
            );
            for r in &report.routes {
                println!(
                    "{:<width$}  {:>8}  {:>8.1}  {:>8.1}  {:>8.1}  {:>8.1}",
                    r.route, r.requests, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms
                );
            }
            for e in &report.first_errors {
                println!("error: {e}");
            }
        }
    }
    Ok(if report.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
