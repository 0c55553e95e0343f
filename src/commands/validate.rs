//! `artifact validate`.

use super::{runtime, with_aws, AlreadyReported, Context};
use crate::cli::ValidateArgs;
use crate::config::{Env, Settings};
use crate::validate::{self, ValidateReport};

pub(crate) fn run(ctx: &Context, env: &Env, args: ValidateArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let report = if args.offline {
        runtime()?.block_on(validate::run(None, &settings))
    } else {
        with_aws(&ctx.aws, async |c| {
            Ok(validate::run(Some(c), &settings).await)
        })?
    };
    ctx.lines(render(&report));
    ctx.document(&report)?;
    if !report.ok {
        for p in &report.problems {
            ctx.printer.always(format!("problem: {p}"));
        }
        return Err(AlreadyReported(format!(
            "validation found {} problem(s)",
            report.problems.len()
        ))
        .into());
    }
    Ok(())
}

/// Each template and function, then the verdict.
pub(crate) fn render(report: &ValidateReport) -> Vec<String> {
    let mut lines = Vec::new();
    for t in &report.templates {
        lines.push(format!(
            "  {:<40} {:>8} bytes  ValidateTemplate: {}",
            t.file, t.bytes, t.validate_template
        ));
    }
    for n in &report.nested {
        let what = match (&n.template, n.checked) {
            (Some(t), _) => format!("-> {t}"),
            (None, true) => "names no template deploy-infra uploads".to_string(),
            (None, false) => "not checked (its TemplateURL cannot be told offline)".to_string(),
        };
        lines.push(format!("  nested   {:<44} {what}", n.stack));
    }
    for f in &report.functions {
        lines.push(format!(
            "  function {:<28} {}",
            f.function,
            match (&f.found, f.checked) {
                (Some(found), _) => found.as_str(),
                (None, true) => "NOT FOUND",
                (None, false) => "not checked (a template does not parse)",
            }
        ));
    }
    for i in &report.imports {
        lines.push(format!(
            "  imports  {:<28} {}{}",
            i.function,
            i.result,
            i.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    if report.ok {
        lines.push(format!(
            "valid: {} template(s), {} function(s)",
            report.templates.len(),
            report.functions.len()
        ));
    }
    lines
}
