//! Stack states, and what a deploy does in each.
//!
//! Kept free of I/O so that every state's decision is unit-tested.

/// What a deploy must do before (or instead of) creating a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackAction {
    /// No stack: create one with a CREATE change set.
    Create,
    /// A stack that only exists as a change-set placeholder: CREATE change set too.
    CreateOverReview,
    /// A settled stack: UPDATE change set.
    Update,
    /// An operation is running: wait for it to settle, then decide again.
    Wait,
    /// A failed first create: delete the stack, wait, create (only when asked).
    Replace,
    /// Nothing can proceed: the problem and how to fix it.
    Fail { problem: String, hint: String },
}

/// Decides from the stack's status (`None`: no such stack).
pub fn decide(status: Option<&str>, replace_failed: bool) -> StackAction {
    let Some(status) = status else {
        return StackAction::Create;
    };
    match status {
        "REVIEW_IN_PROGRESS" => StackAction::CreateOverReview,
        "ROLLBACK_COMPLETE" | "CREATE_FAILED" if replace_failed => StackAction::Replace,
        "ROLLBACK_COMPLETE" | "CREATE_FAILED" => StackAction::Fail {
            problem: format!("the stack is in {status}: its first create failed and it cannot be updated"),
            hint: "fix the cause shown in its events, then deploy with --replace-failed-stack (it deletes the failed stack first), or delete it yourself".into(),
        },
        "UPDATE_ROLLBACK_FAILED" => StackAction::Fail {
            problem: "the stack is in UPDATE_ROLLBACK_FAILED: a rollback could not finish".into(),
            hint: "fix the resource that blocked the rollback, then run `aws cloudformation continue-update-rollback --stack-name <stack>` (skipping resources if needed) and deploy again".into(),
        },
        "ROLLBACK_FAILED" | "DELETE_FAILED" => StackAction::Fail {
            problem: format!("the stack is in {status}"),
            hint: "delete the stack (retaining the resources that block it), then deploy again".into(),
        },
        "DELETE_COMPLETE" => StackAction::Create,
        s if s.ends_with("_IN_PROGRESS") => StackAction::Wait,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_COMPLETE"
        | "IMPORT_ROLLBACK_COMPLETE" => StackAction::Update,
        other => StackAction::Fail {
            problem: format!("the stack is in an unexpected state {other}"),
            hint: "check the stack in the CloudFormation console".into(),
        },
    }
}

/// Whether a status is final for an execute that started from create/update.
pub fn settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Whether a settled status means the execute succeeded.
pub fn succeeded(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
    )
}

/// Whether a change set failed only because it has nothing to do.
pub fn is_empty_change_set(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_decision() {
        assert_eq!(decide(None, false), StackAction::Create);
        assert_eq!(
            decide(Some("REVIEW_IN_PROGRESS"), false),
            StackAction::CreateOverReview
        );
        for s in [
            "CREATE_COMPLETE",
            "UPDATE_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE",
            "IMPORT_COMPLETE",
        ] {
            assert_eq!(decide(Some(s), false), StackAction::Update, "{s}");
        }
        for s in [
            "CREATE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
        ] {
            assert_eq!(decide(Some(s), false), StackAction::Wait, "{s}");
        }
        assert_eq!(
            decide(Some("ROLLBACK_COMPLETE"), true),
            StackAction::Replace
        );
        match decide(Some("ROLLBACK_COMPLETE"), false) {
            StackAction::Fail { hint, .. } => assert!(hint.contains("--replace-failed-stack")),
            other => panic!("{other:?}"),
        }
        match decide(Some("UPDATE_ROLLBACK_FAILED"), true) {
            StackAction::Fail { hint, .. } => assert!(hint.contains("continue-update-rollback")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(Some("DELETE_FAILED"), true),
            StackAction::Fail { .. }
        ));
    }

    #[test]
    fn empty_change_sets_are_recognised_in_both_wordings() {
        assert!(is_empty_change_set("The submitted information didn't contain changes. Submit different information to create a change set."));
        assert!(is_empty_change_set("No updates are to be performed."));
        assert!(!is_empty_change_set("Template format error"));
    }
}
