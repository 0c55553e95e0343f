//! `[[targets]]` and `[deploy]`: where a deploy fans out to (accounts,
//! regions, environments, in waves) and how many failures it tolerates.
//! Checked here, before any call: a bad target is named with its key.

use serde::Deserialize;

use super::error::{invalid, Problem};

/// `[[targets]]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) name: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) role_arn: Option<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) wave: Option<u32>,
}

/// `[deploy]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeploy {
    pub(crate) max_parallel: Option<usize>,
    /// A count (`1`) or a percentage of the wave (`"25%"`).
    pub(crate) failure_tolerance: Option<toml::Value>,
}

/// One deploy target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub account: String,
    pub region: String,
    /// None: the project's environment.
    pub environment: Option<String>,
    /// The role assumed for this target's calls; None: the caller's own credentials.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub wave: u32,
}

/// `[deploy]`: how targets run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Targets of one wave deployed at once.
    pub max_parallel: usize,
    pub failure_tolerance: Tolerance,
}

impl Default for Fanout {
    fn default() -> Fanout {
        Fanout {
            max_parallel: 4,
            failure_tolerance: Tolerance::Count(0),
        }
    }
}

/// Failures a wave may have and still let the run go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    Count(usize),
    /// Percent of the wave's targets, rounded down.
    Percent(u8),
}

impl Tolerance {
    /// Failures allowed in a wave of `size` targets.
    pub fn allowed(self, size: usize) -> usize {
        match self {
            Tolerance::Count(n) => n,
            Tolerance::Percent(p) => size.saturating_mul(usize::from(p)) / 100,
        }
    }
}

/// The longest `max_parallel` accepted.
pub const MAX_PARALLEL: usize = 64;

/// AWS regions in the commercial, China and GovCloud partitions.
const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

fn key(i: usize, name: Option<&str>, field: &str) -> String {
    match name {
        Some(n) => format!("targets.{n}.{field}"),
        None => format!("targets[{i}].{field}"),
    }
}

/// `[[targets]]` checked: names unique, accounts, known regions, role ARNs,
/// and waves numbered from 1 with none empty.
pub(crate) fn resolve_targets(raw: Vec<RawTarget>) -> Result<Vec<Target>, Problem> {
    let mut out: Vec<Target> = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let name = t.name.ok_or_else(|| {
            invalid(
                &key(i, None, "name"),
                "a target needs a name".into(),
                "give each [[targets]] entry a name = \"...\" (used by --target)",
            )
        })?;
        let at = |field: &str| key(i, Some(&name), field);
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                &key(i, None, "name"),
                format!("{name:?} is not a target name"),
                "use 1 to 64 letters, digits, - and _",
            ));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(invalid(
                &at("name"),
                format!("two targets are named {name:?}"),
                "give each [[targets]] entry a name of its own",
            ));
        }
        let account = t.account.unwrap_or_default();
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                &at("account"),
                format!("{account:?} is not an AWS account id"),
                "give the target's 12-digit account id, in quotes",
            ));
        }
        let region = t.region.unwrap_or_default();
        if !REGIONS.contains(&region.as_str()) {
            return Err(invalid(
                &at("region"),
                format!("{region:?} is not an AWS region"),
                "give a region code such as \"us-east-1\" or \"eu-west-1\"",
            ));
        }
        if let Some(r) = &t.role_arn {
            if !crate::names::is_role_arn(r) {
                return Err(invalid(
                    &at("role_arn"),
                    format!("{r:?} is not an IAM role ARN"),
                    "give arn:aws:iam::<account>:role/<name>, the role artifact assumes for this target",
                ));
            }
            let role_account = r.split(':').nth(4).unwrap_or_default();
            if role_account != account {
                return Err(invalid(
                    &at("role_arn"),
                    format!("the role is in account {role_account}, the target is account {account}"),
                    "assume a role in the target's own account (its trust policy names the account the pipeline runs in)",
                ));
            }
        }
        if t.external_id.is_some() && t.role_arn.is_none() {
            return Err(invalid(
                &at("external_id"),
                "an external id without a role to assume".into(),
                "set role_arn too, or remove external_id",
            ));
        }
        let wave = t.wave.unwrap_or(1);
        if wave == 0 {
            return Err(invalid(
                &at("wave"),
                "waves are numbered from 1".into(),
                "give wave = 1 for the first wave",
            ));
        }
        out.push(Target {
            name,
            account,
            region,
            environment: t.environment,
            role_arn: t.role_arn,
            external_id: t.external_id,
            wave,
        });
    }
    if let Some(last) = out.iter().map(|t| t.wave).max() {
        if let Some(empty) = (1..last).find(|w| !out.iter().any(|t| t.wave == *w)) {
            let next = out.iter().filter(|t| t.wave > empty).min_by_key(|t| t.wave);
            return Err(invalid(
                &key(0, next.map(|t| t.name.as_str()), "wave"),
                format!("wave {empty} has no targets"),
                "number waves 1, 2, 3… without gaps",
            ));
        }
    }
    Ok(out)
}

/// `[deploy]` checked.
pub(crate) fn resolve_fanout(raw: RawDeploy) -> Result<Fanout, Problem> {
    let d = Fanout::default();
    let max_parallel = raw.max_parallel.unwrap_or(d.max_parallel);
    if !(1..=MAX_PARALLEL).contains(&max_parallel) {
        return Err(invalid(
            "deploy.max_parallel",
            format!("{max_parallel} is out of range"),
            format!("give 1 to {MAX_PARALLEL} targets at once"),
        ));
    }
    let failure_tolerance = match raw.failure_tolerance {
        None => d.failure_tolerance,
        Some(v) => tolerance(&v).ok_or_else(|| {
            invalid(
                "deploy.failure_tolerance",
                format!("{v} is not a count or a percentage"),
                "give failures a wave may have: a count (1) or a percentage of the wave (\"25%\")",
            )
        })?,
    };
    Ok(Fanout {
        max_parallel,
        failure_tolerance,
    })
}

fn tolerance(v: &toml::Value) -> Option<Tolerance> {
    match v {
        toml::Value::Integer(n) => usize::try_from(*n).ok().map(Tolerance::Count),
        toml::Value::String(s) => {
            let p: u8 = s.strip_suffix('%')?.trim().parse().ok()?;
            (p <= 100).then_some(Tolerance::Percent(p))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, account: &str, region: &str, wave: Option<u32>) -> RawTarget {
        RawTarget {
            name: Some(name.into()),
            account: Some(account.into()),
            region: Some(region.into()),
            wave,
            ..RawTarget::default()
        }
    }

    fn err(raw: Vec<RawTarget>) -> String {
        match resolve_targets(raw).unwrap_err() {
            Problem::Invalid { key, message, .. } => format!("{key}: {message}"),
            Problem::Name(n) => format!("{n:?}"),
        }
    }

    #[test]
    fn targets_resolve_with_defaults() {
        let got = resolve_targets(vec![t("a", "111111111111", "us-east-1", None)]).unwrap();
        assert_eq!(got[0].wave, 1);
        assert_eq!(got[0].role_arn, None);
    }

    #[test]
    fn bad_targets_are_named_with_their_key() {
        let a = || t("a", "111111111111", "us-east-1", None);
        assert_eq!(
            err(vec![a(), a()]),
            "targets.a.name: two targets are named \"a\""
        );
        assert_eq!(
            err(vec![t("b", "111111111111", "us-middle-1", None)]),
            "targets.b.region: \"us-middle-1\" is not an AWS region"
        );
        assert_eq!(
            err(vec![t("b", "1111", "us-east-1", None)]),
            "targets.b.account: \"1111\" is not an AWS account id"
        );
        let mut role = a();
        role.role_arn = Some("arn:aws:iam::111111111111:user/x".into());
        assert!(err(vec![role]).starts_with("targets.a.role_arn: "));
        let mut elsewhere = a();
        elsewhere.role_arn = Some("arn:aws:iam::222222222222:role/deploy".into());
        assert!(err(vec![elsewhere]).contains("account 222222222222"));
        assert_eq!(
            err(vec![a(), t("c", "111111111111", "us-east-1", Some(3))]),
            "targets.c.wave: wave 2 has no targets"
        );
        assert_eq!(
            err(vec![t("z", "111111111111", "us-east-1", Some(0))]),
            "targets.z.wave: waves are numbered from 1"
        );
        let mut nameless = a();
        nameless.name = None;
        assert_eq!(
            err(vec![a(), nameless]),
            "targets[1].name: a target needs a name"
        );
    }

    #[test]
    fn tolerance_is_a_count_or_a_percentage_of_the_wave() {
        let f = |v: toml::Value| {
            resolve_fanout(RawDeploy {
                max_parallel: None,
                failure_tolerance: Some(v),
            })
        };
        let pct = f(toml::Value::String("25%".into())).unwrap();
        assert_eq!(pct.failure_tolerance, Tolerance::Percent(25));
        assert_eq!(pct.failure_tolerance.allowed(4), 1);
        assert_eq!(pct.failure_tolerance.allowed(3), 0);
        assert_eq!(
            f(toml::Value::Integer(2))
                .unwrap()
                .failure_tolerance
                .allowed(1),
            2
        );
        assert!(f(toml::Value::String("101%".into())).is_err());
        assert!(f(toml::Value::Integer(-1)).is_err());
        assert!(f(toml::Value::Boolean(true)).is_err());
        assert_eq!(Fanout::default().max_parallel, 4);
        let zero = resolve_fanout(RawDeploy {
            max_parallel: Some(0),
            failure_tolerance: None,
        });
        assert!(zero.is_err());
    }
}
