//! The detectors: one automaton finds where to look, exact checks decide.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::shapes::{
    entropy, is_absolute_path, is_dotted_name, is_placeholder, is_snake_case, is_timestamp,
    is_uuid, python_docstring_lines,
};
use super::{mask, Hit, Kind};

/// What each pattern of the automaton starts.
#[derive(Clone, Copy)]
enum Look {
    Aws,
    Pem,
    Github,
    GithubPat,
    Gitlab,
    Slack,
    SlackHook,
    Stripe,
    Google,
    Npm,
    Sendgrid,
    Jwt,
    /// `://`: a connection URL, checked for its scheme and a password.
    Url,
    /// `_PASS` / `_pass` ending a name (`DB_PASS`): an assignment.
    PassName,
    Name,
}

/// What the scan looks for, case as written: the searcher then runs at
/// memory speed (SIMD), where a case-insensitive automaton is several times
/// slower. Names come in the casings code uses (`token`, `Token`, `TOKEN`,
/// and camel case, which holds the capitalized form).
const PATTERNS: &[(&str, Look)] = &[
    ("AKIA", Look::Aws),
    ("ASIA", Look::Aws),
    ("ABIA", Look::Aws),
    ("ACCA", Look::Aws),
    ("PRIVATE KEY", Look::Pem),
    ("ghp_", Look::Github),
    ("gho_", Look::Github),
    ("ghu_", Look::Github),
    ("ghs_", Look::Github),
    ("ghr_", Look::Github),
    ("github_pat_", Look::GithubPat),
    ("glpat-", Look::Gitlab),
    ("xoxb-", Look::Slack),
    ("xoxp-", Look::Slack),
    ("xoxa-", Look::Slack),
    ("xoxr-", Look::Slack),
    ("xoxs-", Look::Slack),
    ("hooks.slack.com/services/", Look::SlackHook),
    ("sk_live_", Look::Stripe),
    ("rk_live_", Look::Stripe),
    ("AIza", Look::Google),
    ("npm_", Look::Npm),
    ("SG.", Look::Sendgrid),
    ("eyJ", Look::Jwt),
    ("://", Look::Url),
    ("_PASS", Look::PassName),
    ("_pass", Look::PassName),
    ("password", Look::Name),
    ("Password", Look::Name),
    ("PASSWORD", Look::Name),
    ("passwd", Look::Name),
    ("Passwd", Look::Name),
    ("PASSWD", Look::Name),
    ("secret", Look::Name),
    ("Secret", Look::Name),
    ("SECRET", Look::Name),
    ("token", Look::Name),
    ("Token", Look::Name),
    ("TOKEN", Look::Name),
    ("credential", Look::Name),
    ("Credential", Look::Name),
    ("CREDENTIAL", Look::Name),
    ("api_key", Look::Name),
    ("API_KEY", Look::Name),
    ("apiKey", Look::Name),
    ("ApiKey", Look::Name),
    ("apikey", Look::Name),
    ("APIKEY", Look::Name),
    ("api-key", Look::Name),
    ("Api-Key", Look::Name),
    ("API-KEY", Look::Name),
    ("private_key", Look::Name),
    ("PRIVATE_KEY", Look::Name),
    ("privateKey", Look::Name),
    ("PrivateKey", Look::Name),
    ("access_key", Look::Name),
    ("ACCESS_KEY", Look::Name),
    ("accessKey", Look::Name),
    ("AccessKey", Look::Name),
];

/// Values AWS documentation uses as examples: the access key pair, the
/// password of IAM's ChangePassword example (in botocore's examples), and
/// the secret of Powertools' parameters example (in its docstrings).
const AWS_DOC_VALUES: [&str; 4] = [
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "3s0K_;xh4~8XXI",
    "supers3cr3tllam@passw0rd",
];

/// What makes a `…token` name an API's paging or request token, not a secret.
const NOT_SECRET_TOKENS: &[&str] = &[
    "next",
    "continuation",
    "pagination",
    "paging",
    "page",
    "starting",
    "client",
    "change",
    "request",
    "idempotency",
    "sync",
    "output",
    "input",
];

/// Base64 characters a private key's body has at least.
const MIN_KEY_BODY: usize = 120;

/// Lines either side of an access key id searched for its secret.
const NEARBY_LINES: usize = 3;

/// The searcher: SIMD (Teddy) where the CPU has it, else an automaton.
enum Finder {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

fn finder() -> &'static Finder {
    static FINDER: OnceLock<Finder> = OnceLock::new();
    FINDER.get_or_init(|| {
        let patterns = PATTERNS.iter().map(|(p, _)| p);
        match aho_corasick::packed::Config::new()
            .builder()
            .extend(patterns.clone())
            .build()
        {
            Some(s) => Finder::Packed(s),
            None => Finder::Automaton(
                AhoCorasick::new(patterns)
                    .unwrap_or_else(|e| unreachable!("fixed patterns build: {e}")),
            ),
        }
    })
}

/// Every match in `bytes`: (start, end, pattern index).
fn find_all(bytes: &[u8]) -> Vec<(usize, usize, usize)> {
    match finder() {
        Finder::Packed(s) => s
            .find_iter(bytes)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect(),
        Finder::Automaton(ac) => ac
            .find_iter(bytes)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect(),
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the byte before `at` ends no word.
fn starts_word(bytes: &[u8], at: usize) -> bool {
    at == 0 || !is_word(bytes[at - 1])
}

/// The length of the run at `at` of bytes `ok` accepts.
fn run(bytes: &[u8], at: usize, ok: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(at..)
        .map_or(0, |rest| rest.iter().take_while(|b| ok(**b)).count())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    memchr::memchr_iter(b'\n', &bytes[..at]).count() + 1
}

/// How much of a file tells binary from text.
pub(super) const BINARY_PROBE: usize = 8192;

/// A NUL in the first [`BINARY_PROBE`] bytes: a binary file, not scanned.
pub(super) fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE)].contains(&0)
}

/// Everything of a file's name the rules look at. Two files with the same
/// bytes and the same traits get the same findings, so the memo of clean
/// contents is keyed by both: bytes first seen clean as `notes.txt` are
/// scanned again as `.env.production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct NameTraits {
    env_file: bool,
    config_like: bool,
    bundle: bool,
    min_name: bool,
    python: bool,
    shell: bool,
}

impl NameTraits {
    pub(super) fn of(name: &str) -> NameTraits {
        let lower = name.to_ascii_lowercase();
        let base = lower.rsplit('/').next().unwrap_or(&lower);
        let env_file = base == ".env"
            || base.strip_prefix(".env.").is_some_and(|rest| {
                !["example", "sample", "template", "dist", "defaults"].contains(&rest)
            });
        NameTraits {
            env_file,
            config_like: CONFIG_EXTENSIONS.iter().any(|e| lower.ends_with(e)),
            bundle: [".js", ".mjs", ".cjs", ".css"]
                .iter()
                .any(|e| lower.ends_with(e)),
            min_name: lower.contains(".min."),
            python: name.ends_with(".py"),
            shell: [".sh", ".bash", ".zsh", ".envrc"]
                .iter()
                .any(|e| lower.ends_with(e))
                || base == ".envrc",
        }
    }

    /// The traits as one byte, for the memo's key.
    pub(super) fn bits(self) -> u8 {
        [
            self.env_file,
            self.config_like,
            self.bundle,
            self.min_name,
            self.python,
            self.shell,
        ]
        .iter()
        .enumerate()
        .fold(0, |acc, (i, on)| acc | (u8::from(*on) << i))
    }
}

/// Everything secret-looking in one file's bytes. `name` is the file's name
/// (a `.env` file is a finding by itself).
pub fn scan_bytes(name: &str, bytes: &[u8]) -> Vec<Hit> {
    if is_binary(bytes) {
        return Vec::new();
    }
    let traits = NameTraits::of(name);
    let mut hits = Vec::new();
    if let Some(h) = env_file(traits, bytes) {
        hits.push(h);
    }
    let config_like = traits.config_like || traits.shell;
    let minified = is_minified_bundle(traits, bytes);
    for (s, e, pattern) in find_all(bytes) {
        let found = match PATTERNS[pattern].1 {
            Look::Aws => aws_key(bytes, s),
            Look::Pem => private_key(bytes, s, e),
            Look::Github => token(bytes, s, e, Kind::GithubToken, 36, 36, is_alnum),
            Look::GithubPat => token(bytes, s, e, Kind::GithubToken, 80, 90, is_word),
            Look::Gitlab => token(bytes, s, e, Kind::GitlabToken, 20, 64, |b| {
                is_word(b) || b == b'-'
            }),
            Look::Slack => slack_token(bytes, s, e),
            Look::SlackHook => slack_hook(bytes, s, e),
            Look::Stripe => providers::stripe(bytes, s, e),
            Look::Google => providers::google(bytes, s, e),
            Look::Npm => providers::npm(bytes, s, e),
            Look::Sendgrid => providers::sendgrid(bytes, s, e),
            Look::Jwt => providers::jwt(bytes, s, e),
            Look::Url => providers::connection_url(bytes, s, e),
            Look::PassName if ends_name(bytes, e) => assignment(bytes, s, e, config_like),
            Look::PassName => None,
            Look::Name => assignment(bytes, s, e, config_like)
                .filter(|(_, _, v)| !(minified && is_identifier_shaped(v))),
        };
        if let Some((at, kind, secret)) = found {
            let hit = Hit {
                line: line_of(bytes, at),
                kind,
                masked: mask(&secret),
            };
            if !hits.contains(&hit) {
                hits.push(hit);
            }
        }
    }
    // A token found by its own shape is not reported again as an assignment.
    let specific: Vec<usize> = hits
        .iter()
        .filter(|h| h.kind != Kind::Assignment)
        .map(|h| h.line)
        .collect();
    hits.retain(|h| h.kind != Kind::Assignment || !specific.contains(&h.line));
    // A name = value inside a Python docstring is an example (RFC tokens in
    // OAuth libraries' docstrings); token shapes count there too.
    if traits.python && hits.iter().any(|h| h.kind == Kind::Assignment) {
        let docs = python_docstring_lines(bytes);
        hits.retain(|h| {
            h.kind != Kind::Assignment || !docs.iter().any(|(a, b)| (*a..=*b).contains(&h.line))
        });
    }
    hits
}

type Found = Option<(usize, Kind, String)>;

/// Whether `_PASS` (ending at `e`) is a password's name: it ends the name
/// (`DB_PASS`) or goes on as `…WORD` / `…WD` (the match hides the
/// `PASSWORD` inside `DB_PASSWORD`), not `DB_PASSAGE`.
fn ends_name(bytes: &[u8], e: usize) -> bool {
    let n = run(bytes, e, |b| is_word(b) || b == b'-' || b == b'.');
    let rest = text(&bytes[e..e + n]).to_ascii_lowercase();
    rest.is_empty() || rest.starts_with("word") || rest.starts_with("wd")
}

fn aws_key(bytes: &[u8], s: usize) -> Found {
    let n = run(bytes, s, |b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if n != 20 || !starts_word(bytes, s) || !bytes[s..s + 4].iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let id = text(&bytes[s..s + 20]);
    if id.ends_with("EXAMPLE") || AWS_DOC_VALUES.contains(&id.as_str()) {
        return None;
    }
    nearby_secret(bytes, s).then_some((s, Kind::AwsAccessKey, id))
}

/// Whether a 40-character secret access key stands within a few lines of `at`.
fn nearby_secret(bytes: &[u8], at: usize) -> bool {
    let mut start = at;
    for _ in 0..=NEARBY_LINES {
        start = memchr::memrchr(b'\n', &bytes[..start]).unwrap_or(0);
    }
    let mut end = at;
    for _ in 0..=NEARBY_LINES {
        end = memchr::memchr(b'\n', &bytes[end.min(bytes.len())..])
            .map_or(bytes.len(), |i| end + i + 1);
    }
    let key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'+';
    let window = &bytes[start..end.min(bytes.len())];
    let mut i = 0;
    while i < window.len() {
        let n = run(window, i, key_byte);
        if n == 0 {
            i += 1;
            continue;
        }
        let after = window.get(i + n).copied();
        if n == 40 && after != Some(b'=') {
            let candidate = &window[i..i + n];
            let secret = text(candidate);
            if candidate.iter().any(u8::is_ascii_lowercase)
                && candidate.iter().any(u8::is_ascii_uppercase)
                && candidate.iter().any(u8::is_ascii_digit)
                && !secret.contains("EXAMPLE")
                && !AWS_DOC_VALUES.contains(&secret.as_str())
            {
                return true;
            }
        }
        i += n;
    }
    false
}

fn private_key(bytes: &[u8], s: usize, e: usize) -> Found {
    // `-----BEGIN <kind> PRIVATE KEY[ BLOCK]-----`, read back from "PRIVATE KEY".
    let line_start = s.saturating_sub(40);
    let begin = memchr::memmem::rfind(&bytes[line_start..s], b"-----BEGIN ")? + line_start;
    let kind = &bytes[begin + 11..s];
    if kind.iter().any(|b| !(b.is_ascii_uppercase() || *b == b' ')) {
        return None;
    }
    let mut end = e;
    if bytes[end..].starts_with(b" BLOCK") {
        end += 6;
    }
    if !bytes[end..].starts_with(b"-----") {
        return None;
    }
    let label = text(&bytes[begin + 11..end]);
    // The body: base64 after the header, across line breaks, `\n` escapes
    // and string quotes. A placeholder (`...`) has none.
    let body_start = end + 5;
    let body = &bytes[body_start..bytes.len().min(body_start + 400)];
    let mut n = 0;
    let mut i = 0;
    while i < body.len() && n < MIN_KEY_BODY {
        match body[i] {
            b'\\' if body.get(i + 1) == Some(&b'n') => i += 2,
            b'\n' | b'\r' | b' ' | b'\t' | b'"' | b'\'' => i += 1,
            b if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' => {
                n += 1;
                i += 1;
            }
            _ => break,
        }
    }
    // The shortest real key body (an EC P-256 key) is over 160 characters;
    // a truncated one in documentation is shorter.
    (n >= MIN_KEY_BODY).then(|| (begin, Kind::PrivateKey, format!("-----BEGIN {label}-----")))
}

fn token(
    bytes: &[u8],
    s: usize,
    e: usize,
    kind: Kind,
    min: usize,
    max: usize,
    ok: impl Fn(u8) -> bool,
) -> Found {
    if !starts_word(bytes, s) || !bytes[s..e].iter().all(|b| !b.is_ascii_uppercase()) {
        return None;
    }
    let n = run(bytes, e, ok);
    let value = text(&bytes[s..e + n]);
    ((min..=max).contains(&n) && !is_placeholder(&value)).then_some((s, kind, value))
}

fn slack_token(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) || bytes[s..e].iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let digits = run(bytes, e, |b| b.is_ascii_digit());
    if digits < 8 || bytes.get(e + digits) != Some(&b'-') {
        return None;
    }
    let tail = run(bytes, e + digits + 1, |b| is_alnum(b) || b == b'-');
    (tail >= 8).then(|| (s, Kind::SlackToken, text(&bytes[s..e + digits + 1 + tail])))
}

fn slack_hook(bytes: &[u8], s: usize, e: usize) -> Found {
    let upper = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let mut at = e;
    for prefix in [b'T', b'B'] {
        if bytes.get(at) != Some(&prefix) {
            return None;
        }
        let n = run(bytes, at, upper);
        if n < 9 || bytes.get(at + n) != Some(&b'/') {
            return None;
        }
        at += n + 1;
    }
    let n = run(bytes, at, is_alnum);
    (n >= 20).then(|| (s, Kind::SlackWebhook, text(&bytes[at..at + n])))
}

/// Files whose values are often written without quotes.
const CONFIG_EXTENSIONS: &[&str] = &[
    ".env",
    ".yaml",
    ".yml",
    ".ini",
    ".cfg",
    ".conf",
    ".properties",
    ".toml",
];

/// A name holding `password`, `secret`, `token`… given a random-looking
/// value: `name = "value"`, `"name": "value"`, `name: value` in config files.
fn assignment(bytes: &[u8], s: usize, e: usize, unquoted: bool) -> Found {
    let name_byte = |b: u8| is_word(b) || b == b'-' || b == b'.';
    let start = s - bytes[..s]
        .iter()
        .rev()
        .take_while(|b| name_byte(**b))
        .count();
    let mut i = e + run(bytes, e, name_byte);
    let name = text(&bytes[start..i]).to_ascii_lowercase();
    if name.contains("token") && NOT_SECRET_TOKENS.iter().any(|t| name.contains(t)) {
        return None;
    }
    if matches!(bytes.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    i += run(bytes, i, |b| b == b' ' || b == b'\t');
    let op = run(bytes, i, |b| b == b'=' || b == b':' || b == b'>');
    if op == 0 || op > 2 {
        return None;
    }
    i += op;
    i += run(bytes, i, |b| b == b' ' || b == b'\t');
    let value = match bytes.get(i) {
        Some(q @ (b'"' | b'\'' | b'`')) => {
            let n = run(bytes, i + 1, |b| b != *q && b != b'\n');
            if bytes.get(i + 1 + n) != Some(q) {
                return None;
            }
            &bytes[i + 1..i + 1 + n]
        }
        Some(_) if unquoted => {
            let n = run(bytes, i, |b| {
                b.is_ascii_graphic() && !matches!(b, b'#' | b',' | b';' | b'"' | b'\'')
            });
            &bytes[i..i + n]
        }
        _ => return None,
    };
    let value = text(value);
    let random = value.len() >= 12
        && value.len() <= 256
        && !value.contains(|c: char| c.is_whitespace() || "[](){}".contains(c))
        && !is_uuid(&value)
        && !is_timestamp(&value)
        && !value.contains("://")
        && !value.starts_with("urn:")
        && !value.starts_with("arn:")
        && !is_dotted_name(&value)
        && !is_snake_case(&value)
        && !is_absolute_path(&value)
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
        && !is_placeholder(&value)
        && !AWS_DOC_VALUES.contains(&value.as_str())
        && entropy(&value) >= 3.5;
    random.then_some((s, Kind::Assignment, value))
}

/// A minified script or style sheet (a `.min.` name, or a line over 500
/// bytes): a build's output, whose values under `token` names are design
/// tokens and class names, not secrets.
fn is_minified_bundle(traits: NameTraits, bytes: &[u8]) -> bool {
    traits.bundle && (traits.min_name || bytes.split(|b| *b == b'\n').any(|l| l.len() > 500))
}

/// A CSS class or design-token name: parts of letters and digits joined by
/// `_` or `-`, one of them a lower-case word (`awsui_token_1a2b3c_abc12`,
/// `awsui_in-inline-token_1wx3x_123`).
fn is_identifier_shaped(value: &str) -> bool {
    let parts: Vec<&str> = value.split(['_', '-']).collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts
            .iter()
            .any(|p| p.len() >= 3 && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// A `.env` file (not `.env.example` and the like) with at least one value.
fn env_file(traits: NameTraits, bytes: &[u8]) -> Option<Hit> {
    if !traits.env_file {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    text.lines().enumerate().find_map(|(i, l)| {
        let l = l.trim();
        let l = l.strip_prefix("export ").unwrap_or(l);
        let (k, v) = l.split_once('=')?;
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        (!l.starts_with('#') && !k.trim().is_empty() && !v.is_empty() && !is_placeholder(v)).then(
            || Hit {
                line: i + 1,
                kind: Kind::EnvFile,
                masked: format!("{}={}", k.trim(), mask(v)),
            },
        )
    })
}

mod providers;

#[cfg(test)]
mod tests;
