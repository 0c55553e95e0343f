//! A child process with a deadline: its input written, its output read
//! whole, and killed when it runs past the deadline.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `input` on its stdin; an error when it cannot start or
/// runs longer than `limit` (it is killed then).
pub(super) fn run(mut cmd: Command, input: &[u8], limit: Duration) -> std::io::Result<Output> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (out, err) = std::thread::scope(|s| {
        let input = input.to_vec();
        s.spawn(move || {
            if let Some(w) = stdin.as_mut() {
                let _ = w.write_all(&input);
            }
            drop(stdin);
        });
        let out = s.spawn(move || read_all(stdout.as_mut()));
        let err = s.spawn(move || read_all(stderr.as_mut()));
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("killed after {} s", limit.as_secs()),
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => break Err(e),
            }
        };
        (
            status.map(|st| (st, out.join().unwrap_or_default())),
            err.join().unwrap_or_default(),
        )
    });
    let (status, stdout) = out?;
    Ok(Output {
        status,
        stdout,
        stderr: err,
    })
}

fn read_all(r: Option<&mut impl Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_read_and_a_slow_child_is_killed() {
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo err >&2"]);
        let out = run(c, b"in", Duration::from_secs(10)).unwrap();
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice()),
            (&b"in"[..], &b"err\n"[..])
        );
        let mut c = Command::new("sleep");
        c.arg("5");
        let e = run(c, b"", Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }
}
