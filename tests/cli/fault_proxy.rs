//! A proxy between artifact and the local AWS server that injects the faults
//! of a flaky network and a struggling service, at a given rate, from a
//! seeded generator: HTTP 500 InternalError, 503 SlowDown, a connection
//! dropped before the request reaches the server, one dropped after the
//! server acted (the answer never arrives), and an answer cut mid-body.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The most faults one request (same line and body) gets: fewer than the
/// SDK's attempts, so a run can fail only where artifact itself gives up.
const MAX_FAULTS_PER_REQUEST: u32 = 2;

/// The kinds of fault, in the order counted.
pub(crate) const FAULTS: [&str; 5] = ["500", "503", "drop before", "drop after", "cut body"];

/// A running proxy.
pub(crate) struct FaultProxy {
    pub(crate) endpoint: String,
    /// Requests seen, then one count per fault kind.
    counts: Arc<[AtomicU64; 6]>,
}

impl FaultProxy {
    /// Requests proxied so far and faults injected by kind.
    pub(crate) fn counts(&self) -> (u64, Vec<(&'static str, u64)>) {
        let c = &self.counts;
        (
            c[0].load(Ordering::Relaxed),
            FAULTS
                .iter()
                .enumerate()
                .map(|(i, f)| (*f, c[i + 1].load(Ordering::Relaxed)))
                .collect(),
        )
    }
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:port`) that faults
/// `percent` of requests. It runs until the test process ends.
pub(crate) fn start(upstream: &str, percent: u64, seed: u64) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let counts: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    let state = Arc::new(Schedule {
        rng: AtomicU64::new(seed),
        percent,
        faulted: Mutex::new(HashMap::new()),
    });
    let c = counts.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (upstream, counts, state) = (upstream.clone(), c.clone(), state.clone());
            std::thread::spawn(move || serve(client, &upstream, &counts, &state));
        }
    });
    FaultProxy { endpoint, counts }
}

/// Which requests get a fault.
struct Schedule {
    rng: AtomicU64,
    percent: u64,
    /// Faults given so far, by request.
    faulted: Mutex<HashMap<u64, u32>>,
}

impl Schedule {
    /// The fault for this request, if any (an index into [`FAULTS`]).
    fn fault_for(&self, request: &[u8]) -> Option<usize> {
        let roll = next(&self.rng);
        if (roll >> 32) % 100 >= self.percent {
            return None;
        }
        let line_end = request.iter().position(|b| *b == b'\n').unwrap_or(0);
        let body_start = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(request.len(), |i| i + 4);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        request[..line_end].hash(&mut h);
        request[body_start..].hash(&mut h);
        let mut faulted = self.faulted.lock().unwrap();
        let n = faulted.entry(h.finish()).or_default();
        if *n >= MAX_FAULTS_PER_REQUEST {
            return None;
        }
        *n += 1;
        Some((roll % 5) as usize)
    }
}

/// splitmix64 over a counter: the n-th request's roll is the same for the
/// same seed, whatever came before.
fn next(rng: &AtomicU64) -> u64 {
    let mut z = rng
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn serve(client: TcpStream, upstream: &str, counts: &[AtomicU64; 6], schedule: &Schedule) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    while let Some(request) = read_request(&mut reader, &mut client) {
        counts[0].fetch_add(1, Ordering::Relaxed);
        let fault = schedule.fault_for(&request);
        if let Some(f) = fault {
            counts[f + 1].fetch_add(1, Ordering::Relaxed);
        }
        let reply = match fault {
            Some(0) => error_reply("500 Internal Server Error", "InternalError"),
            Some(1) => error_reply("503 Slow Down", "SlowDown"),
            Some(2) => return,
            _ => match forward(upstream, &request) {
                Some(r) => r,
                None => return,
            },
        };
        match fault {
            Some(3) => return,
            Some(4) => {
                let cut = reply
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|h| h + 4 + (reply.len() - h - 4) / 2)
                    .unwrap_or(reply.len() / 2);
                let _ = client.write_all(&reply[..cut]);
                return;
            }
            _ => {
                if client.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    }
}

fn error_reply(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One whole request (head and body), with `Connection: close` for the
/// upstream, so its answer ends where the connection does.
pub(crate) fn read_request(
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut chunked = false;
    let mut expect = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if lower.starts_with("expect:") {
            expect = true;
            continue;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    if expect {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            head.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                // Trailers, if any, then the empty line that ends the body.
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).ok()?;
                    head.extend_from_slice(line.as_bytes());
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            head.extend_from_slice(&chunk);
        }
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        head.extend_from_slice(&body);
    }
    Some(head)
}

fn forward(upstream: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    up.write_all(request).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    (!answer.is_empty()).then_some(answer)
}
