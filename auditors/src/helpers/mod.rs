//! The hard parts of judging a configuration, done once and right in Rust: IAM policy
//! analysis, CIDR maths, port ranges, ARNs. Rules call them through the engine.

pub mod arn;
pub mod cidr;
pub mod explain;
pub mod policy;
pub mod ports;
pub mod privesc;
