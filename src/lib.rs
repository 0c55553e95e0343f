//! artifact: builds and deploys the artifacts of an AWS serverless application
//! (Lambda zips, CloudFormation templates, a static frontend) from its CI/CD
//! pipeline. `main.rs` only parses arguments and maps errors to exit codes;
//! `commands` runs each subcommand; everything lives in the library so tests
//! and benchmarks call it directly.
//!
//! Every command has the same shape: *observe* (only reads), *plan* (a pure
//! function of what was observed, serializable), *apply* (exactly the plan).

pub mod aws;
pub mod cfn;
pub mod cli;
pub mod commands;
pub mod config;
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

pub use commands::{hint_for, run, AlreadyReported};
