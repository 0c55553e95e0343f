use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if artifact::version::wants_json(&args) {
        #[allow(clippy::print_stdout)]
        {
            println!("{:#}", serde_json::json!(artifact::version::VERSION));
        }
        return ExitCode::SUCCESS;
    }
    let cli = artifact::cli::Cli::parse();
    let default = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
    let json = cli.global.json;
    match artifact::run(cli, &artifact::config::Env::from_process()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Each cause once: messages that already quote their source skip it.
            let mut message = err.to_string();
            for cause in err.chain().skip(1) {
                let c = cause.to_string();
                if !message.contains(&c) {
                    message = format!("{message}: {c}");
                }
            }
            // A hint written into the message is the document's hint too.
            let (message, inline) = artifact::split_hint(&message);
            eprintln!("error: {message}");
            let hint = artifact::hint_for(&err).or(inline);
            if let Some(hint) = &hint {
                eprintln!("hint: {hint}");
            }
            if json && err.downcast_ref::<artifact::AlreadyReported>().is_none() {
                // --json promises one document on stdout, failures included.
                let mut doc =
                    serde_json::json!({ "outcome": "failed", "error": message, "hint": hint });
                if let Some(serde_json::Value::Object(more)) = artifact::details_for(&err) {
                    for (k, v) in more {
                        doc[k] = v;
                    }
                }
                #[allow(clippy::print_stdout)]
                {
                    println!("{doc:#}");
                }
            }
            ExitCode::FAILURE
        }
    }
}
