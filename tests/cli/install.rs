//! Requirements installed for the Lambda target, with uv and with pip, from a
//! wheelhouse of tiny wheels built here (no index, no network).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use artifact::pack::PackReport;

use crate::common::{assert_failure, assert_success, repo, Sample};

/// The wheels every test may ask for, and one package that ships only source.
const WHEELS: &[(&str, &str)] = &[
    ("purepkg", "py3-none-any"),
    ("native", "cp312-cp312-manylinux_2_17_x86_64"),
    ("native", "cp312-cp312-manylinux_2_17_aarch64"),
    ("glibc234", "py3-none-manylinux_2_34_x86_64"),
    ("glibc224", "py3-none-manylinux_2_24_x86_64"),
    ("toonew", "py3-none-manylinux_2_39_x86_64"),
];

/// A wheel is a zip with `*.dist-info/WHEEL`, `METADATA` and `RECORD`; the
/// sdist a tarball with a pyproject.toml.
const MAKE_WHEELS: &str = r#"
import sys, zipfile, hashlib, base64, tarfile, io
out = sys.argv[1]
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
for spec in sys.argv[2:]:
    name, tag = spec.split(":")
    di = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": f"TAG = {tag!r}\n".encode(),
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{di}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    record = [f"{k},{digest(v)},{len(v)}" for k, v in files.items()] + [f"{di}/RECORD,,"]
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(f"{out}/{name}-1.0-{tag}.whl", "w") as z:
        for k, v in files.items():
            z.writestr(zipfile.ZipInfo(k, (2020, 1, 1, 0, 0, 0)), v)
data = b"[project]\nname = 'sdistonly'\nversion = '1.0'\n"
with tarfile.open(f"{out}/sdistonly-1.0.tar.gz", "w:gz") as t:
    info = tarfile.TarInfo("sdistonly-1.0/pyproject.toml")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
"#;

/// The wheelhouse, built once per test run.
pub(crate) fn wheelhouse() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<String> = WHEELS.iter().map(|(n, t)| format!("{n}:{t}")).collect();
        stdout_of(
            Command::new("python3")
                .args(["-c", MAKE_WHEELS])
                .arg(dir.path())
                .args(&specs),
        );
        dir
    })
    .path()
}

/// Runs a helper program that must succeed; its output.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pinned uv of the project's tool environment (scripts/local-aws setup).
fn pinned_uv() -> PathBuf {
    static UV: OnceLock<PathBuf> = OnceLock::new();
    UV.get_or_init(|| {
        let out = stdout_of(Command::new(repo().join("scripts/local-aws")).arg("python"));
        let python = PathBuf::from(out.trim());
        let uv = python.parent().unwrap().join("uv");
        assert!(
            uv.exists(),
            "scripts/local-aws setup installs uv at {}",
            uv.display()
        );
        uv
    })
    .clone()
}

/// PATH without any folder holding a `uv`.
fn path_without_uv() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("uv").exists())
        .collect();
    std::env::join_paths(kept).unwrap().into_string().unwrap()
}

/// A sample whose functions take `requirements` (one per line), installed by
/// `installer` ("uv" on PATH, or "pip" with no uv anywhere on PATH). Each
/// installer run is logged.
struct Case {
    sample: Sample,
    path: String,
    log: PathBuf,
}

const INSTALLERS: [&str; 2] = ["uv", "pip"];

impl Case {
    fn new(installer: &str, requirements: &str, pack_keys: &str) -> Case {
        let sample = Sample::new();
        let bin = sample.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = sample.path("installer.log");
        // Wrappers that log every install before running the real program.
        let (path, python) = match installer {
            "uv" => {
                write_script(
                    &bin.join("uv"),
                    &format!(
                        "#!/bin/sh\ncase \"$*\" in *\"pip install\"*) echo \"uv $*\" >> {};; esac\nexec {} \"$@\"\n",
                        log.display(),
                        pinned_uv().display()
                    ),
                );
                (
                    format!("{}:{}", bin.display(), path_without_uv()),
                    "python3".to_string(),
                )
            }
            _ => {
                let python = bin.join("python-logged");
                write_script(
                    &python,
                    &format!(
                        "#!/bin/sh\ncase \"$*\" in *\"pip install\"*) echo \"pip $*\" >> {};; esac\nexec python3 \"$@\"\n",
                        log.display()
                    ),
                );
                (path_without_uv(), python.display().to_string())
            }
        };
        std::fs::write(sample.path("lambda/requirements.txt"), requirements).unwrap();
        sample.edit("artifact.toml", |t| {
            t.replace(
                "dependencies = \"lambda/package\"",
                &format!(
                    "requirements = \"lambda/requirements.txt\"\npython = \"{python}\"\npip_args = [\"--no-index\", \"--find-links\", \"{}\"]\n{pack_keys}",
                    wheelhouse().display()
                ),
            )
        });
        Case { sample, path, log }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_artifact"))
            .args(args)
            .current_dir(self.sample.dir.path())
            .env("PATH", &self.path)
            .env_remove("PROJECT_NAME")
            .env_remove("ENVIRONMENT")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    fn pack(&self) -> PackReport {
        let out = self.run(&["pack", "--json"]);
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a pack that must fail, and checks it wrote nothing; its stderr.
    fn pack_fails(&self, installer: &str) -> String {
        let err = assert_failure(&self.run(&["pack"]));
        assert!(
            !self.sample.path("build").exists(),
            "{installer}: something was written"
        );
        err
    }

    fn installs_logged(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|l| l.lines().count())
            .unwrap_or(0)
    }

    /// The entry names of one zip.
    fn zip_names(&self, zip: &str) -> Vec<String> {
        let f = std::fs::File::open(self.sample.path(&format!("build/lambda/{zip}"))).unwrap();
        let mut names = Vec::new();
        let mut z = zip_reader(f);
        for i in 0..z.len() {
            names.push(z.by_index(i).unwrap().name().to_string());
        }
        names
    }

    fn read(&self, zip: &str, name: &str) -> String {
        let f = std::fs::File::open(self.sample.path(&format!("build/lambda/{zip}"))).unwrap();
        let mut z = zip_reader(f);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut z.by_name(name).unwrap(), &mut s).unwrap();
        s
    }
}

fn zip_reader(f: std::fs::File) -> zip::ZipArchive<std::fs::File> {
    zip::ZipArchive::new(f).unwrap()
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn arm64_takes_the_aarch64_wheel_on_an_x86_64_host() {
    for installer in INSTALLERS {
        let c = Case::new(installer, "native==1.0\n", "architecture = \"arm64\"");
        let r = c.pack();
        let install = &r.run.installs[0];
        assert_eq!(install.installer, installer);
        assert!(
            install.installer_version.starts_with(installer),
            "{install:?}"
        );
        assert_eq!(install.target, "python3.12 arm64");
        assert_eq!(install.wheels.len(), 1);
        assert_eq!(
            install.wheels[0].tag, "cp312-cp312-manylinux_2_17_aarch64",
            "{installer}"
        );
        assert!(!install.cached);
        let wheel = c.read("api-handler.zip", "native-1.0.dist-info/WHEEL");
        assert!(
            wheel.contains("manylinux_2_17_aarch64"),
            "{installer}: {wheel}"
        );
    }
}

#[test]
fn python3_12_takes_manylinux_2_34_and_refuses_2_39() {
    for installer in INSTALLERS {
        let c = Case::new(installer, "glibc234==1.0\n", "");
        let r = c.pack();
        assert_eq!(r.run.installs[0].target, "python3.12 x86_64");
        assert_eq!(
            r.run.installs[0].wheels[0].tag,
            "py3-none-manylinux_2_34_x86_64"
        );
    }
    for err in refused(
        "toonew==1.0\n",
        "",
        "`toonew` (==1.0) for python3.12 x86_64",
    ) {
        assert!(err.contains("manylinux_2_34_x86_64"), "{err}");
        assert!(err.contains("hint: pin a version of toonew"), "{err}");
    }
}

/// Packs with each installer that must fail naming `what` ("no wheel of …")
/// and write nothing; their error output.
fn refused(requirements: &str, pack_keys: &str, what: &str) -> Vec<String> {
    INSTALLERS
        .iter()
        .map(|installer| {
            let c = Case::new(installer, requirements, pack_keys);
            let err = c.pack_fails(installer);
            assert!(
                err.contains(&format!("no wheel of {what}")),
                "{installer}: {err}"
            );
            // No half install is left looking finished.
            let pip = c.sample.path(".artifact-cache/pip");
            for e in std::fs::read_dir(&pip).into_iter().flatten().flatten() {
                assert!(!e.path().join("complete").exists());
            }
            err
        })
        .collect()
}

#[test]
fn python3_11_refuses_manylinux_2_34() {
    refused(
        "glibc234==1.0\n",
        "runtime = \"python3.11\"",
        "`glibc234` (==1.0) for python3.11 x86_64",
    );
}

#[test]
fn a_wheel_only_pip_can_ask_for_is_installed_by_pip_in_auto_mode() {
    // uv cannot target glibc 2.26 (python3.11's): asked for 2.17, it finds no
    // wheel of a package that ships only manylinux_2_24; pip takes it.
    for installer in INSTALLERS {
        let c = Case::new(installer, "glibc224==1.0\n", "runtime = \"python3.11\"");
        let r = c.pack();
        let install = &r.run.installs[0];
        assert_eq!(install.installer, "pip", "{installer}: {install:?}");
        assert_eq!(install.wheels[0].tag, "py3-none-manylinux_2_24_x86_64");
    }
    // Asked for uv by name, there is no second try.
    let c = Case::new(
        "uv",
        "glibc224==1.0\n",
        "runtime = \"python3.11\"\ninstaller = \"uv\"",
    );
    let err = c.pack_fails("uv");
    assert!(
        err.contains("no wheel of `glibc224` (==1.0) for python3.11 x86_64"),
        "{err}"
    );
    assert!(err.contains("uv said"), "{err}");
}

#[test]
fn a_package_that_ships_only_source_fails_naming_it_and_writes_nothing() {
    let errs = refused(
        "purepkg==1.0\nsdistonly==1.0\n",
        "",
        "`sdistonly` (==1.0) for python3.12 x86_64",
    );
    for err in errs {
        assert!(err.contains("Lambda-like container"), "{err}");
    }
}

#[test]
fn uv_and_pip_install_the_same_files() {
    let reqs = "purepkg==1.0\nnative==1.0\nglibc234==1.0\n";
    let packed: Vec<(Vec<String>, Vec<u8>)> = INSTALLERS
        .iter()
        .map(|i| {
            let c = Case::new(i, reqs, "");
            let r = c.pack();
            assert_eq!(r.run.installs[0].installer, *i);
            let record = c.read("api-handler.zip", "purepkg-1.0.dist-info/RECORD");
            assert!(record.contains("purepkg/__init__.py,"), "{record}");
            for note in ["uv_cache.json", "INSTALLER", "REQUESTED", "direct_url.json"] {
                assert!(!record.contains(note), "{i}: {note} in {record}");
            }
            let mut n = c.zip_names("api-handler.zip");
            n.sort();
            let bytes = std::fs::read(c.sample.path("build/lambda/api-handler.zip")).unwrap();
            (n, bytes)
        })
        .collect();
    let names = &packed[0].0;
    assert!(names.iter().any(|n| n == "native/__init__.py"));
    assert!(!names.iter().any(|n| n.ends_with("uv_cache.json")
        || n == ".lock"
        || n.ends_with("/INSTALLER")
        || n.ends_with("/REQUESTED")));
    assert_eq!(packed[0].0, packed[1].0);
    // Byte for byte: the same CodeSha256 whichever installer ran.
    assert!(
        packed[0].1 == packed[1].1,
        "the zips differ between uv and pip"
    );
}

#[test]
fn a_cache_hit_runs_no_installer() {
    for installer in INSTALLERS {
        let c = Case::new(installer, "purepkg==1.0\n", "");
        let first = c.pack();
        assert_eq!(c.installs_logged(), 1, "{installer}");
        assert!(!first.run.installs[0].cached);
        let second = c.pack();
        assert_eq!(
            c.installs_logged(),
            1,
            "{installer}: the installer ran again"
        );
        let install = &second.run.installs[0];
        assert!(install.cached);
        assert_eq!(install.wheels, first.run.installs[0].wheels);
        assert!(second.run.written.is_empty());
        // Another target is another install.
        c.sample.edit("artifact.toml", |t| {
            t.replace("[pack]\n", "[pack]\narchitecture = \"arm64\"\n")
        });
        let third = c.pack();
        assert_eq!(c.installs_logged(), 2, "{installer}");
        assert_eq!(third.run.installs[0].target, "python3.12 arm64");
    }
}

#[test]
fn identical_requirement_sets_are_installed_once_and_functions_add_their_own() {
    let c = Case::new("uv", "purepkg==1.0\n", "");
    // Two functions with requirements of their own: the same set twice (in
    // two files), plus the shared requirements.
    std::fs::write(
        c.sample.path("lambda/poller/requirements.txt"),
        "native==1.0\n",
    )
    .unwrap();
    std::fs::write(
        c.sample.path("lambda/finder-requirements.txt"),
        "native==1.0\n",
    )
    .unwrap();
    c.sample.edit("artifact.toml", |t| {
        t.replace(
            "[functions.execution-poller]\n",
            "[functions.execution-poller]\nrequirements = \"lambda/poller/requirements.txt\"\n",
        )
        .replace(
            "[functions.execution-finder]\n",
            "[functions.execution-finder]\nrequirements = \"lambda/finder-requirements.txt\"\ndependencies = false\n",
        )
    });
    let r = c.pack();
    assert_eq!(r.run.installs.len(), 2, "{:?}", r.run.installs);
    assert_eq!(c.installs_logged(), 2);
    let native = r
        .run
        .installs
        .iter()
        .find(|i| i.wheels.iter().any(|w| w.name == "native"))
        .unwrap();
    assert_eq!(native.used_by, ["execution-finder", "execution-poller"]);
    let poller = c.zip_names("execution-poller.zip");
    assert!(poller.iter().any(|n| n == "native/__init__.py"));
    assert!(poller.iter().any(|n| n == "purepkg/__init__.py"));
    let finder = c.zip_names("execution-finder.zip");
    assert!(finder.iter().any(|n| n == "native/__init__.py"));
    assert!(!finder.iter().any(|n| n.starts_with("purepkg")));
    let api = c.zip_names("api-handler.zip");
    assert!(!api.iter().any(|n| n.starts_with("native")));
}

#[test]
fn requirements_with_hashes_keep_working() {
    let wheel = wheelhouse().join("purepkg-1.0-py3-none-any.whl");
    let sha = {
        use sha2::Digest;
        let bytes = std::fs::read(&wheel).unwrap();
        artifact::util::hex(&sha2::Sha256::digest(&bytes))
    };
    for installer in INSTALLERS {
        let c = Case::new(
            installer,
            &format!("purepkg==1.0 --hash=sha256:{sha}\n"),
            "",
        );
        let r = c.pack();
        assert_eq!(r.run.installs[0].wheels[0].name, "purepkg", "{installer}");
        let bad = Case::new(
            installer,
            &format!("purepkg==1.0 --hash=sha256:{}\n", "0".repeat(64)),
            "",
        );
        let err = assert_failure(&bad.run(&["pack"]));
        assert!(err.to_lowercase().contains("hash"), "{installer}: {err}");
    }
}

#[test]
fn the_runtime_comes_from_the_template_and_a_mismatch_is_a_validate_error() {
    let c = Case::new("uv", "purepkg==1.0\n", "");
    c.sample.edit("cfn/master-template.yaml", |t| {
        t.replace("Default: python3.12", "Default: python3.13")
    });
    let r = c.pack();
    assert_eq!(r.run.installs[0].target, "python3.13 x86_64");
    assert_success(&c.run(&["validate", "--offline"]));

    c.sample.edit("artifact.toml", |t| {
        t.replace("[pack]\n", "[pack]\nruntime = \"python3.12\"\n")
            .replace(
                "[functions.api-handler]\n",
                "[functions.api-handler]\narchitecture = \"arm64\"\n",
            )
    });
    let out = c.run(&["validate", "--offline"]);
    let err = assert_failure(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{err}");
    assert!(
        all.contains("pack.runtime is python3.12 but cfn/master-template.yaml: ApiHandlerFunction has Runtime python3.13"),
        "{all}"
    );
    assert!(
        all.contains("functions.api-handler.architecture is arm64 but cfn/master-template.yaml: ApiHandlerFunction has Architectures [x86_64] (Lambda's default)"),
        "{all}"
    );
}

#[test]
fn each_zip_has_an_sbom_of_its_wheels_and_files_the_same_bytes_every_time() {
    let c = Case::new("uv", "purepkg==1.0\nnative==1.0\n", "");
    c.pack();
    let path = c.sample.path("build/lambda/api-handler.cdx.json");
    let first = std::fs::read(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.5");
    let components = doc["components"].as_array().unwrap();
    let pure = components
        .iter()
        .find(|c| c["purl"] == "pkg:pypi/purepkg@1.0")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(pure["version"], "1.0");
    // The files RECORD lists, with the BLAKE3 of the bytes in the zip.
    let init = pure["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "purepkg/__init__.py")
        .unwrap();
    let bytes = {
        let text = c.read("api-handler.zip", "purepkg/__init__.py");
        artifact::util::hex(blake3::hash(text.as_bytes()).as_bytes())
    };
    assert_eq!(init["hashes"][0]["alg"], "BLAKE3");
    assert_eq!(init["hashes"][0]["content"], bytes.as_str());
    crate::pack::assert_valid_cyclonedx(&path);
    // The function's own files, by BLAKE3.
    assert!(components
        .iter()
        .any(|c| c["name"] == "index.py" && c["hashes"][0]["alg"] == "BLAKE3"));
    // The manifest names it; a pack from scratch writes the same bytes.
    let manifest = std::fs::read_to_string(c.sample.path("build/lambda/manifest.json")).unwrap();
    assert!(manifest.contains("\"sbom\": \"api-handler.cdx.json\""));
    std::fs::remove_dir_all(c.sample.path("build")).unwrap();
    std::fs::remove_dir_all(c.sample.path(".artifact-cache")).unwrap();
    c.pack();
    assert_eq!(std::fs::read(&path).unwrap(), first);
}

#[test]
fn a_version_that_does_not_exist_is_named_with_the_newest_that_does() {
    for installer in INSTALLERS {
        let c = Case::new(installer, "purepkg>=9.0\n", "");
        let err = c.pack_fails(installer);
        assert!(
            err.contains("no version of `purepkg` matching >=9.0 exists for python3.12 x86_64 (the newest there is 1.0)"),
            "{installer}: {err}"
        );
        assert!(
            err.contains("hint: require a version that exists, e.g. purepkg==1.0"),
            "{installer}: {err}"
        );
        assert!(!err.contains("wheel"), "{installer}: {err}");
    }
}
