//! `artifact rollback`: back to a recorded deployment without rebuilding —
//! the stack and its code ([`infra`]) and the site ([`site`]). It drives cfn,
//! lambda and frontend with what `history` kept, so it sits above all three;
//! `history` itself is records and their store only.

pub mod infra;
mod options;
pub mod site;

pub use infra::{run, Observed, RollbackPlan, RollbackReport};
pub use options::{RollbackError, RollbackOptions};
