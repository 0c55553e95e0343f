//! `aws-config.js`: the frontend's runtime configuration, from stack outputs.
//!
//! Every value is written as a JSON string with `<`, `>`, `&`, U+2028 and
//! U+2029 escaped as `\uXXXX`, so no output value can end its string, the
//! statement, or an inline `<script>` element.

use serde::{Deserialize, Serialize};

/// The generated configuration's key.
pub const CONFIG_JS: &str = "aws-config.js";

/// The values the frontend needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsConfig {
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    pub region: String,
    pub api_endpoint: String,
}

/// A JavaScript string literal that is safe inside `<script>`.
pub fn js_string(value: &str) -> String {
    script_safe(&serde_json::to_string(value).expect("strings serialise"))
}

/// JSON text safe inside `<script>`: `<`, `>`, `&`, U+2028 and U+2029, which
/// only strings can hold, written as `\uXXXX`.
pub fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The file's text.
pub fn render(c: &AwsConfig) -> String {
    format!(
        "window.AWS_CONFIG = {{\n  Auth: {{\n    Cognito: {{\n      userPoolId: {},\n      userPoolClientId: {},\n      region: {}\n    }}\n  }},\n  API: {{\n    REST: {{\n      endpoint: {},\n      region: {}\n    }}\n  }}\n}};\n",
        js_string(&c.user_pool_id),
        js_string(&c.user_pool_client_id),
        js_string(&c.region),
        js_string(&c.api_endpoint),
        js_string(&c.region),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_out() {
        let s = js_string("a\"b\\c\n</script><script>alert(1)</script>&\u{2028}");
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\n') && !s.contains('\u{2028}'));
        assert_eq!(s.matches('"').count() - s.matches("\\\"").count(), 2);
    }

    #[test]
    fn the_shape_is_fixed() {
        let text = render(&AwsConfig {
            user_pool_id: "us-east-1_abc".into(),
            user_pool_client_id: "client".into(),
            region: "us-east-1".into(),
            api_endpoint: "https://api.example.com/prod".into(),
        });
        assert!(text.starts_with("window.AWS_CONFIG = {\n  Auth: {\n    Cognito: {\n      userPoolId: \"us-east-1_abc\","));
        assert!(text.ends_with("  API: {\n    REST: {\n      endpoint: \"https://api.example.com/prod\",\n      region: \"us-east-1\"\n    }\n  }\n};\n"));
    }
}
