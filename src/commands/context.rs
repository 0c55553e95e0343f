//! What every command shares: the [`Context`] from the command line, the
//! printer's two routes, the AWS runtime, the clock and the commit.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::aws::{self, AwsArgs, Clients};
use crate::config::{self, Env};
use crate::output::Printer;

/// What every command needs from the command line.
pub(crate) struct Context {
    pub(crate) printer: Printer,
    pub(crate) config_path: PathBuf,
    /// `--config` as given (sync reads the project file only when there is one).
    pub(crate) explicit_config: Option<PathBuf>,
    pub(crate) aws: AwsArgs,
    /// `--metrics`: the CloudWatch namespace, over the project file's.
    pub(crate) metrics: Option<String>,
}

impl Context {
    /// Prints lines of the human summary.
    pub(crate) fn lines(&self, lines: Vec<String>) {
        for l in lines {
            self.printer.line(l);
        }
    }

    /// Prints the machine-readable document (with `--json`).
    pub(crate) fn document<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        self.printer
            .document(value)
            .context("failed to write the JSON report")
    }
}

/// The AWS settings for a command bounded by `timeout`: no one operation
/// (retries included) outlasts it.
pub(crate) fn bounded(args: &AwsArgs, timeout: std::time::Duration) -> AwsArgs {
    AwsArgs {
        operation_timeout: Some(timeout),
        ..args.clone()
    }
}

/// `work`, unless it outlasts `timeout` (`--timeout` bounds the whole
/// command, retries included): then `None`. Stopping there is like a kill:
/// what a deploy leaves, the next run finishes or cleans up.
pub(crate) async fn within<T>(
    timeout: std::time::Duration,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::time::timeout(timeout, work).await.ok()
}

/// Loads the AWS configuration and runs `f` with the clients, on the runtime.
pub(crate) fn with_aws<T>(
    args: &AwsArgs,
    f: impl AsyncFnOnce(&Clients) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let clients = aws::Clients::load(args).await?;
        f(&clients).await
    })
}

impl Context {
    /// The namespace figures go to, if any: `--metrics`, else `[metrics]`.
    pub(crate) fn metrics_namespace<'a>(
        &'a self,
        settings: &'a config::Settings,
    ) -> anyhow::Result<Option<&'a str>> {
        let ns = self
            .metrics
            .as_deref()
            .or(settings.metrics_namespace.as_deref());
        if let Some(Err(e)) = ns.map(crate::names::check_metrics_namespace) {
            anyhow::bail!(
                "--metrics {ns:?} is not a CloudWatch namespace: {}\nhint: use a name of your own, e.g. Artifact/Pipeline",
                e.problem
            );
        }
        Ok(ns)
    }

    /// Publishes `metrics` for `command` when a namespace is set; a failure
    /// is a warning.
    pub(crate) async fn publish_metrics(
        &self,
        clients: &Clients,
        settings: &config::Settings,
        command: &str,
        metrics: &[crate::metrics::Metric],
    ) {
        let Ok(Some(namespace)) = self.metrics_namespace(settings) else {
            return;
        };
        let to = crate::metrics::Target {
            namespace,
            project: &settings.project.name,
            environment: &settings.project.environment,
            command,
        };
        if let Err(w) = crate::metrics::publish(&clients.cloudwatch, &to, metrics).await {
            self.printer.warn(w);
        }
    }
}

/// The async runtime for commands that talk to AWS.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Seconds since the epoch, and a nonce that differs between concurrent runs.
pub(crate) fn clock_and_nonce() -> (u64, u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{}-{}", now.as_nanos(), std::process::id());
    let hash = blake3::hash(seed.as_bytes());
    let b = hash.as_bytes();
    (now.as_secs(), u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The commit being deployed: CodeBuild's, else the one checked out at `root`.
pub(crate) fn commit(env: &Env, root: &Path) -> Option<String> {
    env.source_version.clone().or_else(|| git_head(root))
}

/// The commit checked out at `root`, read from `.git` itself (no `git`
/// process: a warm pack starts none): HEAD, then the branch it names in
/// `refs/` or `packed-refs`. Worktrees (`.git` a file, `commondir`) too.
fn git_head(root: &Path) -> Option<String> {
    let mut dir = Some(root);
    let git = loop {
        let d = dir?;
        let g = d.join(".git");
        if g.exists() {
            break g;
        }
        dir = d.parent();
    };
    let git_dir = if git.is_file() {
        let text = std::fs::read_to_string(&git).ok()?;
        let to = text.strip_prefix("gitdir:")?.trim();
        git.parent()?.join(to)
    } else {
        git
    };
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.clone());
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let packed = || std::fs::read_to_string(common.join("packed-refs")).unwrap_or_default();
    resolve_head(head.trim(), |r| {
        std::fs::read_to_string(common.join(r))
            .ok()
            .map(|s| s.trim().to_string())
            .or_else(|| packed_ref(&packed(), r))
    })
}

/// HEAD's commit: a hash as it is, or `ref: <name>` looked up with `read`.
fn resolve_head(head: &str, read: impl Fn(&str) -> Option<String>) -> Option<String> {
    let sha = match head.strip_prefix("ref:") {
        Some(r) => read(r.trim())?,
        None => head.to_string(),
    };
    let ok = sha.len() >= 40 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(sha)
}

/// `<sha> <ref>` lines of `packed-refs`.
fn packed_ref(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .find_map(|l| {
            let (sha, r) = l.split_once(' ')?;
            (r.trim() == name).then(|| sha.to_string())
        })
}

/// A timeout in minutes from the project file, checked.
pub(crate) fn minutes(m: u64) -> std::time::Duration {
    std::time::Duration::from_secs(m.saturating_mul(60))
}

/// A failure whose details the command already printed (with `--json`, in its
/// document): the edge only sets the exit code and says this line.
#[derive(Debug)]
pub struct AlreadyReported(pub String);

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlreadyReported {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_read_from_refs_and_packed_refs() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let packed = format!("# pack-refs\n{sha} refs/heads/main\n^{sha}\n");
        assert_eq!(packed_ref(&packed, "refs/heads/main").as_deref(), Some(sha));
        let head = resolve_head("ref: refs/heads/main", |r| packed_ref(&packed, r));
        assert_eq!(head.as_deref(), Some(sha));
        assert_eq!(resolve_head(sha, |_| None).as_deref(), Some(sha));
        assert_eq!(resolve_head("ref: refs/heads/gone", |_| None), None);
        assert_eq!(resolve_head("not a sha", |_| None), None);
    }

    #[test]
    fn head_of_this_checkout_is_what_git_says() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let Ok(out) = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(root)
            .output()
        else {
            return;
        };
        if out.status.success() {
            let want = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(git_head(root), Some(want));
        }
    }
}
