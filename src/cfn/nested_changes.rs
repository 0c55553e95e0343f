//! Nested change sets (`IncludeNestedStacks`): the rows of every nested
//! stack's change set, prefixed with its logical id, and the reason a root
//! change set failed when the failure is in a nested one ("Nested change set
//! … was not successfully created: Currently in FAILED" says only where).

use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::types::Change;

use super::{aws_err, ChangeRow, InfraError};

/// How deep nested change sets are read (stacks of stacks of stacks…).
const DEPTH: usize = 5;

/// A change row, with the nested change set it names and the nested stack
/// (for a nested stack).
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub row: ChangeRow,
    pub change_set: Option<String>,
    pub stack: Option<String>,
}

/// A change set to read: its name (or ARN), and its stack (name or ARN;
/// None when the stack is not known: the ARN is enough).
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub change_set: &'a str,
    pub stack: Option<&'a str>,
}

/// Every row of a change set (named, or by ARN), all pages; its status reason.
pub(super) async fn rows_of(
    cfn: &aws_sdk_cloudformation::Client,
    t: Target<'_>,
) -> Result<(Vec<Row>, Option<String>), InfraError> {
    let first = page(cfn, t, None).await?;
    rows_from(cfn, t, &first).await
}

/// Every row of a change set from its first page (already read), the other
/// pages read; its status reason.
pub(super) async fn rows_from(
    cfn: &aws_sdk_cloudformation::Client,
    t: Target<'_>,
    first: &DescribeChangeSetOutput,
) -> Result<(Vec<Row>, Option<String>), InfraError> {
    let mut rows = collect(first.changes());
    let reason = first.status_reason().map(str::to_string);
    let mut token = first.next_token().map(str::to_string);
    while let Some(next) = token {
        let p = page(cfn, t, Some(next)).await?;
        rows.extend(collect(p.changes()));
        token = p.next_token().map(str::to_string);
    }
    Ok((rows, reason))
}

/// One DescribeChangeSet page.
async fn page(
    cfn: &aws_sdk_cloudformation::Client,
    t: Target<'_>,
    token: Option<String>,
) -> Result<DescribeChangeSetOutput, InfraError> {
    cfn.describe_change_set()
        .change_set_name(t.change_set)
        .set_stack_name(t.stack.map(str::to_string))
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| aws_err("DescribeChangeSet", t.stack.unwrap_or(t.change_set), e))
}

/// The rows, then each nested change set's rows (prefixed `<LogicalId>/`),
/// depth first.
pub(super) async fn expand(
    cfn: &aws_sdk_cloudformation::Client,
    rows: Vec<Row>,
) -> Result<Vec<ChangeRow>, InfraError> {
    let mut out = Vec::new();
    let mut queue: Vec<(usize, String, Vec<Row>)> = vec![(0, String::new(), rows)];
    while let Some((depth, prefix, rows)) = queue.pop() {
        let mut nested = Vec::new();
        for Row {
            mut row,
            change_set,
            stack,
        } in rows
        {
            row.logical_id = format!("{prefix}{}", row.logical_id);
            if let (Some(id), true) = (change_set, depth < DEPTH) {
                let t = Target {
                    change_set: &id,
                    stack: stack.as_deref(),
                };
                let (inner, _) = rows_of(cfn, t).await?;
                nested.push((depth + 1, format!("{}/", row.logical_id), inner));
            }
            out.push(row);
        }
        // Depth first, in the order the rows came.
        queue.extend(nested.into_iter().rev());
    }
    Ok(out)
}

/// The reason a change set failed, with the nested change set's own reason
/// (and the nested stack's logical id) when the failure is there.
pub(super) async fn explain(
    cfn: &aws_sdk_cloudformation::Client,
    reason: &str,
    rows: &[Row],
) -> String {
    let mut reason = reason.to_string();
    let mut rows = rows.to_vec();
    let mut path: Vec<String> = Vec::new();
    for _ in 0..DEPTH {
        let Some(arn) = nested_change_set(&reason) else {
            break;
        };
        let named = rows.iter().find(|r| r.change_set.as_deref() == Some(arn));
        let logical = named
            .map(|r| r.row.logical_id.clone())
            .unwrap_or_else(|| change_set_name(arn).to_string());
        let t = Target {
            change_set: arn,
            stack: named.and_then(|r| r.stack.as_deref()),
        };
        match rows_of(cfn, t).await {
            Ok((inner, Some(inner_reason))) => {
                path.push(logical);
                reason = inner_reason;
                rows = inner;
            }
            // The nested change set cannot be read: the root's reason stands.
            _ => break,
        }
    }
    if path.is_empty() {
        reason
    } else {
        format!("in nested stack {}: {reason}", path.join("/"))
    }
}

/// The nested change set a root change set's reason names.
pub(super) fn nested_change_set(reason: &str) -> Option<&str> {
    let rest = reason.strip_prefix("Nested change set ")?;
    let arn = rest.split_whitespace().next()?;
    arn.starts_with("arn:").then_some(arn)
}

/// A change set ARN's name (`…:changeSet/<name>/<id>`).
fn change_set_name(arn: &str) -> &str {
    arn.split(":changeSet/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or(arn)
}

fn collect(changes: &[Change]) -> Vec<Row> {
    changes
        .iter()
        .filter_map(|c| c.resource_change())
        .map(|r| {
            let row = ChangeRow {
                action: r
                    .action()
                    .map(|a| a.as_str().to_string())
                    .unwrap_or_default(),
                logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: r.resource_type().unwrap_or_default().to_string(),
                replacement: r
                    .replacement()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_else(|| "-".into()),
            };
            let nested = r.resource_type() == Some("AWS::CloudFormation::Stack");
            Row {
                row,
                change_set: r.change_set_id().map(str::to_string),
                stack: r
                    .physical_resource_id()
                    .filter(|p| nested && p.starts_with("arn:"))
                    .map(str::to_string),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_change_set_a_failure_names_is_read_from_its_reason() {
        let arn = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs-Functions/0a1b";
        let reason =
            format!("Nested change set {arn} was not successfully created: Currently in FAILED.");
        assert_eq!(nested_change_set(&reason), Some(arn));
        assert_eq!(change_set_name(arn), "cs-Functions");
        assert_eq!(nested_change_set("Template format error: x"), None);
        assert_eq!(nested_change_set("Nested change set ??? failed"), None);
    }
}
