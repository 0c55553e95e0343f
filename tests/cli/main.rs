//! Integration tests: the real `artifact` binary, run in temporary folders.

mod aws_errors;
mod bad_input;
mod bytecode;
mod common;
mod deploy_frontend;
mod deploy_infra;
mod fault_proxy;
mod faults;
mod history;
mod install;
mod kills;
mod layers;
mod local_aws;
mod metrics;
mod nested;
mod pack;
mod pack_cache;
mod pipeline;
mod policy;
mod real;
mod scan;
mod signing;
mod sync;
mod targets;
mod tools;
mod validate;
