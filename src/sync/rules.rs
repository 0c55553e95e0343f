//! Which headers a file gets: `[[sync.rules]]`, first match wins, and a
//! Content-Type from the file name when no rule sets one.

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::config::HeaderRule;

/// The headers an object is stored with. Part of its content: a change here
/// is applied even when the bytes are the same.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Headers {
    pub cache_control: Option<String>,
    pub content_type: String,
}

impl Headers {
    /// Files a browser must re-fetch (HTML, no-cache): uploaded after every
    /// other file, so they never point at assets that are not there yet.
    pub fn is_entry_point(&self, rel: &str) -> bool {
        let cc = self.cache_control.as_deref().unwrap_or("");
        rel.ends_with(".html")
            || rel.ends_with(".htm")
            || self.content_type.starts_with("text/html")
            || cc.contains("no-cache")
            || cc.contains("no-store")
    }
}

struct CompiledRule {
    by_name: Vec<GlobMatcher>,
    by_path: Vec<GlobMatcher>,
    rule: HeaderRule,
}

/// The compiled rules.
pub struct Rules(Vec<CompiledRule>);

fn glob(p: &str) -> GlobMatcher {
    // Patterns were validated when the project file was read.
    GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .or_else(|_| Glob::new(p))
        .map(|g| g.compile_matcher())
        .unwrap_or_else(|_| Glob::new("").unwrap().compile_matcher())
}

impl Rules {
    pub fn new(rules: &[HeaderRule]) -> Rules {
        Rules(
            rules
                .iter()
                .map(|r| {
                    let (names, paths): (Vec<&String>, Vec<&String>) =
                        r.patterns.iter().partition(|p| !p.contains('/'));
                    CompiledRule {
                        by_name: names.into_iter().map(|p| glob(p)).collect(),
                        by_path: paths.into_iter().map(|p| glob(p)).collect(),
                        rule: r.clone(),
                    }
                })
                .collect(),
        )
    }

    /// The headers for the file at `rel` (relative, `/`-separated).
    pub fn headers_for(&self, rel: &str) -> Headers {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let rule = self.0.iter().find(|r| {
            r.by_name.iter().any(|g| g.is_match(name)) || r.by_path.iter().any(|g| g.is_match(rel))
        });
        let cache_control = rule.and_then(|r| r.rule.cache_control.clone());
        let content_type = rule
            .and_then(|r| r.rule.content_type.clone())
            .unwrap_or_else(|| guess_content_type(rel));
        Headers {
            cache_control,
            content_type,
        }
    }
}

/// Content-Type from the file name, with `charset=utf-8` for text types.
pub fn guess_content_type(rel: &str) -> String {
    let mime = mime_guess::from_path(rel).first_or_octet_stream();
    let essence = mime.essence_str().to_string();
    let texty = essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/manifest+json"
                | "image/svg+xml"
        );
    if texty {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::new(&[
            HeaderRule {
                patterns: vec!["*.html".into(), "aws-config.js".into()],
                cache_control: Some("no-cache, no-store, must-revalidate".into()),
                content_type: None,
            },
            HeaderRule {
                patterns: vec!["assets/**/*.map".into()],
                cache_control: Some("private".into()),
                content_type: Some("application/json".into()),
            },
            HeaderRule {
                patterns: vec!["**".into()],
                cache_control: Some("public, max-age=31536000, immutable".into()),
                content_type: None,
            },
        ])
    }

    #[test]
    fn first_match_wins_and_names_match_at_any_depth() {
        let r = rules();
        let h = r.headers_for("docs/guide/index.html");
        assert_eq!(
            h.cache_control.as_deref(),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(h.content_type, "text/html; charset=utf-8");
        assert!(h.is_entry_point("docs/guide/index.html"));
        let h = r.headers_for("aws-config.js");
        assert!(h.is_entry_point("aws-config.js"));
        let h = r.headers_for("assets/js/app.js.map");
        assert_eq!(h.cache_control.as_deref(), Some("private"));
        assert_eq!(h.content_type, "application/json");
        let h = r.headers_for("assets/index-3f2a.js");
        assert_eq!(
            h.cache_control.as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        assert!(!h.is_entry_point("assets/index-3f2a.js"));
    }

    #[test]
    fn content_types_from_names() {
        assert_eq!(guess_content_type("a/b.css"), "text/css; charset=utf-8");
        assert_eq!(
            guess_content_type("logo.svg"),
            "image/svg+xml; charset=utf-8"
        );
        assert_eq!(guess_content_type("font.woff2"), "font/woff2");
        assert_eq!(guess_content_type("blob"), "application/octet-stream");
        assert!(guess_content_type("app.js").contains("javascript"));
    }

    #[test]
    fn no_rules_means_no_cache_control() {
        let h = Rules::new(&[]).headers_for("x.png");
        assert_eq!(h.cache_control, None);
        assert_eq!(h.content_type, "image/png");
    }
}
