//! The floor test: every `crate::X` a file names must be on its own floor or
//! a lower one (the floors are in `lib.rs`'s documentation). It reads the
//! sources as text, so a new module without a floor, or an import that runs
//! upward, fails here with the file, the line and both floors.

use std::path::{Path, PathBuf};

/// Each top-level module and its floor.
const FLOORS: &[(&str, u8)] = &[
    ("names", 0),
    ("util", 0),
    ("poll", 0),
    ("output", 0),
    ("aws", 0),
    ("version", 0),
    ("model", 1),
    ("config", 2),
    ("template", 3),
    ("scan", 3),
    ("lambda", 3),
    ("sync", 4),
    ("pack", 4),
    ("history", 4),
    ("cfn", 5),
    ("frontend", 6),
    ("validate", 7),
    ("policy", 7),
    ("metrics", 7),
    ("rollback", 7),
    ("fanout", 7),
    ("cli", 8),
    ("commands", 8),
    ("lib", 9),
    ("main", 9),
    // This test, which reads every other file.
    ("floors", 9),
];

/// Imports between two modules of one floor that the layering allows.
const SAME_FLOOR: &[(&str, &str)] = &[
    ("pack", "sync"),
    ("history", "sync"),
    ("commands", "cli"),
    ("aws", "output"),
];

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    first
        .unwrap_or_default()
        .trim_end_matches(".rs")
        .to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A line with its comment and string literals blanked, so that only code is read.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (false, '/') if chars.peek() == Some(&'/') => break,
            (false, '"') => in_str = true,
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => in_str = false,
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    out
}

/// The top-level modules a line of code names through `crate::`, groups included.
fn crate_targets(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let name: String = item
                            .trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.push(name);
                        item.clear();
                    }
                    c => item.push(c),
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

/// Every import that breaks the floors, as `file:line: ...`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        let shown = file
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(&file)
            .display()
            .to_string();
        let Some(own) = floor(&module) else {
            out.push(format!(
                "{shown}: module `{module}` has no floor: add it to FLOORS and to lib.rs"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in crate_targets(&code_of(line)) {
                if target == module {
                    continue;
                }
                let Some(theirs) = floor(&target) else {
                    // A name the crate root re-exports (e.g. `crate::run`): floor 9.
                    if own < 9 {
                        out.push(format!(
                            "{shown}:{}: `crate::{target}` is not a module with a floor",
                            n + 1
                        ));
                    }
                    continue;
                };
                let allowed = theirs < own
                    || (theirs == own && SAME_FLOOR.contains(&(module.as_str(), target.as_str())));
                if !allowed {
                    out.push(format!(
                        "{shown}:{}: `{module}` (floor {own}) imports `{target}` (floor {theirs})",
                        n + 1
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn no_import_runs_to_a_higher_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports that break the floors:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_module_of_the_crate_has_a_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            assert!(floor(m).is_some(), "module `{m}` has no floor");
        }
    }
}

#[test]
fn an_upward_import_is_found_with_its_file_line_and_floors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("config")).unwrap();
    std::fs::write(
        src.join("config/resolve.rs"),
        "use crate::names;\n// crate::pack in a comment\nlet s = \"crate::cfn\";\nuse crate::{model::S3Url, pack::target};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("sync.rs"),
        "use crate::pack::hex;\nuse crate::history;\n",
    )
    .unwrap();
    std::fs::write(src.join("pack.rs"), "use crate::sync::S3Url;\n").unwrap();
    std::fs::write(src.join("newthing.rs"), "").unwrap();
    assert_eq!(
        violations(&src),
        [
            "src/config/resolve.rs:4: `config` (floor 2) imports `pack` (floor 4)",
            "src/newthing.rs: module `newthing` has no floor: add it to FLOORS and to lib.rs",
            "src/sync.rs:1: `sync` (floor 4) imports `pack` (floor 4)",
            "src/sync.rs:2: `sync` (floor 4) imports `history` (floor 4)",
        ]
    );
}
