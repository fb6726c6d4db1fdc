//! HTTP load: `wrk` (Debian's package) when it is installed, and a small generator of our own
//! for a fixed request rate, which plain wrk cannot hold.
//!
//! The generator runs in a thread and runtime of its own (like a separate process, it competes
//! with the server only for the CPU) over raw HTTP/1.1 keep-alive connections, and measures each
//! request from the moment it was *due*, so a stalled server shows up in the tail instead of
//! slowing the generator down (no coordinated omission).

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::report::{percentile, Report};

/// What a load run saw.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Responses that were not 200.
    pub errors: u64,
    /// Body size of the last response, bytes.
    pub body_bytes: usize,
}

impl LoadResult {
    /// Adds `<name>_rps`, `<name>_p50_ms` and `<name>_p99_ms`.
    pub fn report(&self, report: &mut Report, name: &str) {
        report.add(&format!("{name}_rps"), self.rps, "1/s");
        report.add(&format!("{name}_p50_ms"), self.p50_ms, "ms");
        report.add(&format!("{name}_p99_ms"), self.p99_ms, "ms");
    }
}

/// Whether `wrk` is on the PATH.
pub fn have_wrk() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .map(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
        .unwrap_or(false)
}

/// `wrk -t2 -c<conns> -d<secs>s --latency` against `url` with `headers` (off the runtime's
/// threads, which serve the api).
pub async fn wrk(
    url: &str,
    headers: &[(&str, String)],
    conns: u32,
    secs: u64,
) -> anyhow::Result<LoadResult> {
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || wrk_blocking(&url, &headers, conns, secs)).await?
}

fn wrk_blocking(
    url: &str,
    headers: &[(String, String)],
    conns: u32,
    secs: u64,
) -> anyhow::Result<LoadResult> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    let out = cmd.arg(url).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |prefix: &str| -> Option<f64> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(parse_wrk_number)
    };
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(LoadResult {
        rps: value("Requests/sec:").context(format!("wrk output: {text}"))?,
        p50_ms: value("50%").context("wrk p50")?,
        p99_ms: value("99%").context("wrk p99")?,
        errors: non2xx,
        body_bytes: 0,
    })
}

/// `12.5ms`, `830.00us`, `1.20s` as milliseconds; plain numbers as they are.
fn parse_wrk_number(s: &str) -> Option<f64> {
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// `rate` requests per second (0: as fast as `conns` connections go) of `GET path` for
/// `secs`, in a thread and runtime of its own.
pub async fn generate(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    conns: usize,
    rate: u32,
    secs: f64,
) -> anyhow::Result<LoadResult> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(run(addr, request, conns, rate, secs))
    })
    .await?
}

async fn run(
    addr: SocketAddr,
    request: String,
    conns: usize,
    rate: u32,
    secs: f64,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(secs);
    // Each connection's share of the schedule.
    let every = (rate > 0).then(|| Duration::from_secs_f64(conns as f64 / f64::from(rate)));
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let request = request.clone();
        let offset = every.map(|e| e.mul_f64(c as f64 / conns as f64));
        tasks.push(tokio::spawn(async move {
            connection(addr, request, start, end, every, offset).await
        }));
    }
    let mut latencies = Vec::new();
    let (mut errors, mut body_bytes) = (0, 0);
    for t in tasks {
        let (l, e, b) = t.await??;
        latencies.extend(l);
        errors += e;
        body_bytes = body_bytes.max(b);
    }
    let elapsed = Instant::now()
        .min(end)
        .saturating_duration_since(start)
        .as_secs_f64();
    Ok(LoadResult {
        rps: latencies.len() as f64 / elapsed.max(0.001),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        errors,
        body_bytes,
    })
}

type ConnResult = (Vec<f64>, u64, usize);

async fn connection(
    addr: SocketAddr,
    request: String,
    start: Instant,
    end: Instant,
    every: Option<Duration>,
    offset: Option<Duration>,
) -> anyhow::Result<ConnResult> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(128 * 1024);
    let mut latencies = Vec::new();
    let (mut errors, mut body_bytes) = (0u64, 0usize);
    let mut due = start + offset.unwrap_or_default();
    tokio::time::sleep_until(due.into()).await;
    while due < end {
        if every.is_none() {
            due = Instant::now();
        }
        stream.write_all(request.as_bytes()).await?;
        let (status, len) = read_response(&mut stream, &mut buf).await?;
        latencies.push(due.elapsed().as_secs_f64() * 1000.0);
        if status != 200 {
            errors += 1;
        }
        body_bytes = len;
        if let Some(every) = every {
            due += every;
            tokio::time::sleep_until(due.into()).await;
        }
    }
    Ok((latencies, errors, body_bytes))
}

/// Reads one response (Content-Length or chunked); returns its status and body length.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<(u16, usize)> {
    buf.clear();
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("status line")?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < head_end + len {
            fill(stream, buf).await?;
        }
        return Ok((status, len));
    }
    anyhow::ensure!(
        header("transfer-encoding:").is_some_and(|v| v.contains("chunked")),
        "response without a length"
    );
    let (mut pos, mut total) = (head_end, 0);
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[pos..], b"\r\n") {
                break pos + i;
            }
            fill(stream, buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[pos..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("chunk size")?;
        let chunk_end = line_end + 2 + size + 2;
        while buf.len() < chunk_end {
            fill(stream, buf).await?;
        }
        total += size;
        pos = chunk_end;
        if size == 0 {
            return Ok((status, total));
        }
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    anyhow::ensure!(n > 0, "connection closed");
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_units() {
        let us = parse_wrk_number("830.00us").expect("microseconds");
        assert!((us - 0.83).abs() < 1e-9, "{us}");
        assert_eq!(parse_wrk_number("12.5ms"), Some(12.5));
        assert_eq!(parse_wrk_number("1.20s"), Some(1200.0));
        assert_eq!(parse_wrk_number("1523.4"), Some(1523.4));
    }
}
