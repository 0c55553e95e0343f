//! Shapes of values that are not secrets (placeholders, ids, dates, paths,
//! names), and where Python keeps its examples (docstrings).

/// Text in a value that marks it as a placeholder, lower-cased.
const PLACEHOLDERS: &[&str] = &[
    "example",
    "xxxx",
    "****",
    "changeme",
    "placeholder",
    "your",
    "dummy",
    "sample",
    "redacted",
    "password",
    "secret",
    "<",
    ">",
    "${",
    "{{",
    "%s",
    "%(",
    "{}",
    "$(",
    "...",
];

/// Shannon entropy, bits per character.
pub(super) fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// `8-4-4-4-12` hex digits: request tokens and ids (ClientToken, ChangeToken), not secrets.
pub(super) fn is_uuid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `google_oauth2_credentials`: a lower-case identifier of words, not a secret.
pub(super) fn is_snake_case(value: &str) -> bool {
    value.contains('_')
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value.split('_').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// `okta.api.keys_api`: a module or attribute path, not a secret.
pub(super) fn is_dotted_name(value: &str) -> bool {
    value.contains('.')
        && value.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `/metadata/identity/oauth2/token`: a URL path, not a secret (base64 has
/// no `/`-separated words without `+` or `=`).
pub(super) fn is_absolute_path(value: &str) -> bool {
    value.starts_with('/')
        && value.matches('/').count() >= 3
        && !value.contains(['+', '='])
        && value[1..].split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
}

/// `2016-09-08T21:47:36Z` and the like: dates, not secrets.
pub(super) fn is_timestamp(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

pub(super) fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDERS.iter().any(|p| lower.contains(p))
}

/// The line ranges (1-based, inclusive) of Python docstrings: triple-quoted
/// strings that open a line, as a statement of their own. A triple-quoted
/// string assigned or passed (`KEY = \"\"\"…`) is not one.
pub(super) fn python_docstring_lines(bytes: &[u8]) -> Vec<(usize, usize)> {
    let text = String::from_utf8_lossy(bytes);
    let mut ranges = Vec::new();
    // The open string's delimiter, whether it is a docstring, and its first line.
    let mut open: Option<(&str, bool, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut rest = line;
        loop {
            match open {
                Some((delim, doc, start)) => match rest.find(delim) {
                    Some(at) => {
                        if doc {
                            ranges.push((start, n));
                        }
                        open = None;
                        rest = &rest[at + 3..];
                    }
                    None => break,
                },
                None => {
                    let found = ["\"\"\"", "'''"]
                        .iter()
                        .filter_map(|d| rest.find(d).map(|at| (at, *d)))
                        .min();
                    let Some((at, delim)) = found else { break };
                    let before = rest[..at].trim_start();
                    let doc =
                        rest.len() == line.len() && before.chars().all(|c| "rRbBuUfF".contains(c));
                    open = Some((delim, doc, n));
                    rest = &rest[at + 3..];
                }
            }
        }
    }
    ranges
}
