//! Items, observations, listings and the [`Collector`] seam between watchers and storage.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::canonical::{into_string, write_canonical, write_str};

/// The identity of one cloud resource. Region is `global` for global services (IAM).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
}

impl ItemKey {
    pub fn scope(&self) -> Scope {
        Scope {
            account: self.account.clone(),
            region: self.region.clone(),
            resource_type: self.resource_type.clone(),
        }
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in {}/{}",
            self.resource_type, self.resource_id, self.account, self.region
        )
    }
}

/// The unit a listing can be complete for: one resource type in one account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    pub account: String,
    pub region: String,
    pub resource_type: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}/{}",
            self.resource_type, self.account, self.region
        )
    }
}

/// What a watcher saw of one item at one time, already normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub key: ItemKey,
    pub arn: Option<String>,
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Durable configuration: any change here is a new revision.
    pub config: Value,
    /// Fields that change without anyone changing anything (last-used dates, state,
    /// capture times). Stored with the item, never a revision or an alert.
    pub ephemeral: Value,
    pub observed_at: DateTime<Utc>,
    /// Fields the source could not read (path and why), kept raw in `config`. Storage
    /// stores such an item only when it has never been seen; an item already stored
    /// keeps its last readable revision (see `storage::Ingestor`).
    pub unreadable: Vec<String>,
}

/// An observation's stored forms: canonical texts and their SHA-256 hashes. Computed
/// once per item per sweep; a pipelined sweep computes it on the reading thread so the
/// writing thread only writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Canonical {
    /// [`Observation::canonical_document`].
    pub document: String,
    pub hash: String,
    /// The ephemeral part as canonical JSON.
    pub ephemeral: String,
    pub ephemeral_hash: String,
    /// [`Observation::canonical_tags`].
    pub tags: String,
}

impl Observation {
    /// Every stored form of this observation, hashed.
    pub fn canonical(&self) -> Canonical {
        let document = self.canonical_document();
        let ephemeral = crate::canonical_json(&self.ephemeral);
        Canonical {
            hash: crate::content_hash(&document),
            ephemeral_hash: crate::content_hash(&ephemeral),
            document,
            ephemeral,
            tags: self.canonical_tags(),
        }
    }

    /// The canonical JSON of [`Observation::durable_document`], written without
    /// copying the configuration (this runs once per item per sweep).
    pub fn canonical_document(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        let opt = |v: &Option<String>, out: &mut Vec<u8>| match v {
            Some(s) => write_str(s, out),
            None => out.extend_from_slice(b"null"),
        };
        // Keys in byte order: arn, config, name, tags.
        out.extend_from_slice(b"{\"arn\":");
        opt(&self.arn, &mut out);
        out.extend_from_slice(b",\"config\":");
        write_canonical(&self.config, &mut out);
        out.extend_from_slice(b",\"name\":");
        opt(&self.name, &mut out);
        out.extend_from_slice(b",\"tags\":");
        out.extend_from_slice(self.canonical_tags().as_bytes());
        out.push(b'}');
        into_string(out)
    }

    /// Tags as a canonical JSON object (a BTreeMap iterates in key order).
    pub fn canonical_tags(&self) -> String {
        let mut out = Vec::with_capacity(64);
        out.push(b'{');
        for (i, (k, v)) in self.tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(k, &mut out);
            out.push(b':');
            write_str(v, &mut out);
        }
        out.push(b'}');
        into_string(out)
    }

    /// The document that is versioned and hashed: identity details, tags and config.
    pub fn durable_document(&self) -> Value {
        json!({
            "arn": self.arn,
            "name": self.name,
            "tags": self.tags,
            "config": self.config,
        })
    }
}

/// Why a revision was written.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonical_json;

    #[test]
    fn canonical_document_matches_the_generic_writer() {
        let obs = Observation {
            key: ItemKey {
                account: "1".into(),
                region: "r".into(),
                resource_type: "T".into(),
                resource_id: "i".into(),
            },
            arn: None,
            name: Some("n\"q".into()),
            tags: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1\n".into())]),
            config: json!({"z": [1, {"y": null}], "a": "x"}),
            ephemeral: Value::Null,
            observed_at: Utc::now(),
            unreadable: Vec::new(),
        };
        assert_eq!(
            obs.canonical_document(),
            canonical_json(&obs.durable_document())
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A periodic listing (API sweep or a Config snapshot delivery).
    Sweep,
    /// A single-item refresh triggered by an event.
    Event,
    /// Past states replayed from history (Config history files).
    Backfill,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Sweep => "sweep",
            Cause::Event => "event",
            Cause::Backfill => "backfill",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sweep" => Some(Cause::Sweep),
            "event" => Some(Cause::Event),
            "backfill" => Some(Cause::Backfill),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(ChangeKind::Created),
            "modified" => Some(ChangeKind::Modified),
            "deleted" => Some(ChangeKind::Deleted),
            _ => None,
        }
    }
}

/// One pass of a watcher over some part of the cloud: a Config snapshot file, a
/// history file, or an API listing of one resource type.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Where the data came from (a file path, an S3 key, an API scope), for errors.
    pub origin: String,
    pub cause: Cause,
    /// When the cloud was in the listed state. Observations older than an item's
    /// latest revision are stale and ignored; so are inferred deletions.
    pub observed_at: DateTime<Utc>,
    /// Who made the change this listing records, when the source knows (an event).
    pub actor: Option<Actor>,
}

/// Who made a change, as CloudTrail tells it: the principal, and for an assumed role
/// the role and session behind it, from where and with what, in which event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The principal's ARN (`arn:aws:sts::1:assumed-role/deploy/alice`, an IAM user's
    /// ARN, the root ARN); an AWS service's name when a service acted.
    pub principal: Option<String>,
    /// CloudTrail's `userIdentity.type`: IAMUser, AssumedRole, Root, FederatedUser,
    /// AWSService, ...
    pub principal_type: Option<String>,
    /// For an assumed role or federated user: the role (or user) that issued the
    /// session, and the session's name (often the person).
    pub session_issuer: Option<String>,
    pub session_name: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The API call (`ec2:AuthorizeSecurityGroupIngress`).
    pub event_name: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    /// CloudTrail's `eventID`: the same change can be looked up there.
    pub event_id: Option<String>,
}

impl Actor {
    /// One line for people: `arn:…:assumed-role/deploy/alice (session of role deploy) from 203.0.113.7`.
    pub fn label(&self) -> String {
        let mut s = self
            .principal
            .clone()
            .unwrap_or_else(|| "unknown principal".into());
        if let Some(issuer) = &self.session_issuer {
            s.push_str(&format!(" (session of {issuer})"));
        }
        if let Some(ip) = &self.source_ip {
            s.push_str(&format!(" from {ip}"));
        }
        s
    }
}

/// What a finished listing vouches for. Deletions are inferred only inside it, and
/// only for scopes in which no error was reported during the listing.
#[derive(Debug, Clone, PartialEq)]
pub enum Coverage {
    /// Nothing: items missing from it say nothing (history files, single events).
    Nothing,
    /// These scopes were listed in full.
    Scopes(Vec<Scope>),
    /// Everything recorded for an account in a region (an AWS Config snapshot): every
    /// scope seen in the listing, plus every scope already stored for that account and
    /// region, so the last resource of a type disappearing is noticed too.
    Recorded { account: String, region: String },
    /// One resource type of an account in every region (S3's ListBuckets answers for
    /// all regions at once): every region seen in the listing plus every region in
    /// which that type is already stored.
    EveryRegion {
        account: String,
        resource_type: String,
    },
}

/// A problem with the input, reported without stopping the listing. It names the
/// origin and the item, and taints the scope it belongs to (or, with no scope, the
/// whole listing) so nothing there is marked deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceError {
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(item) = &self.item {
            write!(f, ": {item}")?;
        }
        write!(f, ": {}", self.message)
    }
}

pub type CollectError = Box<dyn std::error::Error + Send + Sync>;

/// Receives what watchers see. Implemented by storage; watchers only call it.
/// Calls come as `begin_listing`, then any number of `observe`/`deleted`/`error`,
/// then `end_listing`. A `CollectError` (e.g. the database is gone) stops the source.
pub trait Collector {
    fn begin_listing(&mut self, listing: Listing) -> Result<(), CollectError>;
    fn observe(&mut self, observation: Observation) -> Result<(), CollectError>;
    /// [`Collector::observe`] with the observation's canonical forms already computed
    /// (`canonical` must be `observation.canonical()`); a collector that stores them
    /// uses them instead of computing them again.
    fn observe_canonical(
        &mut self,
        observation: Observation,
        canonical: Canonical,
    ) -> Result<(), CollectError> {
        let _ = canonical;
        self.observe(observation)
    }
    /// A deletion the source states explicitly (AWS Config `ResourceDeleted`).
    fn deleted(&mut self, key: ItemKey, at: DateTime<Utc>) -> Result<(), CollectError>;
    /// The item exists but the source has no configuration for it (AWS Config
    /// `ResourceNotRecorded`): keep its last revision and do not infer its deletion.
    fn present(&mut self, key: ItemKey) -> Result<(), CollectError>;
    fn error(&mut self, error: SourceError);
    fn end_listing(&mut self, coverage: Coverage) -> Result<(), CollectError>;
}
