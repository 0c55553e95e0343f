//! What a person reads when AWS answers badly: one error line and one hint,
//! never the SDK's internals. A small HTTP server on loopback gives the one
//! answer each case needs (no AWS server says "500 with an HTML page" on cue).

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::{assert_failure, Sample};

/// One answer of the fake endpoint.
enum Reply {
    Full {
        status: &'static str,
        content_type: &'static str,
        body: String,
    },
    /// Says `declared` bytes are coming, sends `body`, and closes the connection.
    Cut { declared: usize, body: String },
    /// Reads the request and never answers.
    Silence,
}

/// Serves `reply(request line, how many requests came before)` on a free
/// loopback port until the test process ends. Returns the endpoint.
fn serve(reply: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let reply = Arc::new(reply);
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (reply, count) = (reply.clone(), count.clone());
            std::thread::spawn(move || answer_all(stream, &*reply, &count));
        }
    });
    endpoint
}

fn answer_all(mut stream: TcpStream, reply: &dyn Fn(&str, usize) -> Reply, count: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    while let Some(request) = crate::fault_proxy::read_request(&mut reader, &mut stream) {
        let request_line = String::from_utf8_lossy(&request)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let n = count.fetch_add(1, Ordering::SeqCst);
        let (head, body, close) = match reply(&request_line, n) {
            Reply::Full {
                status,
                content_type,
                body,
            } => (
                format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()),
                body,
                false,
            ),
            Reply::Cut { declared, body } => (
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n"),
                body,
                true,
            ),
            Reply::Silence => {
                std::thread::sleep(std::time::Duration::from_secs(300));
                return;
            }
        };
        let answer = format!("{head}x-amzn-requestid: r1\r\n\r\n{body}");
        if stream.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Answers every request with `status` and `body`.
fn answering(status: &'static str, content_type: &'static str, body: &'static str) -> String {
    serve(move |_, _| Reply::Full {
        status,
        content_type,
        body: body.to_string(),
    })
}

/// `artifact args` in `dir` against `endpoint`, with empty AWS config files,
/// as on a build host without any.
fn command(dir: &Path, endpoint: &str, args: &[&str]) -> Command {
    let config = dir.join("aws-config");
    std::fs::write(&config, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
    crate::local_aws::aws_env(&mut cmd)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &config)
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(args)
        .current_dir(dir);
    cmd
}

fn run(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    command(dir, endpoint, args)
        .env("AWS_MAX_ATTEMPTS", "2")
        .output()
        .unwrap()
}

/// The error is one line (two with the hint), names the operation, and shows
/// none of the SDK's structures.
fn assert_short(out: &Output, operation: &str) -> String {
    let err = assert_failure(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() <= 2, "more than two lines:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(operation), "{err}");
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("hint: ")),
        "no hint:\n{err}"
    );
    for internal in ["ServiceError", "Unhandled", "raw:", "Response {", "source:"] {
        assert!(!err.contains(internal), "{internal} in:\n{err}");
    }
    err
}

#[test]
fn an_html_500_is_one_line_with_status_and_text() {
    let endpoint = answering(
        "500 Internal Server Error",
        "text/html",
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>nginx</p></body></html>",
    );
    let s = Sample::new();
    let err = assert_short(
        &run(s.dir.path(), &endpoint, &["config-js"]),
        "DescribeStacks",
    );
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(err.contains("502 Bad Gateway"), "{err}");
    assert!(
        err.contains("hint: the endpoint did not answer like AWS"),
        "{err}"
    );
}

#[test]
fn a_refused_connection_says_so() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Sample::new();
    let endpoint = format!("http://127.0.0.1:{port}");
    let err = assert_short(
        &run(s.dir.path(), &endpoint, &["config-js"]),
        "DescribeStacks",
    );
    assert!(err.contains("could not reach"), "{err}");
    assert!(err.contains("hint: check --endpoint-url"), "{err}");
}

#[test]
fn an_expired_token_asks_for_fresh_credentials() {
    let endpoint = answering(
        "403 Forbidden",
        "text/xml",
        "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error><RequestId>r1</RequestId></ErrorResponse>",
    );
    let s = Sample::new();
    let err = assert_short(
        &run(s.dir.path(), &endpoint, &["config-js"]),
        "DescribeStacks",
    );
    assert!(err.contains("ExpiredToken"), "{err}");
    assert!(err.contains("hint: the credentials are expired"), "{err}");
}

#[test]
fn access_denied_names_the_permission_to_grant() {
    let endpoint = answering(
        "403 Forbidden",
        "application/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>r1</RequestId></Error>",
    );
    let s = Sample::new();
    std::fs::create_dir_all(s.path("site")).unwrap();
    std::fs::write(s.path("site/index.html"), "<p>hi</p>\n").unwrap();
    let out = run(
        s.dir.path(),
        &endpoint,
        &["sync", "site", "s3://some-bucket/www"],
    );
    let err = assert_short(&out, "ListObjectsV2");
    assert!(err.contains("access denied"), "{err}");
    assert!(
        err.contains("hint: grant the role s3:ListBucket on some-bucket"),
        "{err}"
    );
}

#[test]
fn a_state_object_cut_mid_stream_is_read_again() {
    const STATE: &str = r#"{"version":1,"objects":{}}"#;
    let gets = Arc::new(AtomicUsize::new(0));
    let seen = gets.clone();
    let endpoint = serve(move |request, _| {
        if request.contains("list-type=2") {
            Reply::Full {
                status: "200 OK",
                content_type: "application/xml",
                body: format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>site</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>.artifact-sync.json</Key><Size>{}</Size><ETag>&quot;e1&quot;</ETag></Contents></ListBucketResult>",
                    STATE.len()
                ),
            }
        } else if request.contains(".artifact-sync.json")
            && seen.fetch_add(1, Ordering::SeqCst) == 0
        {
            Reply::Cut {
                declared: STATE.len(),
                body: STATE[..8].to_string(),
            }
        } else if request.contains(".artifact-sync.json") {
            Reply::Full {
                status: "200 OK",
                content_type: "application/json",
                body: STATE.to_string(),
            }
        } else {
            Reply::Full {
                status: "400 Bad Request",
                content_type: "application/xml",
                body: format!("<Error><Code>Unexpected</Code><Message>{request}</Message></Error>"),
            }
        }
    });
    let s = Sample::new();
    std::fs::create_dir_all(s.path("empty")).unwrap();
    let out = run(
        s.dir.path(),
        &endpoint,
        &["sync", "empty", "s3://site", "--json"],
    );
    crate::common::assert_success(&out);
    assert_eq!(gets.load(Ordering::SeqCst), 2, "the cut GET was sent again");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"]["S3.GetObject"], 2, "{report}");
}

#[test]
fn an_endpoint_that_never_answers_fails_within_the_read_timeout() {
    let endpoint = serve(|_, _| Reply::Silence);
    let s = Sample::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
    let config = s.path("aws-config");
    std::fs::write(&config, "").unwrap();
    let out = crate::local_aws::aws_env(&mut cmd)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &config)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_MAX_ATTEMPTS", "1")
        .args(["config-js"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    let err = assert_short(&out, "DescribeStacks");
    // The read timeout fired: the server would only have closed the connection after 300 s.
    assert!(
        err.contains("could not reach") && err.contains("no answer in time"),
        "{err}"
    );
}

/// Canary credentials never reach the output, at any verbosity, on success
/// or on failure.
#[test]
fn credentials_never_reach_the_output() {
    const SECRET: &str = "CANARYsecretKEY0123456789abcdefghijklmnop";
    const TOKEN: &str = "CANARYsessionTOKEN0123456789";
    let endpoint = answering(
        "403 Forbidden",
        "text/xml",
        "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>expired</Message></Error></ErrorResponse>",
    );
    let s = Sample::new();
    let config = s.path("aws-config");
    std::fs::write(&config, "").unwrap();
    for verbosity in [None, Some("info"), Some("debug"), Some("trace")] {
        for args in [&["config-js"][..], &["deploy-frontend", "--json"][..]] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
            crate::local_aws::aws_env(&mut cmd)
                .env("AWS_CONFIG_FILE", &config)
                .env("AWS_SHARED_CREDENTIALS_FILE", &config)
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("AWS_MAX_ATTEMPTS", "1")
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("AWS_SESSION_TOKEN", TOKEN)
                .args(args)
                .current_dir(s.dir.path());
            if let Some(v) = verbosity {
                cmd.env("RUST_LOG", v);
            }
            let out = cmd.output().unwrap();
            assert!(!out.status.success());
            for stream in [&out.stdout, &out.stderr] {
                let text = String::from_utf8_lossy(stream);
                assert!(
                    !text.contains(SECRET),
                    "secret key in output at {verbosity:?}"
                );
                assert!(
                    !text.contains(TOKEN),
                    "session token in output at {verbosity:?}"
                );
            }
        }
    }
}

/// An endpoint that accepts connections and never answers: its URL.
fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    url
}

/// `args` with the default attempts (not the 2 `run` sets), bounded by a
/// guard far beyond what the command may take: a hang fails the test, the
/// guard is no timing target.
fn run_guarded(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    let mut child = command(dir, endpoint, args)
        .env_remove("AWS_MAX_ATTEMPTS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(150) {
            let _ = child.kill();
            panic!("{args:?} was still running after 150 s against a silent endpoint");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_silent_endpoint_is_given_up_on_within_the_timeout_naming_it() {
    let endpoint = silent();
    let s = Sample::new();
    s.pack(&[]);
    let out = run_guarded(
        s.dir.path(),
        &endpoint,
        &["deploy-infra", "--timeout", "5s"],
    );
    let err = assert_failure(&out);
    assert!(
        err.contains(&endpoint) || err.contains("--timeout"),
        "{err}"
    );
    // The shared cache: a warning, and the pack goes on with the local cache.
    let url = "s3://silent-cache/team";
    std::fs::remove_dir_all(s.path("build")).unwrap();
    std::fs::remove_dir_all(s.path(".artifact-cache")).unwrap();
    let out = run_guarded(s.dir.path(), &endpoint, &["pack", "--cache-url", url]);
    crate::common::assert_success(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("silent-cache"), "{said}");
}
