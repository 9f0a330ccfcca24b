//! Auditors: the sandboxed rule engine, the analysis helpers rules call, and the
//! audit pass that turns items into findings.

pub mod audit;
pub mod cases;
pub mod compliance;
pub mod corpus;
pub mod engine;
mod functions;
pub mod helpers;
mod memo;
pub mod network;
pub mod reads;
pub mod settings;
pub mod shapes;

pub use audit::{
    audit_item, audit_items, AccountInfo, AuditContext, AuditItem, AuditPass, PassLimits,
    RuleOutcome, RuleTally,
};
pub use cases::{run_cases, CaseResult};
pub use engine::{
    severity_for, Engine, Limits, LoadError, RawFinding, Rule, RuleError, RuleErrorKind, RuleSet,
    FRAMEWORKS,
};
pub use settings::{
    AuditSettings, ExposureQualifiers, ExposureRule, Judged, Override, Suppression,
};
