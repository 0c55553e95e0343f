//! Build facts for `artifact --version`: the commit and its date, the target,
//! and the C library floor (`ARTIFACT_GLIBC_FLOOR`, set by scripts/release,
//! else the build host's glibc).

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=ARTIFACT_GLIBC_FLOOR");
    println!("cargo:rerun-if-env-changed=ARTIFACT_COMMIT");
    let commit = std::env::var("ARTIFACT_COMMIT")
        .ok()
        .or_else(|| run("git", &["rev-parse", "--short=7", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = run("git", &["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let libc = if target.contains("musl") {
        "static, musl".to_string()
    } else if let Ok(floor) = std::env::var("ARTIFACT_GLIBC_FLOOR") {
        format!("glibc {floor}")
    } else {
        // `ldd (Debian GLIBC 2.36-9) 2.36`: the build host's, the floor of a plain build.
        run("ldd", &["--version"])
            .and_then(|v| v.lines().next()?.rsplit(' ').next().map(str::to_string))
            .map(|v| format!("glibc {v}, of the build host"))
            .unwrap_or_else(|| "glibc of the build host".into())
    };
    println!("cargo:rustc-env=ARTIFACT_COMMIT={commit}");
    println!("cargo:rustc-env=ARTIFACT_COMMIT_DATE={date}");
    println!("cargo:rustc-env=ARTIFACT_TARGET={target}");
    println!("cargo:rustc-env=ARTIFACT_LIBC={libc}");
}
