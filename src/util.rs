//! Small helpers every command uses: atomic file writes, hex and percent
//! encoding. Nothing here knows about AWS or about a particular command.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lower-case hex.
/// Seconds since the Unix epoch (0 on a clock set before it).
/// A duration as `--timeout` takes it (`90s`, `45m`, `2h`).
pub fn shown_duration(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Percent-encodes an S3 key for `x-amz-copy-source` (all but unreserved
/// characters and `/`).
pub fn percent_encode_key(key: &str) -> String {
    let mut s = String::with_capacity(key.len() * 3);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A file's modification and status-change times, in nanoseconds since the epoch.
pub fn mtime_ctime_ns(m: &std::fs::Metadata) -> (i128, i128) {
    use std::os::unix::fs::MetadataExt;
    let ns = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
    (ns(m.mtime(), m.mtime_nsec()), ns(m.ctime(), m.ctime_nsec()))
}

/// The bytes a hex string spells, if it is one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Gives a finished temporary file mode 0644: readable by the next stage whatever the umask.
fn make_readable(tmp: &tempfile::NamedTempFile) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
}

/// Gives a finished temporary file mode 0644 and renames it onto `target`.
pub fn persist(tmp: tempfile::NamedTempFile, target: &Path) -> std::io::Result<()> {
    make_readable(&tmp)?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Like [`persist`], for large files: when `target` exists the two are
/// swapped in one step (`renameat2` with `RENAME_EXCHANGE`) and the old file,
/// now under the temporary name, is removed. Readers still see the old file
/// or the new one, never neither; and unlike a rename over an existing file,
/// the swap does not make ext4 write the new file out before the rename can
/// commit (its `auto_da_alloc` rule), which costs milliseconds per zip. A
/// process killed between the two steps leaves the old file under a
/// temporary name, which the next run removes.
pub fn persist_swap(tmp: tempfile::NamedTempFile, target: &Path) -> std::io::Result<()> {
    make_readable(&tmp)?;
    let (_file, path) = tmp.keep().map_err(|e| e.error)?;
    match exchange(&path, target) {
        Ok(()) => {
            // The new file is in place; an old one left behind is removed by the next run.
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("could not remove {}: {e}", path.display());
            }
            Ok(())
        }
        Err(_) => std::fs::rename(&path, target).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        }),
    }
}

/// Swaps two paths in one step (Linux's `renameat2` with `RENAME_EXCHANGE`),
/// by the system call itself: glibc's wrapper exists only from 2.28, over
/// the release binary's 2.17 floor (the kernel has had it since 3.15; an
/// older one answers ENOSYS and the caller renames instead).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The start of every temporary file name: `.artifact-<pid>-`, so a later run
/// can tell the leftovers of a process that died from files still being written.
const TEMP_PREFIX: &str = ".artifact-";

/// A temporary file in `dir`, named `.artifact-<pid>-<random><suffix>.tmp`.
pub fn temp_file_in(dir: &Path, suffix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(&format!("{suffix}.tmp"))
        .tempfile_in(dir)
}

/// Removes the temporary files in `dir` left by processes that are no longer
/// running (killed mid-write). Returns how many it removed.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = stale_pid(&name.to_string_lossy()) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The pid in a temporary file name of ours, if it is one.
fn stale_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    if !name.ends_with(".tmp") {
        return None;
    }
    rest.split('-').next()?.parse().ok()
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating
/// parent folders: readers see the old content or the new, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = temp_file_in(dir, "")?;
    tmp.write_all(bytes)?;
    persist(tmp, path)
}

/// Nanoseconds since the Unix epoch (0 for a clock before it), as the stat
/// indexes record when they were written.
pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
        .unwrap_or(0)
}

/// SHA-256 of a file's bytes, read in 64 KiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// `path` with `.` parts dropped and each `..` taking away the part before
/// it, without touching the file system (links are not followed).
pub fn normalize(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalize_drops_dots_and_climbs_lexically() {
        use super::normalize;
        use std::path::Path;
        assert_eq!(
            normalize(Path::new("/p/lambda/../frontend/./dist")),
            Path::new("/p/frontend/dist")
        );
        assert_eq!(normalize(Path::new("a/../../b")), Path::new("../b"));
        assert_eq!(normalize(Path::new("/p/./x/")), Path::new("/p/x"));
    }

    use super::*;

    #[test]
    fn copy_source_encoding() {
        assert_eq!(
            percent_encode_key("a b/c+d%#é.js"),
            "a%20b/c%2Bd%25%23%C3%A9.js"
        );
    }

    #[test]
    fn hex_is_lower_case_and_two_digits_a_byte() {
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
        assert_eq!(unhex("000f10ff"), Some(vec![0, 15, 16, 255]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn a_swap_replaces_the_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.zip");
        for content in ["first", "second"] {
            let mut tmp = temp_file_in(dir.path(), ".zip").unwrap();
            tmp.write_all(content.as_bytes()).unwrap();
            persist_swap(tmp, &target).unwrap();
            assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn leftovers_of_dead_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A pid above the kernel's limit (4194304) is never running.
        std::fs::write(d.join(".artifact-99999999-abc.zip.tmp"), "x").unwrap();
        let mine = temp_file_in(d, ".zip").unwrap();
        std::fs::write(d.join("api.zip"), "zip").unwrap();
        std::fs::write(d.join(".artifact-notapid.tmp"), "?").unwrap();
        assert_eq!(remove_stale_temp_files(d), 1);
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(mine.path().exists());
    }

    #[test]
    fn atomic_writes_replace_and_create_folders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }
}
