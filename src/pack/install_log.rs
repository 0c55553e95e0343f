//! Reading an installer's log: what failed (a version that does not exist, a
//! package with no wheel for the target) and the lines worth showing.

/// The lines of an installer's log worth showing: the last 20, with pip's
/// list of every version (thousands of bytes on one line) shortened to its ends.
pub(super) fn trimmed_log(log: &str) -> String {
    let lines: Vec<String> = log
        .trim()
        .lines()
        .map(|l| match (l.find("(from versions: "), l.rfind(')')) {
            (Some(a), Some(b)) if b > a => {
                let list = &l[a + "(from versions: ".len()..b];
                let versions: Vec<&str> = list.split(", ").collect();
                if versions.len() > 6 {
                    let (first, last) = (
                        versions[..3].join(", "),
                        versions[versions.len() - 3..].join(", "),
                    );
                    format!(
                        "{}(from versions: {first}, …, {last}; {} in all){}",
                        &l[..a],
                        versions.len(),
                        &l[b + 1..]
                    )
                } else {
                    l.to_string()
                }
            }
            _ => l.to_string(),
        })
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A requirement no version of which matches, from the installer's log: the
/// package, the version asked for, and the newest version that has a wheel
/// for the target (pip's "from versions" list, uv's "only X<=V is
/// available"). None when versions exist and only the wheels are missing.
pub(super) fn missing_version(log: &str) -> Option<(String, String, Option<String>)> {
    for l in log.lines() {
        if let Some(rest) = l
            .split("Could not find a version that satisfies the requirement ")
            .nth(1)
        {
            let (spec, versions) = rest.split_once(" (from versions: ")?;
            let versions = versions.split(';').next()?.trim_end_matches(')');
            if versions == "none" {
                return None;
            }
            let newest = versions.split(", ").last().map(|v| v.trim().to_string());
            let (name, wanted) = split_spec(spec.trim());
            return Some((name, wanted, newest));
        }
        if let Some(rest) = l.split("Because only ").nth(1) {
            let (available, after) = rest.split_once(" is available and you require ")?;
            let newest = available
                .split("<=")
                .nth(1)
                .or_else(|| available.split("==").nth(1));
            let spec = after.split([',', ' ']).next()?;
            let (name, wanted) = split_spec(spec.trim_end_matches('.'));
            return Some((name, wanted, newest.map(str::to_string)));
        }
        if let Some(rest) = l.split("Because there is no version of ").nth(1) {
            let spec = rest.split([',', ' ']).next()?;
            let (name, wanted) = split_spec(spec);
            return Some((name, wanted, None));
        }
    }
    None
}

fn split_spec(spec: &str) -> (String, String) {
    let at = spec
        .find(|c: char| "=<>!~ ".contains(c))
        .unwrap_or(spec.len());
    (spec[..at].to_string(), spec[at..].trim().to_string())
}

/// The package (and version) an installer found no wheel of, from its log:
/// uv's "Because X==1.0 has no wheels with a matching platform tag" / "has no
/// usable wheels", pip's "No matching distribution found for X==1.0".
pub(super) fn missing_wheel(log: &str) -> Option<(String, String)> {
    let spec = log
        .lines()
        .find_map(|l| {
            let rest = &l[l.find("Because ")? + "Because ".len()..];
            let end = rest.find(" has no ")?;
            Some(rest[..end].trim_start_matches("only ").to_string())
        })
        .or_else(|| {
            log.lines().find_map(|l| {
                let rest = l.split("No matching distribution found for ").nth(1)?;
                Some(rest.trim().to_string())
            })
        })?;
    let split = spec
        .find(|c: char| "=<>!~ ".contains(c))
        .unwrap_or(spec.len());
    let (name, version) = spec.split_at(split);
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), version.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_that_does_not_exist_is_told_from_a_missing_wheel() {
        let versions: Vec<String> = (0..400)
            .map(|i| format!("1.{}.{}", i / 100, i % 100))
            .collect();
        let pip = format!(
            "ERROR: Could not find a version that satisfies the requirement botocore>=1.45.0 (from versions: {})\nERROR: No matching distribution found for botocore>=1.45.0",
            versions.join(", ")
        );
        let log = trimmed_log(&pip);
        assert!(log.len() < 300, "{log}");
        assert!(
            log.contains(
                "(from versions: 1.0.0, 1.0.1, 1.0.2, …, 1.3.97, 1.3.98, 1.3.99; 400 in all)"
            ),
            "{log}"
        );
        assert_eq!(
            missing_version(&log),
            Some(("botocore".into(), ">=1.45.0".into(), Some("1.3.99".into())))
        );
        let uv = "  × No solution found when resolving dependencies:\n  ╰─▶ Because only botocore<=1.35.99 is available and you require botocore>=1.45.0, we can conclude that your requirements are unsatisfiable.";
        assert_eq!(
            missing_version(uv),
            Some(("botocore".into(), ">=1.45.0".into(), Some("1.35.99".into())))
        );
        let none = "  ╰─▶ Because there is no version of nosuchpkg==1.0 and you require nosuchpkg==1.0, we can conclude that your requirements are unsatisfiable.";
        assert_eq!(
            missing_version(none),
            Some(("nosuchpkg".into(), "==1.0".into(), None))
        );
        // No wheel for the target at all is the other error.
        let no_wheel = "ERROR: Could not find a version that satisfies the requirement toonew==1.0 (from versions: none)";
        assert_eq!(missing_version(no_wheel), None);
        let lines: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert!(trimmed_log(&lines).starts_with("line 30\nline 31"));
    }

    #[test]
    fn a_missing_wheel_is_named_from_uv_and_pip_logs() {
        let uv = "error: No solution found when resolving dependencies\n  cause: Because toonew==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_34_x86_64`) and you require toonew==1.0, we can conclude that your requirements are unsatisfiable.";
        assert_eq!(missing_wheel(uv), Some(("toonew".into(), "==1.0".into())));
        let uv =
            "  cause: Because sdistonly==1.0 has no usable wheels and you require sdistonly==1.0";
        assert_eq!(
            missing_wheel(uv),
            Some(("sdistonly".into(), "==1.0".into()))
        );
        let pip = "ERROR: Could not find a version that satisfies the requirement toonew==1.0 (from versions: none)\nERROR: No matching distribution found for toonew==1.0";
        assert_eq!(missing_wheel(pip), Some(("toonew".into(), "==1.0".into())));
        assert_eq!(
            missing_wheel("ERROR: No matching distribution found for numpy"),
            Some(("numpy".into(), String::new()))
        );
        assert_eq!(missing_wheel("error: network unreachable"), None);
    }
}
