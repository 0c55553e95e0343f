//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The sample's functions, in name order.
pub(crate) const FUNCTIONS: [&str; 5] = [
    "api-handler",
    "execution-finder",
    "execution-poller",
    "frontend-builder",
    "orchestration-stepfunctions",
];

/// The repository's own folder.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of `testdata/sample` in a fresh temporary folder (without build output or cache).
pub(crate) struct Sample {
    pub dir: tempfile::TempDir,
}

impl Sample {
    pub(crate) fn new() -> Sample {
        Sample::of("sample")
    }

    /// A copy of `testdata/<name>`.
    pub(crate) fn of(name: &str) -> Sample {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("testdata").join(name), dir.path());
        Sample { dir }
    }

    /// The same, packed without bytecode: for tests of the zip's own layout.
    pub(crate) fn without_bytecode(self) -> Sample {
        self.pack_keys("bytecode = false\n");
        self
    }

    /// Adds `lines` (keys, each ending in a newline) at the top of `[pack]`.
    pub(crate) fn pack_keys(&self, lines: &str) {
        self.edit("artifact.toml", |t| {
            t.replacen("[pack]\n", &format!("[pack]\n{lines}"), 1)
        });
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `artifact` in the sample's folder.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        artifact(self.dir.path(), args)
    }

    /// Runs `artifact pack --json` and returns the parsed report; panics on failure.
    pub(crate) fn pack(&self, extra: &[&str]) -> artifact::pack::PackReport {
        let mut args = vec!["pack", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).expect("pack --json prints one JSON document")
    }

    pub(crate) fn edit(&self, rel: &str, f: impl FnOnce(&str) -> String) {
        let p = self.path(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(&text)).unwrap();
    }
}

/// Runs the binary in `dir`, with no inherited overrides of the project file.
pub(crate) fn artifact(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(args)
        .current_dir(dir)
        .env_remove("PROJECT_NAME")
        .env_remove("ENVIRONMENT")
        .env_remove("RUST_LOG")
        .output()
        .expect("run artifact")
}

/// Runs the binary in `dir` as [`artifact`] does, with `unset` removed from its environment too.
pub(crate) fn artifact_without(dir: &Path, args: &[&str], unset: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_artifact"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("PROJECT_NAME")
        .env_remove("ENVIRONMENT")
        .env_remove("RUST_LOG");
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.output().expect("run artifact")
}

pub(crate) fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "artifact failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a non-zero exit and returns stderr.
pub(crate) fn assert_failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "artifact should have failed:\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("error:"), "no error line in: {stderr}");
    stderr
}

/// Asserts that every request sent only read: Get, List, Describe or Head operations.
pub(crate) fn assert_only_reads(requests: &std::collections::BTreeMap<String, u64>) {
    assert!(!requests.is_empty(), "no request counted at all");
    for op in requests.keys() {
        let name = op.rsplit('.').next().unwrap_or(op);
        assert!(
            ["Get", "List", "Describe", "Head"]
                .iter()
                .any(|p| name.starts_with(p)),
            "{op} changes something, in a dry run: {requests:?}"
        );
    }
}

/// Copies a tree, keeping modes and symlinks, skipping build output and
/// caches; a link to a folder outside the tree (`../…`) is copied as that
/// folder, so the copy stands alone.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "build" || name == ".artifact-cache" || name == "node_modules" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let ft = entry.file_type().unwrap();
        if ft.is_symlink() {
            let target = std::fs::read_link(&src).unwrap();
            if target.starts_with("..") && src.is_dir() {
                copy_tree(&src, &dst);
                continue;
            }
            std::os::unix::fs::symlink(target, &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Every file below `dir`, relative, sorted.
pub(crate) fn files_below(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut v);
    }
    v.sort();
    v
}

/// The functions whose code a deploy or rollback updated.
pub(crate) fn updated(functions: &[artifact::lambda::CodeResult]) -> Vec<&str> {
    functions
        .iter()
        .filter(|f| f.action == artifact::lambda::CodeAction::Updated)
        .map(|f| f.function.as_str())
        .collect()
}
