//! Per-deployment judgement without editing rules: score overrides and disabled
//! checks per account pattern, and suppressions by rule/account/resource glob.

use serde::Deserialize;

use crate::engine::{severity_for, RawFinding};
use crate::helpers::policy::wildcard_match;
use crate::network::Exposure;

fn star() -> String {
    "*".into()
}

/// `[[audit.overrides]]`: for rules matching `rule` in accounts matching `account`,
/// use `score` instead of the rule's, or skip the rule when `disabled`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub rule: String,
    #[serde(default = "star")]
    pub account: String,
    #[serde(default)]
    pub score: Option<i64>,
    #[serde(default)]
    pub disabled: bool,
}

/// `[[audit.suppressions]]`: findings of matching rules, accounts and resources (id,
/// name or ARN) are recorded as suppressed instead of open.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    #[serde(default = "star")]
    pub rule: String,
    #[serde(default = "star")]
    pub account: String,
    #[serde(default = "star")]
    pub resource: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    #[serde(default)]
    pub internal_cidrs: Vec<String>,
    /// Our organisation ids (`o-...`): a condition pinning callers to them restricts.
    #[serde(default)]
    pub organization_ids: Vec<String>,
    /// Our organisation paths (`o-.../r-.../ou-.../`).
    #[serde(default)]
    pub organization_paths: Vec<String>,
    /// Our VPCs and VPC endpoints.
    #[serde(default)]
    pub vpcs: Vec<String>,
    #[serde(default)]
    pub vpc_endpoints: Vec<String>,
    /// Networks we trust as callers' source addresses (office ranges, NAT gateways).
    #[serde(default)]
    pub trusted_cidrs: Vec<String>,
    #[serde(default)]
    pub overrides: Vec<Override>,
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    /// Every item is judged again at least this often even when nothing changed, so
    /// rules that depend on time (key age, expiry, last use) stay true. Default 24.
    #[serde(default)]
    pub recheck_hours: Option<u64>,
    /// A rule that runs out of its per-evaluation budget this many times in one audit
    /// pass is suspended for the rest of the pass. Default 2.
    #[serde(default)]
    pub rule_budget_exhaustions: Option<u32>,
    /// A rule whose evaluations add up to more than this in one pass is suspended for
    /// the rest of it. Default 60.
    #[serde(default)]
    pub rule_seconds_per_pass: Option<u64>,
    /// `[audit.exposure]`: scores raised for what the internet reaches, lowered for
    /// what nothing uses.
    #[serde(default)]
    pub exposure: ExposureQualifiers,
}

/// Edge-facing qualifiers. A finding on a resource reachable from the internet
/// (`facts.reachable_from_internet`) needs attention sooner: its score is raised by
/// `raise`; one on a resource nothing uses (a security group attached to nothing, a
/// stopped instance) is lowered by `lower`. Both are stated on the finding and
/// recomputed at every audit, so a route table edit moves the score back.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureQualifiers {
    pub raise: i64,
    pub lower: i64,
    /// `[[audit.exposure.rules]]`: per rule (glob) values; the last match wins.
    pub rules: Vec<ExposureRule>,
}

impl Default for ExposureQualifiers {
    fn default() -> Self {
        ExposureQualifiers {
            raise: 2,
            lower: 2,
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExposureRule {
    pub rule: String,
    #[serde(default)]
    pub raise: Option<i64>,
    #[serde(default)]
    pub lower: Option<i64>,
}

impl AuditSettings {
    /// Our organisation and networks, as the policy analysis takes them.
    pub fn boundary(&self) -> crate::helpers::policy::Boundary {
        crate::helpers::policy::Boundary {
            organization_ids: self.organization_ids.clone(),
            organization_paths: self.organization_paths.clone(),
            vpcs: self.vpcs.clone(),
            vpc_endpoints: self.vpc_endpoints.clone(),
            trusted_cidrs: self.trusted_cidrs.clone(),
        }
    }

    pub fn recheck(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.recheck_hours.unwrap_or(24).saturating_mul(3600))
    }

    pub fn pass_limits(&self) -> crate::PassLimits {
        let d = crate::PassLimits::default();
        crate::PassLimits {
            max_exhausted: self
                .rule_budget_exhaustions
                .unwrap_or(d.max_exhausted)
                .max(1),
            max_rule_time: self
                .rule_seconds_per_pass
                .map_or(d.max_rule_time, std::time::Duration::from_secs),
        }
    }
}

/// A finding after settings were applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub finding: RawFinding,
    pub rule_score: i64,
    pub suppressed_by: Option<String>,
    /// A score override decided the score: exposure qualifiers leave it alone (an
    /// operator's number is the final word).
    pub overridden: bool,
}

impl AuditSettings {
    /// Checks the settings make sense, naming the entry and the fix.
    pub fn validate(&self) -> Result<(), String> {
        for (i, o) in self.overrides.iter().enumerate() {
            if let Some(s) = o.score {
                if !(0..=10).contains(&s) {
                    return Err(format!(
                        "audit.overrides[{i}] (rule {:?}): score {s} is outside 0..=10",
                        o.rule
                    ));
                }
            }
            if o.score.is_none() && !o.disabled {
                return Err(format!(
                    "audit.overrides[{i}] (rule {:?}): give a score or disabled = true",
                    o.rule
                ));
            }
        }
        if self.recheck_hours == Some(0) {
            return Err(
                "audit.recheck_hours = 0: give a number of hours of at least 1 (default 24)".into(),
            );
        }
        for (i, c) in self.internal_cidrs.iter().enumerate() {
            if crate::helpers::cidr::Cidr::parse(c).is_none() {
                return Err(format!(
                    "audit.internal_cidrs[{i}]: {c:?} is not a CIDR (like 10.0.0.0/8)"
                ));
            }
        }
        for (i, c) in self.trusted_cidrs.iter().enumerate() {
            if crate::helpers::cidr::Cidr::parse(c).is_none() {
                return Err(format!(
                    "audit.trusted_cidrs[{i}]: {c:?} is not a CIDR (like 203.0.113.0/24)"
                ));
            }
        }
        for (field, list, prefix, example) in [
            (
                "organization_ids",
                &self.organization_ids,
                "o-",
                "o-a1b2c3d4e5",
            ),
            (
                "organization_paths",
                &self.organization_paths,
                "o-",
                "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/",
            ),
            ("vpcs", &self.vpcs, "vpc-", "vpc-0a1b2c3d"),
            (
                "vpc_endpoints",
                &self.vpc_endpoints,
                "vpce-",
                "vpce-0a1b2c3d",
            ),
        ] {
            for (i, v) in list.iter().enumerate() {
                if !v.trim().starts_with(prefix) {
                    return Err(format!(
                        "audit.{field}[{i}]: {v:?} does not look like one (like {example:?})"
                    ));
                }
            }
        }
        let steps = std::iter::once((
            "audit.exposure".to_owned(),
            Some(self.exposure.raise),
            Some(self.exposure.lower),
        ))
        .chain(self.exposure.rules.iter().enumerate().map(|(i, r)| {
            (
                format!("audit.exposure.rules[{i}] (rule {:?})", r.rule),
                r.raise,
                r.lower,
            )
        }));
        for (at, raise, lower) in steps {
            for (name, v) in [("raise", raise), ("lower", lower)] {
                if let Some(v) = v.filter(|v| !(0..=10).contains(v)) {
                    return Err(format!(
                        "{at}: {name} = {v} is outside 0..=10 (0 turns it off)"
                    ));
                }
            }
        }
        for (i, s) in self.suppressions.iter().enumerate() {
            if s.reason.trim().is_empty() {
                return Err(format!(
                    "audit.suppressions[{i}]: a suppression needs a reason"
                ));
            }
        }
        Ok(())
    }

    pub fn disabled(&self, rule_id: &str, account: &str) -> bool {
        self.overrides.iter().any(|o| {
            o.disabled
                && wildcard_match(&o.rule, rule_id, false)
                && wildcard_match(&o.account, account, false)
        })
    }

    /// Applies score overrides (the last matching one wins) and suppressions.
    pub fn judge(&self, rule_id: &str, account: &str, resources: &[&str], f: RawFinding) -> Judged {
        let rule_score = f.score;
        let mut finding = f;
        let mut overridden = false;
        if let Some(score) = self
            .overrides
            .iter()
            .filter(|o| {
                wildcard_match(&o.rule, rule_id, false)
                    && wildcard_match(&o.account, account, false)
            })
            .filter_map(|o| o.score)
            .next_back()
        {
            finding.score = score;
            finding.severity = severity_for(score).to_owned();
            overridden = true;
        }
        let suppressed_by = self
            .suppressions
            .iter()
            .find(|s| {
                wildcard_match(&s.rule, rule_id, false)
                    && wildcard_match(&s.account, account, false)
                    && resources
                        .iter()
                        .any(|r| wildcard_match(&s.resource, r, false))
            })
            .map(|s| format!("{}:{}:{} ({})", s.rule, s.account, s.resource, s.reason));
        Judged {
            finding,
            rule_score,
            suppressed_by,
            overridden,
        }
    }

    /// Applies the exposure qualifiers to a judged finding of `rule_id` on an item
    /// with that exposure, saying so in the finding's detail.
    pub fn qualify(&self, rule_id: &str, exposure: Option<&Exposure>, j: &mut Judged) {
        let Some(e) = exposure else { return };
        if j.overridden {
            return;
        }
        let q = &self.exposure;
        let (mut raise, mut lower) = (q.raise, q.lower);
        for r in q
            .rules
            .iter()
            .filter(|r| wildcard_match(&r.rule, rule_id, false))
        {
            raise = r.raise.unwrap_or(raise);
            lower = r.lower.unwrap_or(lower);
        }
        let old = j.finding.score;
        if old <= 0 {
            return;
        }
        let (new, why) = if e.reachable && raise > 0 {
            let through = e
                .gateway()
                .map(|g| format!(" through {g}"))
                .unwrap_or_default();
            (
                (old + raise).min(10),
                format!(
                    "reachable from the internet on {}{through} ([audit.exposure] raise = {raise})",
                    e.ports_text()
                ),
            )
        } else if !e.in_use && lower > 0 {
            let what = e
                .blocked
                .clone()
                .unwrap_or_else(|| "nothing uses it".into());
            (
                (old - lower).max(1),
                format!("nothing uses it: {what} ([audit.exposure] lower = {lower})"),
            )
        } else {
            return;
        };
        if new == old {
            return;
        }
        j.finding.score = new;
        j.finding.severity = severity_for(new).to_owned();
        let line = format!("Score {old} → {new}: {why}.");
        j.finding.detail = if j.finding.detail.is_empty() {
            line
        } else {
            format!("{}\n\n{line}", j.finding.detail)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(score: i64) -> RawFinding {
        RawFinding {
            key: "k".into(),
            title: "t".into(),
            score,
            severity: severity_for(score).into(),
            detail: String::new(),
            remediation: String::new(),
            kind: "state".into(),
        }
    }

    #[test]
    fn overrides_disable_and_suppress() {
        let s = AuditSettings {
            internal_cidrs: vec!["10.0.0.0/8".into()],
            overrides: vec![
                Override {
                    rule: "s3/*".into(),
                    account: "2222*".into(),
                    score: Some(1),
                    disabled: false,
                },
                Override {
                    rule: "s3/bucket_logging".into(),
                    account: "*".into(),
                    score: None,
                    disabled: true,
                },
            ],
            suppressions: vec![Suppression {
                rule: "ec2/sg_internet_ingress".into(),
                account: "*".into(),
                resource: "*web*".into(),
                reason: "public web tier".into(),
            }],
            ..AuditSettings::default()
        };
        assert!(s.validate().is_ok());
        assert!(s.disabled("s3/bucket_logging", "111111111111"));
        assert!(!s.disabled("s3/bucket_encryption", "111111111111"));
        let j = s.judge("s3/bucket_encryption", "222222222222", &["b"], raw(3));
        assert_eq!(
            (j.finding.score, j.rule_score, j.finding.severity.as_str()),
            (1, 3, "low")
        );
        let j = s.judge("s3/bucket_encryption", "111111111111", &["b"], raw(3));
        assert_eq!(j.finding.score, 3);
        let j = s.judge("ec2/sg_internet_ingress", "1", &["sg-1", "web"], raw(2));
        assert!(j.suppressed_by.unwrap().contains("public web tier"));
        let j = s.judge("ec2/sg_internet_ingress", "1", &["sg-2", "db"], raw(2));
        assert!(j.suppressed_by.is_none());
    }

    #[test]
    fn exposure_raises_what_the_internet_reaches_and_lowers_what_nothing_uses() {
        let s = AuditSettings {
            exposure: ExposureQualifiers {
                rules: vec![ExposureRule {
                    rule: "ec2/sg_default_*".into(),
                    raise: Some(0),
                    lower: None,
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(s.validate().is_ok());
        let reachable = Exposure {
            reachable: true,
            in_use: true,
            ports: vec![crate::network::PortRange {
                protocol: "tcp".into(),
                from: 22,
                to: 22,
            }],
            path: vec!["subnet-1: route table rtb-1 sends 0.0.0.0/0 to igw-9".into()],
            gateway: Some("igw-9".into()),
            ..Default::default()
        };
        let judged = |rule: &str, e: &Exposure, score: i64| {
            let mut j = s.judge(rule, "1", &["x"], raw(score));
            s.qualify(rule, Some(e), &mut j);
            j
        };
        let j = judged("ec2/sg_admin_ports_open", &reachable, 7);
        assert_eq!((j.finding.score, j.rule_score), (9, 7));
        assert_eq!(j.finding.severity, severity_for(9));
        assert!(
            j.finding
                .detail
                .contains("Score 7 → 9: reachable from the internet on tcp 22 through igw-9"),
            "{}",
            j.finding.detail
        );
        assert_eq!(
            judged("ec2/sg_admin_ports_open", &reachable, 9)
                .finding
                .score,
            10
        );
        // A score override is the final word.
        let overriding = AuditSettings {
            overrides: vec![Override {
                rule: "ec2/*".into(),
                account: "*".into(),
                score: Some(4),
                disabled: false,
            }],
            ..Default::default()
        };
        let mut j = overriding.judge("ec2/sg_admin_ports_open", "1", &["x"], raw(7));
        overriding.qualify("ec2/sg_admin_ports_open", Some(&reachable), &mut j);
        assert_eq!(j.finding.score, 4);
        // Per rule: turned off.
        assert_eq!(
            judged("ec2/sg_default_has_rules", &reachable, 4)
                .finding
                .score,
            4
        );
        let unused = Exposure {
            blocked: Some("sg-1 is attached to no network interface in the inventory".into()),
            ..Default::default()
        };
        let j = judged("ec2/sg_admin_ports_open", &unused, 7);
        assert_eq!(j.finding.score, 5);
        assert!(j
            .finding
            .detail
            .contains("Score 7 → 5: nothing uses it: sg-1 is attached to no network interface"));
        assert_eq!(
            judged("ec2/sg_admin_ports_open", &unused, 2).finding.score,
            1
        );
        // In use, not reachable: unchanged, nothing said.
        let private = Exposure {
            in_use: true,
            ..Default::default()
        };
        let j = judged("ec2/sg_admin_ports_open", &private, 7);
        assert_eq!((j.finding.score, j.finding.detail.as_str()), (7, ""));
        let bad = AuditSettings {
            exposure: ExposureQualifiers {
                raise: 11,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("audit.exposure: raise = 11"));
    }

    #[test]
    fn bad_settings_name_the_entry() {
        let bad = AuditSettings {
            overrides: vec![Override {
                rule: "x".into(),
                account: "*".into(),
                score: Some(11),
                disabled: false,
            }],
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("audit.overrides[0]"));
        let bad = AuditSettings {
            internal_cidrs: vec!["10.0.0/8x".into()],
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("audit.internal_cidrs[0]"));
    }
}
