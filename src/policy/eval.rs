//! Whether a policy allows one IAM request: actions and resources matched
//! with IAM's wildcards (`*` any run of characters, `?` one), conditions
//! `StringEquals` and `StringLike` (a key the request lacks fails them, as in IAM).

use std::collections::BTreeMap;

use serde::Serialize;

use super::document::{PolicyDocument, Statement};

/// One authorization AWS makes for a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct IamRequest {
    pub action: String,
    pub resource: String,
    /// Condition keys and their values (`s3:prefix`, `cloudformation:ChangeSetName`, …).
    pub context: BTreeMap<String, String>,
}

/// IAM's wildcard match: `*` matches any run of characters, `?` exactly one.
/// Actions compare case-insensitively; resources exactly.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The classic two-pointer match with one backtrack point.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn action_matches(pattern: &str, action: &str) -> bool {
    glob_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

fn conditions_hold(s: &Statement, r: &IamRequest) -> bool {
    s.condition.iter().all(|(op, keys)| {
        keys.iter().all(|(key, values)| {
            let Some(have) = r.context.get(key) else {
                return false;
            };
            match op.as_str() {
                "StringEquals" => values.iter().any(|v| v == have),
                "StringLike" => values.iter().any(|v| glob_match(v, have)),
                _ => false,
            }
        })
    })
}

/// The statement that allows `r`, if any.
pub fn allows<'a>(policy: &'a PolicyDocument, r: &IamRequest) -> Option<&'a Statement> {
    policy.statements.iter().find(|s| {
        s.actions.iter().any(|a| action_matches(a, &r.action))
            && s.resources.iter().any(|p| glob_match(p, &r.resource))
            && conditions_hold(s, r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob_match(
            "arn:aws:s3:::b/lambda/*",
            "arn:aws:s3:::b/lambda/a.zip"
        ));
        assert!(glob_match("artifact-*", "artifact-"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("stack/app-dev/*", "stack/app-dev/1234"));
        assert!(!glob_match("stack/app-dev/*", "stack/app-dev-other/1234"));
        assert!(!glob_match(
            "arn:aws:s3:::b/lambda/*",
            "arn:aws:s3:::b/cfn/x"
        ));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*a*b", "xxaxxb"));
        assert!(!glob_match("*a*b", "xxbxxa"));
    }

    fn request(action: &str, resource: &str, context: &[(&str, &str)]) -> IamRequest {
        IamRequest {
            action: action.into(),
            resource: resource.into(),
            context: context
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn conditions_need_the_key_and_a_matching_value() {
        let mut condition = BTreeMap::new();
        condition.insert(
            "StringLike".to_string(),
            BTreeMap::from([(
                "cloudformation:ChangeSetName".to_string(),
                vec!["artifact-*".to_string()],
            )]),
        );
        let policy = PolicyDocument {
            version: "2012-10-17",
            statements: vec![Statement {
                sid: "ChangeSets".into(),
                effect: "Allow",
                actions: vec!["cloudformation:CreateChangeSet".into()],
                resources: vec!["arn:aws:cloudformation:*:*:stack/app-dev/*".into()],
                condition,
                why: None,
            }],
        };
        let stack = "arn:aws:cloudformation:us-east-1:1:stack/app-dev/id";
        let key = "cloudformation:ChangeSetName";
        assert!(allows(
            &policy,
            &request(
                "CloudFormation:createchangeset",
                stack,
                &[(key, "artifact-1")]
            )
        )
        .is_some());
        assert!(allows(
            &policy,
            &request(
                "cloudformation:CreateChangeSet",
                stack,
                &[(key, "manual-1")]
            )
        )
        .is_none());
        assert!(allows(
            &policy,
            &request("cloudformation:CreateChangeSet", stack, &[])
        )
        .is_none());
        assert!(allows(
            &policy,
            &request(
                "cloudformation:ExecuteChangeSet",
                stack,
                &[(key, "artifact-1")]
            )
        )
        .is_none());
    }
}
