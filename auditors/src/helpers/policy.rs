//! IAM policy analysis for identity and resource policies.
//!
//! The questions rules ask are: who can act (principals, wildcard or not, which
//! accounts), on what (actions and resources, with IAM's `*`/`?` wildcards, NotAction
//! and NotResource), under which conditions (do they actually restrict access?), and
//! what is left after Deny statements. Conservative where AWS's full evaluation depends
//! on request context: an Allow counts as access unless an *unconditional* Deny covers
//! it, and a condition only counts as a restriction when it really narrows who can
//! use the statement.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arn::principal_account;
use super::cidr::{within_any, Cidr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Principals {
    /// `"*"`: anyone.
    Any,
    /// `{"AWS": [...], "Service": [...], "Federated": [...], "CanonicalUser": [...]}`
    Map(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principals>,
    pub not_principal: Option<Principals>,
    pub action: Option<Vec<String>>,
    pub not_action: Option<Vec<String>>,
    pub resource: Option<Vec<String>>,
    pub not_resource: Option<Vec<String>>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
    /// What "ours" is for conditions on organisations and networks.
    pub boundary: Boundary,
}

/// Our organisation and networks (`[audit]` in the configuration). A condition that
/// pins the caller inside them restricts access to us; one that pins it to another
/// organisation, VPC, endpoint or network is access by someone else, not a
/// restriction. An empty list means "not configured": any concrete value restricts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Boundary {
    pub organization_ids: Vec<String>,
    pub organization_paths: Vec<String>,
    pub vpcs: Vec<String>,
    pub vpc_endpoints: Vec<String>,
    pub trusted_cidrs: Vec<String>,
}

impl Boundary {
    /// Whether `value` of a condition on `key` (lower case) lies inside our boundary,
    /// or the boundary says nothing about that key.
    fn admits(&self, key: &str, value: &str) -> bool {
        let among = |ours: &[String]| {
            ours.is_empty() || ours.iter().any(|o| o.trim().eq_ignore_ascii_case(value))
        };
        match key {
            "aws:principalorgid" | "aws:sourceorgid" => among(&self.organization_ids),
            "aws:principalorgpaths" | "aws:sourceorgpaths" => {
                let v = value.trim_end_matches('*');
                self.organization_paths.is_empty()
                    || self
                        .organization_paths
                        .iter()
                        .any(|o| v.starts_with(o.trim().trim_end_matches('*')))
            }
            "aws:sourcevpc" => among(&self.vpcs),
            "aws:sourcevpce" => among(&self.vpc_endpoints),
            "aws:sourceip" | "aws:vpcsourceip" => {
                self.trusted_cidrs.is_empty() || within_any(value, &self.trusted_cidrs)
            }
            _ => true,
        }
    }
}

/// An Allow with NotAction: every action except `except`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotActionGrant {
    pub statement: usize,
    pub except: Vec<String>,
    /// What remains includes `iam:*` on every resource, unrestricted.
    pub admin_equivalent: bool,
}

/// A principal named by an Allow statement, with what we know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalRef {
    /// `AWS`, `Service`, `Federated`, `CanonicalUser`, or `*` for a wildcard.
    pub kind: String,
    pub value: String,
    pub account: Option<String>,
    /// Index of the statement granting it.
    pub statement: usize,
    /// Whether that statement carries a condition that restricts who may use it.
    pub restricted: bool,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

fn principals(v: &Value) -> Result<Principals, String> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::String(s) => Ok(Principals::Map(BTreeMap::from([(
            "AWS".to_owned(),
            vec![s.clone()],
        )]))),
        Value::Object(m) => Ok(Principals::Map(
            m.iter().map(|(k, v)| (k.clone(), strings(v))).collect(),
        )),
        other => Err(format!(
            "Principal must be \"*\" or an object, found {other}"
        )),
    }
}

/// Keys (case-insensitive) whose conditions narrow who can use a statement: the
/// caller's network, organisation, account or identity. Keys that describe the
/// resource or the request path (`aws:ResourceOrgID`, `aws:ResourceAccount`,
/// `aws:CalledVia`, `kms:ViaService`) say nothing about who calls, so they are not here.
/// Nor is `aws:username`: a user's friendly name is unique only inside its account, so
/// any account can create a user of that name (`aws:userid`, the unique id, is here).
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourcevpce",
    "aws:sourcevpc",
    "aws:sourceip",
    "aws:vpcsourceip",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourcearn",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:userid",
    "kms:calleraccount",
    "s3:dataaccesspointaccount",
    "sts:externalid",
];

/// Keys that describe the resource or the request path, never the caller.
const NON_CALLER_KEYS: &[&str] = &[
    "aws:resourceorgid",
    "aws:resourceorgpaths",
    "aws:resourceaccount",
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "kms:viaservice",
];

/// Keys whose values are the caller's account (or an ARN in it): a statement pinned
/// to such a value is access *by that account*, to be classified like a principal.
const ACCOUNT_KEYS: &[&str] = &[
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalaccount",
    "kms:calleraccount",
    "aws:sourcearn",
    "aws:principalarn",
];

impl Condition {
    /// Whether this condition, as written, narrows access. Negated operators and
    /// `…IfExists` (which pass when the key is absent), `ForAllValues:` (passes on an
    /// empty set), `Null` and `Bool` checks, unknown keys, `*` values and /0 source
    /// ranges do not.
    pub fn restricts(&self) -> bool {
        self.restricts_in(&Boundary::default())
    }

    /// [`Condition::restricts`], where a value outside our `boundary` (another
    /// organisation, VPC, endpoint or network) does not count as a restriction.
    pub fn restricts_in(&self, boundary: &Boundary) -> bool {
        self.assess(boundary).0
    }

    /// Whether this condition, on an Allow, restricts who may use the statement, and
    /// why, in words (`guardrail policy explain` prints them).
    pub fn assess(&self, boundary: &Boundary) -> (bool, String) {
        let no = |why: String| (false, why);
        let op = self.operator.to_ascii_lowercase();
        let op = op.strip_prefix("foranyvalue:").unwrap_or(&op);
        if op.starts_with("forallvalues:") {
            return no("ForAllValues passes when the request carries no value for the key".into());
        }
        if op.ends_with("ifexists") {
            return no("…IfExists passes when the key is absent from the request".into());
        }
        if op.contains("not") {
            return no(
                "a negated operator on an Allow admits every caller who does not match".into(),
            );
        }
        if op == "null" || op == "bool" {
            return no(format!(
                "{} checks a property of the request, not who makes it",
                self.operator
            ));
        }
        let key = self.key.to_ascii_lowercase();
        if NON_CALLER_KEYS.contains(&key.as_str()) {
            return no(format!(
                "{} describes the resource or the request path, not the caller",
                self.key
            ));
        }
        if !RESTRICTING_KEYS.contains(&key.as_str()) {
            return no(format!("{} is not a key about the caller", self.key));
        }
        if self.values.is_empty() {
            return no("the condition has no values".into());
        }
        let like = op.contains("like");
        for v in &self.values {
            let v = v.trim();
            if v == "*" || v.is_empty() {
                return no(format!("the value {v:?} matches anyone"));
            }
            if key.ends_with("sourceip") {
                match Cidr::parse(v) {
                    None => return no(format!("{v:?} is not a CIDR")),
                    Some(c) if c.is_internet() => return no(format!("{v} is the whole internet")),
                    Some(_) if !boundary.admits(&key, v) => {
                        return no(format!("{v} is outside [audit] trusted_cidrs"))
                    }
                    Some(_) => continue,
                }
            }
            if key == "aws:principalarn" || key == "aws:sourcearn" {
                // An account wildcard in the ARN lets any account in.
                if arn_names_any_owner(v) {
                    return no(format!("{v} names any account"));
                }
                continue;
            }
            // `StringLike` with only wildcards ("*", "?*") restricts nothing.
            if like && v.chars().all(|c| c == '*' || c == '?') {
                return no(format!("{v:?} matches anyone"));
            }
            // Nor does one that fixes only the prefix every such id has ("o-*",
            // "vpc-*"): anyone can create an organisation, a VPC or an endpoint.
            if like && only_generic_prefix(&key, v) {
                return no(format!("{v:?} matches every id of its kind: anyone"));
            }
            if !boundary.admits(&key, v) {
                return no(format!(
                    "{v} is outside our organisation or networks ([audit] allowlists): access by someone else"
                ));
            }
        }
        let values = self.values.join(", ");
        if ACCOUNT_KEYS.contains(&key.as_str()) {
            (true, format!("pins the caller to {values}: access by that account, classified like a named principal"))
        } else {
            (true, format!("limits callers to {} {values}", self.key))
        }
    }
}

impl Condition {
    /// The accounts this condition pins the caller to, when it restricts by account
    /// (`aws:SourceAccount` = 123456789012, or an ARN key naming an account).
    pub fn pinned_accounts(&self) -> Vec<String> {
        let key = self.key.to_ascii_lowercase();
        if !ACCOUNT_KEYS.contains(&key.as_str()) || !self.restricts() {
            return Vec::new();
        }
        self.values
            .iter()
            .filter_map(|v| {
                let v = v.trim();
                if key.ends_with("arn") {
                    principal_account(v)
                } else {
                    (v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_owned())
                }
            })
            .collect()
    }

    /// Whether this condition, on a Deny, leaves the statement's access only to
    /// callers inside a boundary: a negated restricting key with concrete values
    /// ("deny unless aws:SourceVpc is vpc-1"). With `…IfExists` the Deny also applies
    /// when the key is absent, which restricts at least as much.
    pub fn restricts_as_deny(&self, boundary: &Boundary) -> bool {
        self.assess_as_deny(boundary).0
    }

    /// [`Condition::restricts_as_deny`], with why in words.
    pub fn assess_as_deny(&self, boundary: &Boundary) -> (bool, String) {
        let op = self.operator.to_ascii_lowercase();
        let base = op.strip_suffix("ifexists").unwrap_or(&op);
        let positive = match base {
            "stringnotequals" => "StringEquals",
            "stringnotequalsignorecase" => "StringEqualsIgnoreCase",
            "stringnotlike" => "StringLike",
            "arnnotequals" => "ArnEquals",
            "arnnotlike" => "ArnLike",
            "notipaddress" => "IpAddress",
            _ => {
                return (
                    false,
                    format!(
                        "on a Deny, {} does not confine callers to a boundary",
                        self.operator
                    ),
                )
            }
        };
        let (inside, why) = Condition {
            operator: positive.to_owned(),
            key: self.key.clone(),
            values: self.values.clone(),
        }
        .assess(boundary);
        if inside {
            let _ = why;
            (
                true,
                format!(
                    "denies every caller outside {} {}: only those keep what the Allow grants",
                    self.key,
                    self.values.join(", ")
                ),
            )
        } else {
            (false, why)
        }
    }
}

/// Whether an ARN condition value (`aws:SourceArn`, `aws:PrincipalArn`) leaves the
/// owner of the ARN open: a wildcard in its account field (`arn:aws:iam::*:role/x`,
/// `arn:aws:sns:*:*:topic`), a wildcard that swallows the account field
/// (`arn:aws:iam::*`, `arn:aws:*`), or, for S3, whose ARNs carry no account and whose
/// bucket names are global, a wildcard in the bucket name (`arn:aws:s3:::*-logs`).
fn arn_names_any_owner(value: &str) -> bool {
    let wild = |s: &str| s.contains(['*', '?']);
    let fields: Vec<&str> = value.splitn(6, ':').collect();
    if fields.len() < 6 {
        // Too few fields to name an account: a wildcard before the end covers it.
        return wild(value);
    }
    let (service, account, resource) = (fields[2], fields[4], fields[5]);
    if service.eq_ignore_ascii_case("s3") && account.chars().all(|c| c == '*' || c == '?') {
        let bucket = resource.split('/').next().unwrap_or_default();
        return bucket.is_empty() || wild(bucket);
    }
    wild(account)
}

/// Whether a `…Like` value on `key` fixes nothing but the prefix every id of that
/// kind carries (`o-*`, `o-*/*`, `vpc-*`, `vpce-?*`).
fn only_generic_prefix(key: &str, value: &str) -> bool {
    let (prefix, rest_ok): (&str, fn(char) -> bool) = match key {
        "aws:principalorgid" | "aws:sourceorgid" => ("o-", |c| c == '*' || c == '?'),
        "aws:principalorgpaths" | "aws:sourceorgpaths" => {
            ("o-", |c| c == '*' || c == '?' || c == '/')
        }
        "aws:sourcevpc" => ("vpc-", |c| c == '*' || c == '?'),
        "aws:sourcevpce" => ("vpce-", |c| c == '*' || c == '?'),
        _ => return false,
    };
    // `get`, not indexing: a value may have a multi-byte character at the cut.
    match (value.get(..prefix.len()), value.get(prefix.len()..)) {
        (Some(head), Some(rest)) => {
            !rest.is_empty() && head.eq_ignore_ascii_case(prefix) && rest.chars().all(rest_ok)
        }
        _ => false,
    }
}

/// `*:*` (or `**:*`, `*:**`): every action of every service, as `*` is.
fn every_service_every_action(pattern: &str) -> bool {
    pattern
        .trim()
        .split_once(':')
        .is_some_and(|(service, action)| {
            !service.is_empty()
                && !action.is_empty()
                && service.chars().all(|c| c == '*')
                && action.chars().all(|c| c == '*')
        })
}

pub use guardrail_model::glob::wildcard_match;

impl Statement {
    fn matches_action(&self, action: &str) -> bool {
        match (&self.action, &self.not_action) {
            (Some(list), _) => list.iter().any(|p| wildcard_match(p, action, true)),
            (None, Some(list)) => !list.iter().any(|p| wildcard_match(p, action, true)),
            (None, None) => false,
        }
    }

    fn matches_resource(&self, resource: &str) -> bool {
        match (&self.resource, &self.not_resource) {
            (Some(list), _) => list.iter().any(|p| wildcard_match(p, resource, false)),
            (None, Some(list)) => !list.iter().any(|p| wildcard_match(p, resource, false)),
            // Resource policies (bucket, key, trust) may omit Resource: the resource
            // they are attached to.
            (None, None) => true,
        }
    }

    /// Whether the statement applies to anyone at all: `Principal: "*"`,
    /// `{"AWS": "*"}`, or an Allow with `NotPrincipal` (everyone but a few).
    pub fn is_anonymous(&self) -> bool {
        if self.not_principal.is_some() && self.effect == Effect::Allow {
            return true;
        }
        match &self.principal {
            Some(Principals::Any) => true,
            Some(Principals::Map(m)) => m
                .get("AWS")
                .is_some_and(|v| v.iter().any(|p| p.trim() == "*")),
            None => false,
        }
    }

    pub fn is_restricted(&self, boundary: &Boundary) -> bool {
        self.conditions.iter().any(|c| c.restricts_in(boundary))
    }

    /// Whether this statement's actions include every action matched by `pattern`
    /// (`deny.covers_action("s3:Get*")` is true for a Deny on `s3:*`).
    fn covers_action(&self, pattern: &str) -> bool {
        match (&self.action, &self.not_action) {
            (Some(list), _) => list.iter().any(|p| wildcard_match(p, pattern, true)),
            // A NotAction Deny covers a pattern when none of its exceptions could
            // match inside that pattern.
            (None, Some(list)) => !list
                .iter()
                .any(|p| wildcard_match(pattern, p, true) || wildcard_match(p, pattern, true)),
            (None, None) => false,
        }
    }

    fn covers_resource(&self, pattern: &str) -> bool {
        match (&self.resource, &self.not_resource) {
            (Some(list), _) => list.iter().any(|p| wildcard_match(p, pattern, false)),
            (None, Some(list)) => !list
                .iter()
                .any(|p| wildcard_match(pattern, p, false) || wildcard_match(p, pattern, false)),
            (None, None) => true,
        }
    }

    /// For an Allow with NotAction: whether what it leaves allowed includes every
    /// action of `service` (`iam`). An exception whose service part is a wildcard
    /// (`*:Get*`) may reach into any service, so it counts against every one.
    fn remainder_includes(&self, service: &str) -> bool {
        let all = format!("{service}:*");
        self.not_action.as_ref().is_some_and(|except| {
            !except.iter().any(|p| {
                let p = p.trim();
                let wild_service = p
                    .split_once(':')
                    .is_none_or(|(svc, _)| svc.contains(['*', '?']));
                wild_service || wildcard_match(p, &all, true) || wildcard_match(&all, p, true)
            })
        })
    }

    fn action_patterns(&self) -> Vec<String> {
        match (&self.action, &self.not_action) {
            (Some(list), _) => list.clone(),
            // NotAction Allows grant (nearly) everything; treat as "*".
            (None, Some(_)) => vec!["*".to_owned()],
            (None, None) => Vec::new(),
        }
    }

    fn resource_patterns(&self) -> Vec<String> {
        match (&self.resource, &self.not_resource) {
            (Some(list), _) => list.clone(),
            // `NotResource: "*"` excludes every resource: the statement grants nothing.
            (None, Some(list)) if list.iter().any(|r| r.trim() == "*") => Vec::new(),
            // Everything but a few resources: judged as every resource (conservative).
            _ => vec!["*".to_owned()],
        }
    }
}

impl Policy {
    /// Parses a policy document (already decoded: see `guardrail_model::policy`).
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(s @ Value::Object(_)) => vec![s],
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(format!(
                    "Statement must be an object or a list, found {other}"
                ))
            }
        };
        let mut out = Vec::with_capacity(statements.len());
        for (i, s) in statements.into_iter().enumerate() {
            let Value::Object(m) = s else {
                return Err(format!("Statement[{i}] is not an object"));
            };
            let effect = match m.get("Effect").and_then(Value::as_str) {
                Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
                Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
                other => {
                    return Err(format!(
                        "Statement[{i}] has Effect {other:?}; expected Allow or Deny"
                    ))
                }
            };
            let mut conditions = Vec::new();
            if let Some(Value::Object(ops)) = m.get("Condition") {
                for (operator, keys) in ops {
                    if let Value::Object(keys) = keys {
                        for (key, values) in keys {
                            conditions.push(Condition {
                                operator: operator.clone(),
                                key: key.clone(),
                                values: strings(values),
                            });
                        }
                    }
                }
            }
            out.push(Statement {
                sid: m.get("Sid").and_then(Value::as_str).map(str::to_owned),
                effect,
                principal: m.get("Principal").map(principals).transpose()?,
                not_principal: m.get("NotPrincipal").map(principals).transpose()?,
                action: m.get("Action").map(strings),
                not_action: m.get("NotAction").map(strings),
                resource: m.get("Resource").map(strings),
                not_resource: m.get("NotResource").map(strings),
                conditions,
            });
        }
        Ok(Policy {
            statements: out,
            boundary: Boundary::default(),
        })
    }

    fn denies_all_of(&self, allow: &Statement, anonymous_only: bool) -> bool {
        let actions = allow.action_patterns();
        let resources = allow.resource_patterns();
        self.statements.iter().any(|d| {
            d.effect == Effect::Deny
                && d.conditions.is_empty()
                && (!anonymous_only || d.principal.is_none() || d.is_anonymous())
                && actions.iter().all(|a| d.covers_action(a))
                && resources.iter().all(|r| d.covers_resource(r))
        })
    }

    /// Whether a conditional Deny for everyone limits `allow` to callers inside a
    /// boundary (Deny unless the caller's VPC, endpoint, network, organisation or
    /// account is one named): then what the Allow opens is not open to everyone.
    fn bounded_by_deny(&self, allow: &Statement) -> bool {
        let actions = allow.action_patterns();
        let resources = allow.resource_patterns();
        self.statements.iter().any(|d| {
            d.effect == Effect::Deny
                && !d.conditions.is_empty()
                && d.conditions
                    .iter()
                    .all(|c| c.restricts_as_deny(&self.boundary))
                && (d.principal.is_none() || d.is_anonymous())
                && actions.iter().all(|a| d.covers_action(a))
                && resources.iter().all(|r| d.covers_resource(r))
        })
    }

    /// Identity-policy question: is `action` on `resource` allowed by some Allow and not
    /// removed by an unconditional Deny? (Conditions on the Allow are not evaluated.)
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let allowed = self.statements.iter().any(|s| {
            s.effect == Effect::Allow && s.matches_action(action) && s.matches_resource(resource)
        });
        allowed
            && !self.statements.iter().any(|s| {
                s.effect == Effect::Deny
                    && s.conditions.is_empty()
                    && s.matches_action(action)
                    && s.matches_resource(resource)
            })
    }

    /// The Allow statements that grant `action` on `resource`, when the policy allows
    /// it at all (none when an unconditional Deny removes it).
    /// Whether some Allow statement names `action` (resources and Deny aside): a cheap
    /// first test before asking [`Policy::allows`] about each resource.
    pub fn may_allow_action(&self, action: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.matches_action(action))
    }

    pub fn granting_statements(&self, action: &str, resource: &str) -> Vec<usize> {
        if !self.allows(action, resource) {
            return Vec::new();
        }
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.effect == Effect::Allow
                    && s.matches_action(action)
                    && s.matches_resource(resource)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Allow statements granting every action of `service` (`"*"` for all services) on
    /// every resource, without a restricting condition, not cancelled by a Deny. An
    /// Allow with NotAction never grants "every action" (see
    /// [`Policy::not_action_grants`]); it grants all of one service when none of its
    /// exceptions reach into that service.
    pub fn full_access_statements(&self, service: &str) -> Vec<usize> {
        let wanted = if service == "*" {
            "*".to_owned()
        } else {
            format!("{service}:*")
        };
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let every = match (&s.action, &s.not_action) {
                    (Some(list), _) => list.iter().any(|p| {
                        wildcard_match(p, &wanted, true)
                            || (service == "*" && every_service_every_action(p))
                    }),
                    (None, Some(_)) => service != "*" && s.remainder_includes(service),
                    (None, None) => false,
                };
                s.effect == Effect::Allow
                    && every
                    && s.resource_patterns().iter().any(|r| r == "*")
                    && !s.is_restricted(&self.boundary)
                    && !self.denies_all_of(s, false)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Allow statements with NotAction, described exactly: the actions excepted, and
    /// whether what remains includes `iam:*` on every resource (then the holder can
    /// grant itself anything: administrator-equivalent).
    pub fn not_action_grants(&self) -> Vec<NotActionGrant> {
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| s.effect == Effect::Allow && s.action.is_none())
            .filter_map(|(i, s)| {
                let except = s.not_action.clone()?;
                let admin_equivalent = s.remainder_includes("iam")
                    && s.resource_patterns().iter().any(|r| r == "*")
                    && !s.is_restricted(&self.boundary)
                    && !self.denies_all_of(s, false);
                Some(NotActionGrant {
                    statement: i,
                    except,
                    admin_equivalent,
                })
            })
            .collect()
    }

    /// Resource-policy question: Allow statements open to anyone (wildcard principal
    /// or NotPrincipal) with no restricting condition, and not cancelled by an
    /// unconditional Deny for everyone.
    pub fn internet_accessible_statements(&self) -> Vec<usize> {
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.effect == Effect::Allow
                    && s.is_anonymous()
                    && !s.is_restricted(&self.boundary)
                    && !self.denies_all_of(s, true)
                    && !self.bounded_by_deny(s)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Every principal an Allow statement names (wildcards as kind `*`).
    pub fn principals(&self) -> Vec<PrincipalRef> {
        let mut out = Vec::new();
        for (i, s) in self.statements.iter().enumerate() {
            if s.effect != Effect::Allow || self.denies_all_of(s, true) {
                continue;
            }
            let restricted = s.is_restricted(&self.boundary) || self.bounded_by_deny(s);
            if s.is_anonymous() {
                out.push(PrincipalRef {
                    kind: "*".into(),
                    value: "*".into(),
                    account: None,
                    statement: i,
                    restricted,
                });
                // Anyone, pinned by a condition to named accounts, is those accounts:
                // cross-account access to be classified like a named principal. It is
                // restricted further only by the statement's other conditions.
                for (c, cond) in s.conditions.iter().enumerate() {
                    for account in cond.pinned_accounts() {
                        let others = s.conditions.iter().enumerate().any(|(o, x)| {
                            o != c
                                && x.restricts_in(&self.boundary)
                                && x.pinned_accounts().is_empty()
                        });
                        out.push(PrincipalRef {
                            kind: "condition".into(),
                            value: format!("{} {} {account}", cond.key, cond.operator),
                            account: Some(account),
                            statement: i,
                            restricted: others || self.bounded_by_deny(s),
                        });
                    }
                }
            }
            if let Some(Principals::Map(m)) = &s.principal {
                for (kind, values) in m {
                    for v in values.iter().filter(|v| v.trim() != "*") {
                        out.push(PrincipalRef {
                            kind: kind.clone(),
                            value: v.clone(),
                            account: principal_account(v),
                            statement: i,
                            restricted,
                        });
                    }
                }
            }
        }
        out
    }

    /// Principals in other accounts than `own` (AWS and Federated principals).
    pub fn cross_account_principals(&self, own: &str) -> Vec<PrincipalRef> {
        self.principals()
            .into_iter()
            .filter(|p| p.account.as_deref().is_some_and(|a| a != own))
            .collect()
    }

    /// Actions granted by Allow statements (patterns as written; NotAction as "*").
    pub fn allowed_actions(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && !self.denies_all_of(s, false))
            .flat_map(|s| s.action_patterns())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Policy {
        Policy::parse(&v).unwrap()
    }

    #[test]
    fn a_condition_pinning_a_foreign_account_is_cross_account_access() {
        let pinned = |key: &str, value: &str| {
            p(
                json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject", "Resource": "*"},
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                 "Condition": {"StringEquals": {key: value}}}]}),
            )
        };
        for (key, value) in [
            ("aws:SourceAccount", "222222222222"),
            ("aws:SourceOwner", "222222222222"),
            ("aws:PrincipalAccount", "222222222222"),
            (
                "aws:SourceArn",
                "arn:aws:cloudtrail:us-east-1:222222222222:trail/t",
            ),
            ("aws:PrincipalArn", "arn:aws:iam::222222222222:role/reader"),
        ] {
            let pol = pinned(key, value);
            assert!(pol.internet_accessible_statements().is_empty(), "{key}");
            let cross = pol.cross_account_principals("111111111111");
            assert_eq!(cross.len(), 1, "{key}: {cross:?}");
            assert_eq!(cross[0].account.as_deref(), Some("222222222222"), "{key}");
            assert!(!cross[0].restricted, "{key}: only the pin itself");
            assert!(
                pol.cross_account_principals("222222222222").is_empty(),
                "{key}: ours"
            );
        }
        // With an external id as well, the pinned account is restricted further.
        let pol = p(
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": "222222222222", "sts:ExternalId": "x-1"}}}}),
        );
        assert!(pol.cross_account_principals("111111111111")[0].restricted);
    }

    #[test]
    fn keys_about_the_resource_or_the_path_do_not_restrict_who() {
        for (key, value) in [
            ("aws:ResourceOrgID", "o-abc123"),
            ("aws:ResourceAccount", "111111111111"),
            ("kms:ViaService", "s3.us-east-1.amazonaws.com"),
            ("aws:CalledVia", "athena.amazonaws.com"),
        ] {
            let pol = p(
                json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"StringEquals": {key: value}}}}),
            );
            assert_eq!(pol.internet_accessible_statements(), vec![0], "{key}");
        }
        // kms:ViaService with kms:CallerAccount: the account restricts.
        let pol = p(
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": "111111111111"}}}}),
        );
        assert!(pol.internet_accessible_statements().is_empty());
    }

    #[test]
    fn a_deny_unless_inside_a_boundary_bounds_an_open_allow() {
        let bounded = |cond: Value| {
            p(json!({"Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], "Condition": cond}
            ]}))
        };
        for cond in [
            json!({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}),
            json!({"StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}),
            json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            json!({"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}),
        ] {
            let pol = bounded(cond.clone());
            assert!(pol.internet_accessible_statements().is_empty(), "{cond}");
            assert!(pol.principals()[0].restricted, "{cond}");
        }
        for open in [
            json!({"Bool": {"aws:SecureTransport": "false"}}),
            json!({"NotIpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            json!({"StringNotEquals": {"aws:ResourceOrgID": "o-abc123"}}),
            json!({"StringEquals": {"aws:SourceVpc": "vpc-1"}}),
        ] {
            assert_eq!(
                bounded(open.clone()).internet_accessible_statements(),
                vec![0],
                "{open}"
            );
        }
        // A Deny that covers only part of what the Allow opens does not bound it.
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*",
             "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}}
        ]}));
        assert_eq!(pol.internet_accessible_statements(), vec![0]);
    }

    #[test]
    fn organisation_and_network_pins_restrict_only_inside_our_boundary() {
        let ours = Boundary {
            organization_ids: vec!["o-ours111".into()],
            organization_paths: vec!["o-ours111/r-ab12/ou-ab12-11111111/".into()],
            vpcs: vec!["vpc-0ours".into()],
            vpc_endpoints: vec!["vpce-0ours".into()],
            trusted_cidrs: vec!["203.0.113.0/24".into()],
        };
        let open = |cond: Value, b: &Boundary| {
            let mut pol = p(
                json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*", "Condition": cond}]}),
            );
            pol.boundary = b.clone();
            !pol.internet_accessible_statements().is_empty()
        };
        for (inside, outside) in [
            (
                json!({"StringEquals": {"aws:PrincipalOrgID": "o-ours111"}}),
                json!({"StringEquals": {"aws:PrincipalOrgID": "o-theirs9"}}),
            ),
            (
                json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-ours111/r-ab12/ou-ab12-11111111/*"}}),
                json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-theirs9/r-cd34/*"}}),
            ),
            (
                json!({"StringEquals": {"aws:SourceVpc": "vpc-0ours"}}),
                json!({"StringEquals": {"aws:SourceVpc": "vpc-0theirs"}}),
            ),
            (
                json!({"StringEquals": {"aws:SourceVpce": "vpce-0ours"}}),
                json!({"StringEquals": {"aws:SourceVpce": "vpce-0theirs"}}),
            ),
            (
                json!({"IpAddress": {"aws:SourceIp": "203.0.113.8/29"}}),
                json!({"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}}),
            ),
        ] {
            assert!(!open(inside.clone(), &ours), "ours: {inside}");
            assert!(open(outside.clone(), &ours), "theirs: {outside}");
            // Not configured: any concrete value restricts, as before.
            assert!(
                !open(outside.clone(), &Boundary::default()),
                "unconfigured: {outside}"
            );
        }
    }

    #[test]
    fn wildcards_that_leave_the_caller_open_do_not_restrict() {
        let open = |cond: Value| {
            let pol = p(
                json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*", "Condition": cond}]}),
            );
            !pol.internet_accessible_statements().is_empty()
        };
        for cond in [
            // A wildcard in (or swallowing) the account field of an ARN.
            json!({"StringLike": {"aws:SourceArn": "arn:aws:iam::*"}}),
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:alerts"}}),
            json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:*"}}),
            // S3 ARNs carry no account: a wildcard in the bucket name lets anyone in.
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*-logs"}}),
            // Only the prefix every id of the kind has.
            json!({"StringLike": {"aws:PrincipalOrgID": "o-*"}}),
            json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-*/*"}}),
            json!({"StringLike": {"aws:SourceVpc": "vpc-*"}}),
            json!({"StringLike": {"aws:SourceVpce": "vpce-?*"}}),
            // A user name is unique only inside its account.
            json!({"StringEquals": {"aws:username": "alice"}}),
        ] {
            assert!(open(cond.clone()), "{cond}");
        }
        for cond in [
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:s3:*:*:my-bucket"}}),
            json!({"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::my-bucket"}}),
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:123456789012:trail/*"}}),
            json!({"StringLike": {"aws:PrincipalOrgID": "o-abc123*"}}),
            json!({"StringEquals": {"aws:PrincipalOrgID": "o-*"}}),
            json!({"StringLike": {"aws:userid": "AROAEXAMPLEID:*"}}),
            // A multi-byte character where the prefix ends is read, not split.
            json!({"StringLike": {"aws:PrincipalOrgID": "oé*"}}),
        ] {
            assert!(!open(cond.clone()), "{cond}");
        }
    }

    #[test]
    fn star_colon_star_is_every_action() {
        for action in ["*:*", "**:*", "*:**"] {
            let pol =
                p(json!({"Statement": {"Effect": "Allow", "Action": action, "Resource": "*"}}));
            assert_eq!(pol.full_access_statements("*"), vec![0], "{action}");
        }
        for action in ["*:Get*", "s3:*", "*:"] {
            let pol =
                p(json!({"Statement": {"Effect": "Allow", "Action": action, "Resource": "*"}}));
            assert!(pol.full_access_statements("*").is_empty(), "{action}");
        }
    }

    #[test]
    fn not_resource_of_everything_grants_nothing() {
        let pol = p(json!({"Statement": {"Effect": "Allow", "Action": "*", "NotResource": "*"}}));
        assert!(pol.full_access_statements("*").is_empty(), "not admin");
        assert!(!pol.allows("s3:GetObject", "arn:aws:s3:::b/k"));
        assert!(pol.allowed_actions().is_empty() || !pol.allows("iam:CreateUser", "*"));
        // Everything but one bucket is still judged as (nearly) everything.
        let pol = p(
            json!({"Statement": {"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::logs/*"}}),
        );
        assert_eq!(pol.full_access_statements("*"), vec![0]);
    }

    #[test]
    fn double_star_and_any_case_match_actions_as_aws_does() {
        let pol = p(json!({"Statement": {"Effect": "Allow", "Action": "s3:**", "Resource": "*"}}));
        assert_eq!(pol.full_access_statements("s3"), vec![0], "s3:** is s3:*");
        assert!(pol.allows("S3:GETOBJECT", "x"));
        let pol =
            p(json!({"Statement": {"Effect": "Allow", "Action": "IAM:passrole", "Resource": "*"}}));
        assert_eq!(
            pol.granting_statements("iam:PassRole", "arn:aws:iam::1:role/r"),
            vec![0]
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("s3:*", "s3:GetObject", true));
        assert!(wildcard_match("S3:get*", "s3:GetObject", true));
        assert!(wildcard_match("s3:Get?bject", "s3:GetObject", true));
        assert!(!wildcard_match("s3:Put*", "s3:GetObject", true));
        assert!(wildcard_match("*", "", true));
        assert!(wildcard_match(
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/x/y",
            false
        ));
        assert!(
            !wildcard_match("arn:aws:s3:::B/*", "arn:aws:s3:::b/x", false),
            "resources are case-sensitive"
        );
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
    }

    #[test]
    fn allow_cancelled_by_unconditional_deny_is_not_access() {
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*"}
        ]}));
        assert!(!pol.allows("s3:GetObject", "arn:aws:s3:::b/k"));
        assert!(pol.full_access_statements("s3").is_empty());
        assert!(pol.allowed_actions().is_empty());
        // A conditional Deny (e.g. MFA) does not remove the grant for analysis purposes.
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}
        ]}));
        assert!(pol.allows("s3:GetObject", "x"));
        assert_eq!(pol.full_access_statements("s3"), vec![0]);
    }

    #[test]
    fn partial_deny_leaves_the_rest() {
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"}
        ]}));
        assert!(pol.allows("s3:GetObject", "x"));
        assert!(!pol.allows("s3:DeleteBucket", "x"));
        assert_eq!(
            pol.full_access_statements("s3"),
            vec![0],
            "a partial deny does not cover s3:*"
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let pol =
            p(json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}));
        assert!(pol.allows("s3:GetObject", "x"));
        assert!(!pol.allows("iam:CreateUser", "x"));
        assert!(
            pol.full_access_statements("*").is_empty(),
            "NotAction is never every action"
        );
        assert_eq!(
            pol.full_access_statements("s3"),
            vec![0],
            "all of s3 remains"
        );
        assert!(pol.full_access_statements("iam").is_empty());
        assert_eq!(
            pol.not_action_grants(),
            vec![NotActionGrant {
                statement: 0,
                except: vec!["iam:*".into()],
                admin_equivalent: false
            }]
        );
        for (except, admin) in [
            (json!("cloudtrail:*"), true),
            (json!(["iam:PassRole"]), false),
            (json!("*:Delete*"), false),
            (json!(["ec2:*", "s3:*"]), true),
        ] {
            let pol =
                p(json!({"Statement": {"Effect": "Allow", "NotAction": except, "Resource": "*"}}));
            assert_eq!(
                pol.not_action_grants()[0].admin_equivalent,
                admin,
                "{except}"
            );
        }
        let pol = p(
            json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}}),
        );
        assert!(pol.allows("s3:GetObject", "arn:aws:s3:::public/x"));
        assert!(!pol.allows("s3:GetObject", "arn:aws:s3:::secret/x"));
        // A NotAction Deny covering everything but iam:* does not cancel an s3 grant? It does:
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}
        ]}));
        assert!(!pol.allows("s3:GetObject", "x"));
        assert!(pol.allowed_actions().is_empty());
    }

    #[test]
    fn admin_and_service_wildcards() {
        let admin = p(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        );
        assert_eq!(admin.full_access_statements("*"), vec![0]);
        assert_eq!(admin.full_access_statements("iam"), vec![0]);
        let iam =
            p(json!({"Statement": [{"Effect": "Allow", "Action": ["iam:*"], "Resource": "*"}]}));
        assert!(iam.full_access_statements("*").is_empty());
        assert_eq!(iam.full_access_statements("iam"), vec![0]);
        let scoped = p(
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}]}),
        );
        assert!(scoped.full_access_statements("*").is_empty());
        let read = p(
            json!({"Statement": [{"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}]}),
        );
        assert!(read.full_access_statements("iam").is_empty());
    }

    #[test]
    fn principal_star_restricted_by_source_vpce_is_not_internet_accessible() {
        let pol = p(json!({"Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}
        }]}));
        assert!(pol.internet_accessible_statements().is_empty());
        assert!(pol.principals()[0].restricted);
    }

    #[test]
    fn conditions_that_do_not_restrict() {
        let open = |cond: Value| {
            let pol = p(
                json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "*", "Condition": cond}]}),
            );
            !pol.internet_accessible_statements().is_empty()
        };
        assert!(
            open(json!({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}})),
            "negated operator"
        );
        assert!(
            open(json!({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}})),
            "IfExists passes when absent"
        );
        assert!(
            open(json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})),
            "/0 is everyone"
        );
        assert!(
            open(json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::/0"]}})),
            "one /0 value opens it"
        );
        assert!(
            open(json!({"StringLike": {"aws:PrincipalOrgID": "*"}})),
            "wildcard value"
        );
        assert!(
            open(json!({"Bool": {"aws:SecureTransport": "true"}})),
            "TLS is not a restriction on who"
        );
        assert!(
            open(json!({"ForAllValues:StringEquals": {"aws:PrincipalOrgPaths": ["o-1/r-1/"]}})),
            "ForAllValues passes on empty"
        );
        assert!(
            open(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}})),
            "account wildcard"
        );
        assert!(
            open(json!({"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}})),
            "unrelated key"
        );

        for restricting in [
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            json!({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}),
            json!({"StringEquals": {"AWS:SourceAccount": "123456789012"}}),
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"}}),
            json!({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"}}),
            json!({"StringEquals": {"aws:SourceVpc": "vpc-1"}}),
            json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-1/r-1/ou-1/*"}}),
        ] {
            assert!(!open(restricting.clone()), "{restricting}");
        }
    }

    #[test]
    fn not_principal_allow_is_anonymous_and_deny_for_everyone_cancels() {
        let pol = p(
            json!({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:*"}]}),
        );
        assert_eq!(pol.internet_accessible_statements(), vec![0]);
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
        ]}));
        assert!(pol.internet_accessible_statements().is_empty());
        // A Deny for one principal does not cancel access for everyone.
        let pol = p(json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:user/x"}, "Action": "s3:*", "Resource": "*"}
        ]}));
        assert_eq!(pol.internet_accessible_statements(), vec![0]);
    }

    #[test]
    fn principals_and_cross_account() {
        let trust = p(json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::999999999999:root", "111111111111"], "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111111111111:saml-provider/okta"}, "Action": "sts:AssumeRoleWithSAML",
             "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}
        ]}));
        let all = trust.principals();
        assert_eq!(all.len(), 4);
        let cross = trust.cross_account_principals("111111111111");
        assert_eq!(cross.len(), 1);
        assert_eq!(cross[0].account.as_deref(), Some("999999999999"));
        assert!(!cross[0].restricted);
        let with_external_id = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "abc"}}}]}),
        );
        assert!(with_external_id.cross_account_principals("111111111111")[0].restricted);
        // Plain-string principal means an AWS principal.
        let s = p(
            json!({"Statement": [{"Effect": "Allow", "Principal": "arn:aws:iam::222222222222:root", "Action": "s3:*"}]}),
        );
        assert_eq!(s.principals()[0].kind, "AWS");
    }

    #[test]
    fn broken_policies_are_errors() {
        assert!(Policy::parse(&json!({"Statement": [{"Effect": "Maybe"}]})).is_err());
        assert!(Policy::parse(&json!({"Statement": "x"})).is_err());
        assert!(Policy::parse(&json!({"Statement": [1]})).is_err());
        assert!(
            Policy::parse(&json!({"Statement": [{"Effect": "Allow", "Principal": 5}]})).is_err()
        );
        assert_eq!(Policy::parse(&json!({})).unwrap().statements.len(), 0);
    }
}
