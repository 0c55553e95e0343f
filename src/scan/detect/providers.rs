//! Provider keys found by their documented shapes: Stripe secret and
//! restricted keys (`sk_live_` / `rk_live_` and 24 or more letters and
//! digits), Google API keys (`AIza` and 35 of `[0-9A-Za-z_-]`), npm access
//! tokens (`npm_` and 36 letters and digits), SendGrid API keys (`SG.`, 22,
//! `.`, 43 of `[0-9A-Za-z_-]`), JSON web tokens (three base64url parts, the
//! first two JSON objects, `eyJ…`), and a password inside a database or
//! broker connection URL (`postgres://user:password@host`).

use super::{is_alnum, run, starts_word, text, Found};
use crate::scan::shapes::is_placeholder;
use crate::scan::Kind;

fn is_url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `sk_live_…` / `rk_live_…`: a live Stripe key (test keys move no money).
pub(super) fn stripe(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) {
        return None;
    }
    let n = run(bytes, e, is_alnum);
    let value = text(&bytes[s..e + n]);
    ((24..=99).contains(&n) && !is_placeholder(&value)).then_some((s, Kind::StripeKey, value))
}

/// `AIza` and exactly 35 more: a Google API key.
pub(super) fn google(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) {
        return None;
    }
    let n = run(bytes, e, is_url_safe);
    let value = text(&bytes[s..e + n]);
    (n == 35 && !is_placeholder(&value)).then_some((s, Kind::GoogleApiKey, value))
}

/// `npm_` and exactly 36 letters and digits: an npm access token.
pub(super) fn npm(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) {
        return None;
    }
    let n = run(bytes, e, is_alnum);
    let value = text(&bytes[s..e + n]);
    let mixed = value[4..].bytes().any(|b| b.is_ascii_digit())
        && value[4..].bytes().any(|b| b.is_ascii_alphabetic());
    (n == 36 && mixed && !is_placeholder(&value)).then_some((s, Kind::NpmToken, value))
}

/// `SG.` + 22 + `.` + 43: a SendGrid API key.
pub(super) fn sendgrid(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) {
        return None;
    }
    let a = run(bytes, e, is_url_safe);
    if a != 22 || bytes.get(e + a) != Some(&b'.') {
        return None;
    }
    let b = run(bytes, e + a + 1, is_url_safe);
    let value = text(&bytes[s..e + a + 1 + b]);
    (b == 43 && !is_placeholder(&value)).then_some((s, Kind::SendgridKey, value))
}

/// The payload of the example token of jwt.io and RFC 7519's examples
/// (`{"sub":"1234567890","name":"John Doe","iat":1516239022}` and
/// `{"iss":"joe", …}`): documentation, not a credential.
const DOC_PAYLOADS: [&str; 2] = [
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
];

/// `eyJ…` (a base64url JSON object: the header) `.eyJ…` (the claims) `.…`
/// (the signature, 16 or more): a signed JSON web token.
pub(super) fn jwt(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) {
        return None;
    }
    let header = run(bytes, e, is_url_safe);
    let mut at = e + header;
    if header < 10 || bytes.get(at) != Some(&b'.') || !bytes[at + 1..].starts_with(b"eyJ") {
        return None;
    }
    let claims_start = at + 1;
    let claims = run(bytes, claims_start, is_url_safe);
    at = claims_start + claims;
    if claims < 10 || bytes.get(at) != Some(&b'.') {
        return None;
    }
    let sig = run(bytes, at + 1, is_url_safe);
    let payload = text(&bytes[claims_start..claims_start + claims]);
    if sig < 16 || DOC_PAYLOADS.contains(&payload.as_str()) {
        return None;
    }
    Some((s, Kind::Jwt, text(&bytes[s..at + 1 + sig])))
}

/// Schemes of databases and brokers, whose URLs carry a login.
const CONNECTION_SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "mongodb+srv",
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "mssql",
    "sqlserver",
];

/// `<scheme>://` at `s` (the `://`): the URL's password, for a connection scheme.
pub(super) fn connection_url(bytes: &[u8], s: usize, e: usize) -> Found {
    let n = bytes[..s]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_lowercase() || **b == b'+')
        .count();
    let scheme = std::str::from_utf8(&bytes[s - n..s]).ok()?;
    if !CONNECTION_SCHEMES.contains(&scheme) {
        return None;
    }
    url_password(bytes, s - n, e)
}

/// `<scheme>://user:password@host` for the schemes of databases and brokers:
/// the password (a placeholder, `${VAR}` or an empty one is not a finding).
fn url_password(bytes: &[u8], s: usize, e: usize) -> Found {
    if !starts_word(bytes, s) {
        return None;
    }
    let userinfo = |b: u8| b.is_ascii_graphic() && !matches!(b, b'@' | b'/' | b'"' | b'\'' | b'`');
    let n = run(bytes, e, userinfo);
    if bytes.get(e + n) != Some(&b'@') {
        return None;
    }
    let (user, password) = text(&bytes[e..e + n])
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    let host = run(bytes, e + n + 1, |b| {
        b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
    });
    let plain = |v: &str| v.chars().all(|c| c == '*' || c == 'x' || c == 'X');
    if user.is_empty()
        || password.len() < 4
        || host == 0
        || plain(&password)
        || is_placeholder(&password)
        || ["pass", "pwd", "pw", "user"].contains(&password.to_ascii_lowercase().as_str())
    {
        return None;
    }
    Some((s, Kind::UrlPassword, password))
}

#[cfg(test)]
mod tests {
    use super::super::scan_bytes;
    use crate::scan::Kind;

    fn kinds(name: &str, text: &str) -> Vec<Kind> {
        scan_bytes(name, text.as_bytes())
            .into_iter()
            .map(|h| h.kind)
            .collect()
    }

    /// Each rule: a value of its documented shape is found; a near miss
    /// (one character short, a placeholder, a documentation example) is not.
    #[test]
    fn each_provider_shape_is_found_and_its_near_miss_is_not() {
        let body24 = ["51Hx2Kq8Lm", "3Np5Rt7Vw9", "Xy3Zq8"].concat();
        let google = ["AIza", "SyB3kX9mQ2vN7pL4tR8wY1zC5fH0jD6gK2e"].concat();
        let npm = ["npm_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"].concat();
        let sg = [
            "SG.",
            "aB3dE5fG7hI9jK1lM3nO5p",
            ".",
            "Qr7St9Uv1Wx3Yz5Ab7Cd9Ef1Gh3Ij5Kl7Mn9Op1Qr3S",
        ]
        .concat();
        let header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let claims = "eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxNzkwMDAwMDAwfQ";
        let jwt = format!("{header}.{claims}.{}", "Qk2x9LmN3pR7tV5wY8zA1cE4fH6jK0s");
        let cases: Vec<(String, Kind, String)> = vec![
            (
                format!("KEY = \"{}\"\n", ["rk_live_", &body24].concat()),
                Kind::StripeKey,
                format!("KEY = \"{}\"\n", ["rk_live_", &body24[..20]].concat()),
            ),
            (
                format!("key: \"{}\"\n", ["sk_live_", &body24].concat()),
                Kind::StripeKey,
                format!("key: \"{}\"\n", ["sk_test_", &body24].concat()),
            ),
            (
                format!("const k = '{google}';\n"),
                Kind::GoogleApiKey,
                format!("const k = '{}';\n", &google[..38]),
            ),
            (
                format!("//registry.npmjs.org/:_authToken={npm}\n"),
                Kind::NpmToken,
                format!("token={}\n", &npm[..39]),
            ),
            (
                format!("SENDGRID = \"{sg}\"\n"),
                Kind::SendgridKey,
                format!("SENDGRID = \"{}\"\n", &sg[..sg.len() - 2]),
            ),
            (
                format!("headers = {{'Authorization': 'Bearer {jwt}'}}\n"),
                Kind::Jwt,
                format!(
                    "doc = '{header}.{}.{}'\n",
                    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
                    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
                ),
            ),
            (
                "DATABASE_URL = \"postgres://app:Tq8vLx2mRz@db.internal:5432/app\"\n".into(),
                Kind::UrlPassword,
                "DATABASE_URL = \"postgres://app:${DB_PASSWORD}@db.internal:5432/app\"\n".into(),
            ),
            (
                "url: mongodb+srv://svc:n7Gh2kPq@cluster0.abcd.mongodb.net/db\n".into(),
                Kind::UrlPassword,
                "url: postgresql://user:password@localhost/db\n".into(),
            ),
        ];
        for (found, kind, near) in cases {
            assert!(
                kinds("config.py", &found).contains(&kind),
                "{kind:?} in {found}"
            );
            assert!(
                !kinds("config.py", &near).contains(&kind),
                "{kind:?} in near miss {near}"
            );
        }
    }

    #[test]
    fn shell_exports_and_pass_names_are_assignments() {
        let secret = ["h8Kq2mZr9TfW4xLp", "7VbN3cYd6GsJ1aEu", "0RkQ5oPi"].concat();
        let sh = format!("#!/bin/sh\nexport AWS_SECRET_ACCESS_KEY={secret}\n");
        assert_eq!(kinds("deploy.sh", &sh), vec![Kind::Assignment]);
        // The same line in a file that is not a shell script or config: unquoted values are prose.
        assert_eq!(kinds("notes.md", &sh), vec![]);
        let pass = "DB_PASS=Zr9Tf2xLp7VbN3\n";
        assert_eq!(kinds("run.sh", pass), vec![Kind::Assignment]);
        assert_eq!(
            kinds("settings.py", "DB_PASS = \"Zr9Tf2xLp7VbN3\"\n"),
            vec![Kind::Assignment]
        );
        // A name that merely holds `pass` is not a password's.
        assert_eq!(kinds("a.py", "bypass = \"Zr9Tf2xLp7VbN3\"\n"), vec![]);
        assert_eq!(kinds("run.sh", "DB_PASS=$DB_PASS_FROM_SSM\n"), vec![]);
    }
}
