//! `[sync]` (header rules, concurrency, multipart sizes), `[scan]` (allow
//! entries) and `[provenance]` (the signing key), checked.

use super::error::{check_globs, invalid, Problem};
use super::raw::{RawScan, RawSync};
use super::settings::{HeaderRule, ScanAllow, ScanSettings, SyncSettings, S3_MIN_PART};

pub(crate) fn sync(raw: RawSync) -> Result<SyncSettings, Problem> {
    let d = SyncSettings::default();
    let mut rules = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let key = format!("sync.rules[{i}].match");
        if r.patterns.is_empty() {
            return Err(invalid(
                &key,
                "the list is empty".into(),
                "give at least one pattern, e.g. [\"*.html\"] or [\"**\"]",
            ));
        }
        check_globs(&r.patterns).map_err(|(m, h)| invalid(&key, m, h))?;
        for (k, v) in [
            ("cache_control", &r.cache_control),
            ("content_type", &r.content_type),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(|c| c.is_control() || !c.is_ascii()) {
                    return Err(invalid(
                        &format!("sync.rules[{i}].{k}"),
                        format!("{v:?} is not a valid header value"),
                        "use printable ASCII, e.g. \"public, max-age=31536000, immutable\"",
                    ));
                }
            }
        }
        rules.push(HeaderRule {
            patterns: r.patterns,
            cache_control: r.cache_control,
            content_type: r.content_type,
        });
    }
    let concurrency = raw.concurrency.unwrap_or(d.concurrency);
    if concurrency == 0 || concurrency > 256 {
        return Err(invalid(
            "sync.concurrency",
            format!("{concurrency} is out of range"),
            "use 1 to 256 requests in flight (default 16)",
        ));
    }
    let part_size = raw.part_size.unwrap_or(d.part_size);
    if !(S3_MIN_PART..=5 * 1024 * 1024 * 1024).contains(&part_size) {
        return Err(invalid(
            "sync.part_size",
            format!("{part_size} bytes is outside S3's part sizes"),
            "use 5 MiB (5242880) to 5 GiB",
        ));
    }
    let multipart_threshold = raw.multipart_threshold.unwrap_or(d.multipart_threshold);
    if multipart_threshold < S3_MIN_PART {
        return Err(invalid(
            "sync.multipart_threshold",
            format!("{multipart_threshold} bytes is below S3's 5 MiB minimum part"),
            "use at least 5242880",
        ));
    }
    Ok(SyncSettings {
        rules,
        concurrency,
        multipart_threshold,
        part_size,
    })
}

/// `[scan]`: allow entries name a path and a SHA-256 in hex.
pub(crate) fn scan(raw: RawScan) -> Result<ScanSettings, Problem> {
    let mut allow = Vec::new();
    for (i, a) in raw.allow.into_iter().enumerate() {
        let key = format!("scan.allow[{i}]");
        let sha = a.sha256.as_deref().map(str::to_ascii_lowercase);
        if let Some(sha) = sha
            .as_deref()
            .filter(|s| s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(
                &format!("{key}.sha256"),
                format!("{sha:?} is not a SHA-256 in hex"),
                "copy the sha256 the scan printed for the file (64 hex digits), or run sha256sum on it",
            ));
        }
        if let Some(rule) = a
            .rule
            .as_deref()
            .filter(|r| !crate::model::SCAN_RULES.contains(r))
        {
            return Err(invalid(
                &format!("{key}.rule"),
                format!("{rule:?} is not a rule of the scan"),
                format!("use one of {}", crate::model::SCAN_RULES.join(", ")),
            ));
        }
        if sha.is_none() && a.rule.is_none() {
            return Err(invalid(
                &key,
                "the entry names neither contents (sha256) nor a rule".into(),
                "add sha256 = \"…\" (this version of the file) or rule = \"generic-secret\" (that rule, whatever the contents)",
            ));
        }
        let path = a.path.trim_start_matches("./").to_string();
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err(invalid(
                &format!("{key}.path"),
                format!("{:?} is not a path inside the project", a.path),
                "give the path relative to artifact.toml's folder, as the scan printed it",
            ));
        }
        check_globs(std::slice::from_ref(&path))
            .map_err(|(m, h)| invalid(&format!("{key}.path"), m, h))?;
        allow.push(ScanAllow {
            path,
            sha256: sha,
            rule: a.rule,
        });
    }
    Ok(ScanSettings {
        enabled: raw.enabled.unwrap_or(true),
        allow,
    })
}

/// `[provenance] kms_key`: a key id, key ARN, alias name or alias ARN.
pub(crate) fn kms_key(raw: Option<String>) -> Result<Option<String>, Problem> {
    let Some(key) = raw else { return Ok(None) };
    let shaped = !key.is_empty()
        && key.len() <= 2048
        && key.bytes().all(|b| b.is_ascii_graphic())
        && (key.starts_with("alias/")
            || key.starts_with("arn:")
            || key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
    if !shaped {
        return Err(invalid(
            "provenance.kms_key",
            format!("{key:?} is not a KMS key id, key ARN or alias"),
            "use the key's id, its ARN, or alias/<name> of an asymmetric SIGN_VERIFY key",
        ));
    }
    Ok(Some(key))
}
