//! Auditors: the rule engine and the analysis helpers rules call.

pub mod helpers;
