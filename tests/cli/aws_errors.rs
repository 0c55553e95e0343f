//! What a person reads when AWS answers badly: one error line and one hint,
//! never the SDK's internals. A small HTTP server on loopback gives the one
//! answer each case needs (no AWS server says "500 with an HTML page" on cue).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{assert_failure, Sample};

/// Answers every request on a free loopback port with `status` and `body`,
/// until the test process ends. Returns the endpoint.
fn answering(status: &'static str, content_type: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    // Read one request: headers, then the body its length says.
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body_in = vec![0; length];
                    if reader.read_exact(&mut body_in).is_err() {
                        return;
                    }
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-requestid: r1\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    endpoint
}

fn run(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    // Empty AWS config files, as on a build host without any.
    let config = dir.join("aws-config");
    std::fs::write(&config, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
    crate::local_aws::aws_env(&mut cmd)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &config)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_MAX_ATTEMPTS", "2")
        .args(args)
        .current_dir(dir)
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
