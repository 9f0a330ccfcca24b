//! Per-deployment judgement without editing rules: score overrides and disabled
//! checks per account pattern, and suppressions by rule/account/resource glob.

use serde::Deserialize;

use crate::engine::{severity_for, RawFinding};
use crate::helpers::policy::wildcard_match;

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
        }
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
