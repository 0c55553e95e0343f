//! `artifact config-js`: aws-config.js from the stack's outputs.

use super::{with_aws, Context};
use crate::cli::ConfigJsArgs;
use crate::config::{Env, Settings};
use crate::frontend;

pub(crate) fn run(ctx: &Context, env: &Env, args: ConfigJsArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let values = with_aws(&ctx.aws, async |c| {
        Ok(frontend::read_outputs(c, &settings).await?)
    })?;
    let text = frontend::config_js::render(&values.aws_config());
    match args.output {
        Some(path) if !args.dry_run => {
            crate::util::write_atomic(&path, text.as_bytes())
                .map_err(|e| anyhow::anyhow!("failed to write {}: {e}", path.display()))?;
            ctx.printer.line(format!("wrote {}", path.display()));
        }
        Some(path) => {
            ctx.printer
                .line(format!("dry run: would write {}:", path.display()));
            stdout(&text)?;
        }
        None => stdout(&text)?,
    }
    Ok(())
}

/// The generated file on stdout: data, not a message.
fn stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
