//! The deploy-infra decision, with no I/O: from the templates, the stack as it
//! is and what the uploads would do, the stack step (create, update, nothing,
//! replace a failed stack, wait), the parameter and tag differences, and which
//! functions' code would be updated.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::local::Templates;
use super::observe::StackView;
use super::stack::{self, StackAction};
use super::InfraError;
use crate::lambda::{self, CodeAction, CodeResult, CodeTarget};
use crate::sync::{ActionKind, SyncObserved, SyncPlan};

/// What happens to the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackStep {
    /// A CREATE change set (no stack, or one that is only a review placeholder).
    Create,
    /// An UPDATE change set.
    Update,
    /// Templates, parameters and tags are what the stack has: no change set.
    Nothing,
    /// Delete the failed first create, then a CREATE change set.
    ReplaceFailed,
    /// An operation is running: wait for it, then decide again.
    Wait,
}

impl StackStep {
    /// The change set type this step creates, if any.
    pub fn change_set_type(self) -> Option<&'static str> {
        match self {
            StackStep::Create | StackStep::ReplaceFailed => Some("CREATE"),
            StackStep::Update => Some("UPDATE"),
            StackStep::Nothing | StackStep::Wait => None,
        }
    }
}

/// A value that differs between the stack and the deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub key: String,
    /// What the stack has (`None`: not set).
    pub deployed: Option<String>,
    /// What this deploy sets (`None`: removed).
    pub wanted: Option<String>,
}

/// Everything the deploy-infra plan is made from.
#[derive(Debug, Clone)]
pub struct InfraObserved {
    pub templates: Templates,
    /// `None`: no such stack.
    pub stack: Option<StackView>,
    /// The stack's current template, read only when it may be all that changed.
    pub deployed_template: Option<String>,
    pub template_sync: SyncObserved,
    pub zip_sync: Option<SyncObserved>,
    pub targets: Vec<CodeTarget>,
    /// Each target's deployed CodeSha256 (`None`: no such function); empty
    /// when the functions were not read (no stack yet).
    pub deployed_code: Vec<Option<String>>,
}

/// The deploy's wishes.
#[derive(Debug, Clone)]
pub struct InfraPlanOptions {
    pub stack: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub replace_failed_stack: bool,
    pub change_set_name: String,
    pub template_url: String,
}

/// A deploy, decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraPlan {
    pub stack: String,
    pub stack_status: Option<String>,
    pub step: StackStep,
    /// The one change set name this deploy uses (when it creates one).
    pub change_set: Option<String>,
    pub change_set_type: Option<String>,
    pub template_url: String,
    pub templates: SyncPlan,
    pub zips: Option<SyncPlan>,
    /// Template keys whose content or headers differ from the bucket's.
    pub templates_changed: Vec<String>,
    pub parameters: Vec<Difference>,
    pub tags: Vec<Difference>,
    pub functions: Vec<CodeResult>,
    /// The parameters passed: those the master template declares.
    pub passed_parameters: BTreeMap<String, String>,
    /// Layer versions reused or published (`[layers]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<super::layers::LayerStep>,
    /// Each nested stack, and whether its template changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<NestedStep>,
}

/// A nested stack in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedStep {
    /// Its logical id, and the template that declares it.
    pub stack: String,
    pub parent: String,
    /// The template it is made from (its key in the deployment bucket).
    pub key: Option<String>,
    /// Its template's bytes differ from the key's: the update changes it.
    pub template_changed: bool,
}

/// The nested stacks, each with whether its template is among `changed` keys.
fn nested_steps(templates: &Templates, changed: &[String]) -> Vec<NestedStep> {
    templates
        .nested
        .stacks
        .iter()
        .map(|n| {
            let key = n
                .template
                .as_ref()
                .map(|rel| format!("{}{rel}", super::TEMPLATES_PREFIX));
            NestedStep {
                stack: n.resource.clone(),
                parent: n.parent.clone(),
                template_changed: key.as_ref().is_some_and(|k| changed.contains(k)),
                key,
            }
        })
        .collect()
}

/// Whether a stack update could be skipped, so the current template must be read.
pub fn may_be_unchanged(templates: &Templates, template_plan: &SyncPlan) -> bool {
    template_plan.assets.is_empty()
        && template_plan.entry_points.is_empty()
        && !templates.has_dynamic_parameters
}

/// Decides the deploy. A stack state nothing can proceed from is an error.
pub fn plan(
    o: &InfraObserved,
    template_plan: SyncPlan,
    zip_plan: Option<SyncPlan>,
    opts: &InfraPlanOptions,
) -> Result<InfraPlan, InfraError> {
    let passed: BTreeMap<String, String> = opts
        .parameters
        .iter()
        .filter(|(k, _)| o.templates.declared_parameters.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // What the stack would have: ours, else the template's defaults.
    let mut effective = o.templates.defaults.clone();
    effective.extend(passed.clone());
    let no_values = BTreeMap::new();
    let (deployed_params, deployed_tags) = o
        .stack
        .as_ref()
        .map_or((&no_values, &no_values), |v| (&v.parameters, &v.tags));
    let mut parameters = differences(deployed_params, &effective);
    for d in parameters
        .iter_mut()
        .filter(|d| o.templates.no_echo.contains(&d.key))
    {
        d.deployed = d.deployed.as_ref().map(|_| MASK.to_string());
        d.wanted = d.wanted.as_ref().map(|_| MASK.to_string());
    }
    let tags = differences(deployed_tags, &opts.tags);
    let status = o.stack.as_ref().map(|s| s.status.as_str());
    let step = match stack::decide(status, opts.replace_failed_stack) {
        StackAction::Create | StackAction::CreateOverReview => StackStep::Create,
        StackAction::Wait => StackStep::Wait,
        StackAction::Replace => StackStep::ReplaceFailed,
        StackAction::Update => {
            let masked = deployed_params.values().any(|v| v == "****");
            let same = may_be_unchanged(&o.templates, &template_plan)
                && parameters.is_empty()
                && !masked
                && tags.is_empty()
                && o.deployed_template.as_deref() == Some(o.templates.master_body.as_str());
            if same {
                StackStep::Nothing
            } else {
                StackStep::Update
            }
        }
        StackAction::Fail { problem, hint } => {
            return Err(InfraError::StackState {
                stack: opts.stack.clone(),
                problem,
                hint,
            })
        }
    };
    let functions = o
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| match o.deployed_code.get(i) {
            Some(sha) if o.stack.is_some() => lambda::plan_code(t, sha.as_deref()),
            _ => lambda::plan_code(t, None),
        })
        .collect();
    let templates_changed: Vec<String> = template_plan
        .actions()
        .filter(|a| a.kind != ActionKind::Delete)
        .map(|a| a.key.clone())
        .collect();
    let nested = nested_steps(&o.templates, &templates_changed);
    Ok(InfraPlan {
        nested,
        stack: opts.stack.clone(),
        stack_status: status.map(str::to_string),
        step,
        change_set: step.change_set_type().map(|_| opts.change_set_name.clone()),
        change_set_type: step.change_set_type().map(str::to_string),
        template_url: opts.template_url.clone(),
        templates: template_plan,
        zips: zip_plan,
        templates_changed,
        parameters,
        tags,
        functions,
        passed_parameters: masked(passed, &o.templates.no_echo),
        layers: Vec::new(),
    })
}

/// Keys whose values differ, sorted.
/// How CloudFormation shows a `NoEcho` parameter, and how artifact shows and
/// records one. A change set given it keeps the stack's value (UsePreviousValue).
pub const MASK: &str = "****";

/// `params` with the values of `no_echo` ones masked.
pub fn masked(
    params: BTreeMap<String, String>,
    no_echo: &HashSet<String>,
) -> BTreeMap<String, String> {
    params
        .into_iter()
        .map(|(k, v)| {
            let v = if no_echo.contains(&k) {
                MASK.to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

/// The values a change set is created with: the plan's, with each masked
/// `NoEcho` one taken from the project's parameters again.
pub fn unmasked(
    passed: &BTreeMap<String, String>,
    real: &BTreeMap<String, String>,
    no_echo: &HashSet<String>,
) -> Vec<(String, String)> {
    passed
        .iter()
        .map(|(k, v)| {
            let v = match real.get(k) {
                Some(r) if v == MASK && no_echo.contains(k) => r.clone(),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

pub fn differences(
    deployed: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Vec<Difference> {
    let mut keys: Vec<&String> = deployed.keys().chain(wanted.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| deployed.get(*k) != wanted.get(*k))
        .map(|k| Difference {
            key: k.clone(),
            deployed: deployed.get(k).cloned(),
            wanted: wanted.get(k).cloned(),
        })
        .collect()
}

impl InfraPlan {
    /// Functions whose code apply must bring up to date: all of them after a
    /// change set (it may have changed any), else those that differ.
    pub fn functions_to_update(&self, stack_changed: bool) -> Vec<&str> {
        self.functions
            .iter()
            .filter(|f| stack_changed || f.action != CodeAction::Unchanged)
            .map(|f| f.function.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::model::S3Url;
    use crate::sync::remote::RemoteView;
    use crate::sync::{Action, Reason};

    const BODY: &str = "Resources: {}\n";

    fn templates() -> Templates {
        Templates {
            master_body: BODY.into(),
            declared_parameters: HashSet::from(["Environment".to_string()]),
            defaults: BTreeMap::from([("Environment".to_string(), "dev".to_string())]),
            has_dynamic_parameters: false,
            no_echo: HashSet::new(),
            nested: Default::default(),
            nested_bodies: BTreeMap::new(),
        }
    }

    fn observed(status: Option<&str>, deployed_code: &[Option<&str>]) -> InfraObserved {
        let view = status.map(|s| StackView {
            status: s.into(),
            parameters: BTreeMap::from([("Environment".to_string(), "dev".to_string())]),
            tags: BTreeMap::from([("team".to_string(), "a".to_string())]),
            outputs: Vec::new(),
        });
        InfraObserved {
            templates: templates(),
            stack: view,
            deployed_template: Some(BODY.into()),
            template_sync: SyncObserved {
                dest: S3Url::parse("s3://bucket/cfn").unwrap(),
                local: Vec::new(),
                remote: RemoteView::default(),
                known: HashMap::new(),
                inspected: 0,
            },
            zip_sync: None,
            targets: vec![CodeTarget {
                function: "api".into(),
                deployed_name: "p-dev-api".into(),
                bucket: "b".into(),
                key: "lambda/api.zip".into(),
                code_sha256: "NEW=".into(),
            }],
            deployed_code: deployed_code
                .iter()
                .map(|c| c.map(str::to_string))
                .collect(),
        }
    }

    fn opts() -> InfraPlanOptions {
        InfraPlanOptions {
            stack: "p-dev".into(),
            parameters: BTreeMap::from([
                ("Environment".to_string(), "dev".to_string()),
                ("Undeclared".to_string(), "x".to_string()),
            ]),
            tags: BTreeMap::from([("team".to_string(), "a".to_string())]),
            replace_failed_stack: false,
            change_set_name: "artifact-abc".into(),
            template_url: "https://s3/b/cfn/master.yaml".into(),
        }
    }

    fn changed_templates() -> SyncPlan {
        SyncPlan {
            assets: vec![Action {
                kind: ActionKind::Upload,
                key: "cfn/master.yaml".into(),
                reason: Reason::Changed,
                bytes: 14,
                cache_control: None,
            }],
            ..SyncPlan::default()
        }
    }

    fn planned(status: Option<&str>, code: &[Option<&str>], o: &InfraPlanOptions) -> InfraPlan {
        plan(&observed(status, code), SyncPlan::default(), None, o).unwrap()
    }

    fn step(status: Option<&str>, templates: SyncPlan, o: &InfraPlanOptions) -> StackStep {
        plan(&observed(status, &[Some("NEW=")]), templates, None, o)
            .unwrap()
            .step
    }

    #[test]
    fn every_state_with_templates_changed_or_not() {
        let o = opts();
        let cases = [
            (None, StackStep::Create, StackStep::Create),
            (
                Some("REVIEW_IN_PROGRESS"),
                StackStep::Create,
                StackStep::Create,
            ),
            (
                Some("UPDATE_COMPLETE"),
                StackStep::Nothing,
                StackStep::Update,
            ),
            (
                Some("CREATE_COMPLETE"),
                StackStep::Nothing,
                StackStep::Update,
            ),
            (
                Some("UPDATE_ROLLBACK_COMPLETE"),
                StackStep::Nothing,
                StackStep::Update,
            ),
            (Some("UPDATE_IN_PROGRESS"), StackStep::Wait, StackStep::Wait),
            (
                Some("DELETE_COMPLETE"),
                StackStep::Create,
                StackStep::Create,
            ),
        ];
        for (status, same, changed) in cases {
            assert_eq!(step(status, SyncPlan::default(), &o), same, "{status:?}");
            assert_eq!(step(status, changed_templates(), &o), changed, "{status:?}");
        }
    }

    #[test]
    fn failed_states_need_replacing_or_fail_with_a_hint() {
        let mut o = opts();
        let err = plan(
            &observed(Some("ROLLBACK_COMPLETE"), &[]),
            SyncPlan::default(),
            None,
            &o,
        )
        .unwrap_err();
        assert!(err.hint().unwrap().contains("--replace-failed-stack"));
        o.replace_failed_stack = true;
        let p = planned(Some("ROLLBACK_COMPLETE"), &[], &o);
        assert_eq!(p.step, StackStep::ReplaceFailed);
        assert_eq!(p.change_set_type.as_deref(), Some("CREATE"));
        let err = plan(
            &observed(Some("UPDATE_ROLLBACK_FAILED"), &[]),
            SyncPlan::default(),
            None,
            &o,
        )
        .unwrap_err();
        assert!(err.to_string().contains("UPDATE_ROLLBACK_FAILED"));
    }

    #[test]
    fn a_no_echo_parameter_is_shown_masked_and_sent_as_it_is() {
        let mut o = observed(Some("UPDATE_COMPLETE"), &[Some("NEW=")]);
        o.templates.declared_parameters.insert("Token".into());
        o.templates.no_echo.insert("Token".into());
        if let Some(s) = o.stack.as_mut() {
            s.parameters.insert("Token".into(), MASK.into());
        }
        let mut opts = opts();
        opts.parameters
            .insert("Token".into(), "s3cr3t-value".into());
        let p = plan(&o, SyncPlan::default(), None, &opts).unwrap();
        let shown = serde_json::to_string(&p).unwrap();
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(p.passed_parameters["Token"], MASK);
        // CloudFormation shows it masked too: the stack may differ, so it updates.
        assert_eq!(p.step, StackStep::Update);
        let sent = unmasked(&p.passed_parameters, &opts.parameters, &o.templates.no_echo);
        assert!(sent.contains(&("Token".to_string(), "s3cr3t-value".to_string())));
        assert!(sent.contains(&("Environment".to_string(), "dev".to_string())));
    }

    #[test]
    fn a_changed_parameter_or_tag_updates_and_is_listed() {
        let mut o = opts();
        o.parameters.insert("Environment".into(), "prod".into());
        o.tags.insert("cost".into(), "1".into());
        let p = planned(Some("UPDATE_COMPLETE"), &[Some("NEW=")], &o);
        assert_eq!(p.step, StackStep::Update);
        assert_eq!(
            p.parameters,
            [Difference {
                key: "Environment".into(),
                deployed: Some("dev".into()),
                wanted: Some("prod".into())
            }]
        );
        assert_eq!(p.tags[0].key, "cost");
        assert_eq!(p.tags[0].deployed, None);
        assert!(!p.passed_parameters.contains_key("Undeclared"));
    }

    #[test]
    fn a_template_changed_only_in_the_stack_updates() {
        let mut ob = observed(Some("UPDATE_COMPLETE"), &[Some("NEW=")]);
        ob.deployed_template = Some("Resources: {Old: 1}\n".into());
        let p = plan(&ob, SyncPlan::default(), None, &opts()).unwrap();
        assert_eq!(p.step, StackStep::Update);
    }

    #[test]
    fn dynamic_parameters_always_update() {
        let mut ob = observed(Some("UPDATE_COMPLETE"), &[Some("NEW=")]);
        ob.templates.has_dynamic_parameters = true;
        let p = plan(&ob, SyncPlan::default(), None, &opts()).unwrap();
        assert_eq!(p.step, StackStep::Update);
    }

    #[test]
    fn functions_compare_code_hashes() {
        let o = opts();
        let p = planned(Some("UPDATE_COMPLETE"), &[Some("OLD=")], &o);
        assert_eq!(p.step, StackStep::Nothing);
        assert_eq!(p.functions[0].action, CodeAction::WouldUpdate);
        assert_eq!(p.functions_to_update(false), ["api"]);
        let p = planned(None, &[], &o);
        assert_eq!(p.functions[0].action, CodeAction::CreatedByStack);
        let p = planned(Some("UPDATE_COMPLETE"), &[Some("NEW=")], &o);
        assert!(p.functions_to_update(false).is_empty());
        assert_eq!(p.functions_to_update(true), ["api"]);
    }
}
