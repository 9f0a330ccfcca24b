//! Domain types shared by every guardrail crate.
//!
//! An *item* is one cloud resource identified by `(account, region, resource type,
//! resource id)`. A watcher turns what the cloud says about it into an
//! [`Observation`]: the durable configuration (which makes revisions) kept apart from
//! the ephemeral part (which never does). Storage keeps one *revision* per durable
//! change; the [`Collector`] trait is the seam between the two, so watchers never
//! depend on storage and storage never depends on watchers.

pub mod canonical;
pub mod diff;
pub mod finding;
pub mod glob;
pub mod item;
pub mod pipelined;
pub mod policy;

pub use canonical::{canonical_json, content_hash};
pub use diff::{diff, DiffEntry, DiffOp};
pub use finding::{
    transition, FindingEvent, FindingState, RefusedTransition, Trigger, UnknownValue,
};
pub use item::{
    Actor, Canonical, Cause, ChangeKind, CollectError, Collector, Coverage, ItemKey, Listing,
    Observation, Scope, SourceError,
};
pub use pipelined::pipelined;
