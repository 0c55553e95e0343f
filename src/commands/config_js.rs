//! `artifact config` (also `config-js`): the site's configuration files from
//! the stack's outputs — `[[frontend.config]]`, else `aws-config.js`.

use super::{with_aws, Context};
use crate::cli::ConfigJsArgs;
use crate::config::{Env, Settings};
use crate::frontend::{self, site_config};

pub(crate) fn run(ctx: &Context, env: &Env, args: ConfigJsArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let values = with_aws(&ctx.aws, async |c| {
        Ok(frontend::read_outputs(c, &settings).await?)
    })?;
    let files = site_config::render_all(&settings, &site_config::Sources::of(&settings, &values))?;
    let targets: Vec<(std::path::PathBuf, &site_config::Rendered)> = match (&args.output, &args.out_dir) {
        (Some(path), _) => match files.as_slice() {
            [one] => vec![(path.clone(), one)],
            _ => anyhow::bail!(
                "-o names one file, but the site has {} configuration files\nhint: use --out-dir DIR to write each at its path",
                files.len()
            ),
        },
        (None, Some(dir)) => files.iter().map(|f| (dir.join(&f.file), f)).collect(),
        (None, None) => return print(ctx, &files),
    };
    for (path, f) in targets {
        if args.dry_run {
            ctx.printer
                .line(format!("dry run: would write {}:", path.display()));
            stdout(&f.text)?;
        } else {
            crate::util::write_atomic(&path, f.text.as_bytes())
                .map_err(|e| anyhow::anyhow!("failed to write {}: {e}", path.display()))?;
            ctx.printer.line(format!("wrote {}", path.display()));
        }
    }
    Ok(())
}

/// Every file on stdout (data); with more than one, each under its name.
fn print(ctx: &Context, files: &[site_config::Rendered]) -> anyhow::Result<()> {
    for f in files {
        if files.len() > 1 {
            ctx.printer.line(format!("{}:", f.file));
        }
        stdout(&f.text)?;
    }
    Ok(())
}

/// A generated file on stdout: data, not a message.
fn stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
