//! artifact: builds and deploys the artifacts of an AWS serverless application
//! (Lambda zips, CloudFormation templates, a static frontend) from its CI/CD
//! pipeline. `main.rs` only parses arguments and maps errors to exit codes;
//! `commands` runs each subcommand; everything lives in the library so tests
//! and benchmarks call it directly.
//!
//! Every command has the same shape: *observe* (only reads), *plan* (a pure
//! function of what was observed, serializable), *apply* (exactly the plan).
//!
//! # Floors
//!
//! A file imports its own module and lower floors only, so the crate reads
//! bottom-up and no import cycle can form (`floors.rs` tests the first; the
//! file-level graph, `scripts/module-graph`, shows the second in CI):
//!
//! | floor | modules | what they are |
//! |---|---|---|
//! | 9 | `main.rs`, `lib.rs` | parse, init logging, run, map the error to an exit code |
//! | 8 | `cli`, `commands` | clap's types; one file per subcommand: options, rendering, output types |
//! | 7 | `validate`, `policy`, `metrics`, `rollback`, `fanout` | flows that combine the layers below (`fanout`: a deploy across `[[targets]]`, in waves) |
//! | 6 | `frontend` | site config, retention, invalidation planning, deploy-frontend |
//! | 5 | `cfn` | change sets, events, stack states, deploy-infra (`cfn::local`: its local side) |
//! | 4 | `sync`, `pack`, `history` | the S3 sync engine; Lambda zips; deployment records and their store |
//! | 3 | `template`, `scan`, `lambda` | the one offline template reader; the secret scan; Lambda code updates |
//! | 2 | `config` | `artifact.toml`: raw as typed, resolved into `Settings` |
//! | 1 | `model` | shared vocabulary: `S3Url`, `Runtime`/`Arch`/`Target` |
//! | 0 | `names`, `util`, `poll`, `output`, `aws`, `version` | naming rules; helpers; one backoff; the printer and `Hint`; SDK clients, `AwsFailure`, S3 object helpers; what `--version` says |
//!
//! Within a floor only `pack -> sync`, `history -> sync`, `commands -> cli`
//! and `aws -> output` are allowed. When a lower file needs a name from a
//! higher one, the name belongs lower: move it.

pub mod aws;
pub mod cfn;
pub mod cli;
pub mod commands;
pub mod config;
pub mod fanout;
pub mod frontend;
pub mod history;
pub mod lambda;
pub mod metrics;
pub mod model;
pub mod names;
pub mod output;
pub mod pack;
pub mod policy;
pub mod poll;
pub mod rollback;
pub mod scan;
pub mod sync;
pub mod template;
pub mod util;
pub mod validate;
pub mod version;

#[cfg(test)]
mod floors;

pub use commands::{details_for, hint_for, run, split_hint, AlreadyReported};
