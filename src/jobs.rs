//! What the scheduler's sweep jobs are: one per `[[sources]]` entry, split into one per
//! account where a source sweeps several (configured accounts, or an organisation's,
//! discovered by the source's own job) so that any number of workers on one database
//! share the accounts between them. The storage layer leases the rows
//! (`guardrail_storage::Store::claim_job`); this module decides what the rows are and
//! what running one means.

use chrono::{DateTime, Duration, Utc};
use guardrail_storage::{JobRow, JobSpec};
use guardrail_watchers::aws::{AwsAccount, AwsSweep, AwsTarget};
use guardrail_watchers::Watcher;

use crate::config::{Config, SourceConfig};
use crate::pipeline::{aws_source_target, source_watcher};

/// What running one job means.
pub enum Work {
    /// Sweep into a sweep record named `label` (a source's first sweep under a label is
    /// its notification baseline), then audit.
    Sweep {
        watcher: Box<dyn Watcher>,
        label: String,
        aws: Option<AwsTarget>,
    },
    /// List the organisation's accounts and make them this source's account jobs.
    Discover { sweep: AwsSweep },
}

/// A digest of the source's definition: an edited source is due at once.
pub fn definition(source: &SourceConfig) -> String {
    // The SHA-256 of the definition as written (not JSON: any field edit counts).
    guardrail_model::content_hash(&format!("{source:?}"))
}

fn interval(source: &SourceConfig) -> Duration {
    Duration::milliseconds((source.interval_seconds * 1000.0).round() as i64)
}

/// Whether the source's accounts come from its organisation (discovered by its own
/// job at every interval).
fn discovers(config: &Config, source: &SourceConfig) -> bool {
    source.aws.is_some() && aws_source_target(config, source).organization.is_some()
}

/// The job of `source` for `account` ('' = the whole source): `source` or
/// `source/account`, with the source's definition and interval.
fn spec(
    source: &SourceConfig,
    account: &str,
    role_arn: Option<String>,
    first_due: DateTime<Utc>,
) -> JobSpec {
    JobSpec {
        job: if account.is_empty() {
            source.name.clone()
        } else {
            format!("{}/{account}", source.name)
        },
        source: source.name.clone(),
        account: account.to_owned(),
        role_arn,
        definition: definition(source),
        interval: interval(source),
        first_due,
    }
}

/// The jobs of `sources` as this configuration defines them. An organisation's account
/// jobs are whatever its last discovery found (`stored`), with today's definition.
/// At start-up (`spread`) jobs new to the database are spread over a minute.
pub fn specs(
    config: &Config,
    sources: &[SourceConfig],
    stored: &[JobRow],
    spread: bool,
    now: DateTime<Utc>,
) -> Vec<JobSpec> {
    let n = sources.len().max(1) as i32;
    let mut out = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let first_due = if spread {
            now + Duration::seconds(60) * i as i32 / n
        } else {
            now
        };
        if source.aws.is_none() {
            out.push(spec(source, "", None, first_due));
        } else if discovers(config, source) {
            out.push(spec(source, "", None, first_due));
            out.extend(
                stored
                    .iter()
                    .filter(|j| j.source == source.name && !j.account.is_empty())
                    .map(|j| spec(source, &j.account, j.role_arn.clone(), first_due)),
            );
        } else {
            let target = aws_source_target(config, source);
            if target.accounts.is_empty() {
                // The base credentials' own account.
                out.push(spec(source, "", None, first_due));
            }
            out.extend(
                target
                    .accounts
                    .iter()
                    .filter_map(|a| Some(spec(source, a.id.as_ref()?, None, first_due))),
            );
        }
    }
    out
}

/// The source's account jobs for what its organisation's discovery found, plus the
/// discovery job itself; new accounts are due at once.
pub fn discovered_specs(
    source: &SourceConfig,
    accounts: &[AwsAccount],
    now: DateTime<Utc>,
) -> Vec<JobSpec> {
    let mut out = vec![spec(source, "", None, now)];
    out.extend(
        accounts
            .iter()
            .filter_map(|a| Some(spec(source, a.id.as_ref()?, a.role_arn.clone(), now))),
    );
    out
}

/// What running the job `row` of `source` means.
pub fn work(config: &Config, source: &SourceConfig, row: &JobRow) -> anyhow::Result<Work> {
    if source.aws.is_none() || (row.account.is_empty() && !discovers(config, source)) {
        let watcher = source_watcher(config, source)?;
        let label = watcher.describe();
        let aws = source
            .aws
            .as_ref()
            .map(|_| aws_source_target(config, source));
        return Ok(Work::Sweep {
            watcher,
            label,
            aws,
        });
    }
    let mut target = aws_source_target(config, source);
    if row.account.is_empty() {
        return Ok(Work::Discover {
            sweep: AwsSweep::new(target).map_err(anyhow::Error::msg)?,
        });
    }
    let org = target.organization.take();
    let account = target
        .accounts
        .iter()
        .find(|a| a.id.as_deref() == Some(row.account.as_str()))
        .cloned()
        .unwrap_or_else(|| AwsAccount {
            id: Some(row.account.clone()),
            role_arn: row.role_arn.clone(),
            external_id: org.as_ref().and_then(|o| o.external_id.clone()),
            session_name: None,
            regions: Vec::new(),
        });
    target.accounts = vec![account];
    let sweep = AwsSweep::new(target.clone()).map_err(anyhow::Error::msg)?;
    let label = format!("{} [account {}]", sweep.describe(), row.account);
    Ok(Work::Sweep {
        watcher: Box::new(sweep),
        label,
        aws: Some(target),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guardrail.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn a_source_over_several_accounts_is_one_job_per_account() {
        let c = config(
            r#"
[accounts."111111111111"]
classification = "ours"
role_arn = "arn:aws:iam::111111111111:role/audit"
[accounts."222222222222"]
classification = "ours"
role_arn = "arn:aws:iam::222222222222:role/audit"
[[sources]]
name = "apis"
aws = {}
[[sources]]
name = "one"
aws = { accounts = ["222222222222"] }
[[sources]]
name = "dir"
path = "/tmp/deliveries"
"#,
        );
        let now = Utc::now();
        let jobs: Vec<String> = specs(&c, &c.sources, &[], false, now)
            .into_iter()
            .map(|s| s.job)
            .collect();
        assert_eq!(
            jobs,
            [
                "apis/111111111111",
                "apis/222222222222",
                "one/222222222222",
                "dir"
            ]
        );
    }

    #[test]
    fn an_organisation_source_keeps_the_accounts_its_last_discovery_found() {
        let c = config(
            r#"
[aws]
organization = { role_name = "audit" }
[[sources]]
name = "org"
aws = {}
"#,
        );
        let now = Utc::now();
        let found = [AwsAccount {
            id: Some("333333333333".into()),
            role_arn: Some("arn:aws:iam::333333333333:role/audit".into()),
            ..Default::default()
        }];
        let discovered = discovered_specs(&c.sources[0], &found, now);
        assert_eq!(discovered.len(), 2);
        let stored: Vec<JobRow> = discovered
            .iter()
            .map(|s| JobRow {
                job: s.job.clone(),
                source: s.source.clone(),
                account: s.account.clone(),
                role_arn: s.role_arn.clone(),
                definition: s.definition.clone(),
                interval_ms: 300_000,
                due_at: now.naive_utc(),
                leased_by: None,
                lease_until: None,
                started_at: None,
                finished_at: None,
                runs: 0,
                takeovers: 0,
                last_status: None,
                last_message: None,
            })
            .collect();
        let again = specs(&c, &c.sources, &stored, false, now);
        assert_eq!(again, discovered);
        match work(&c, &c.sources[0], &stored[1]).unwrap() {
            Work::Sweep { label, aws, .. } => {
                assert!(label.ends_with("[account 333333333333]"), "{label}");
                let t = aws.unwrap();
                assert!(t.organization.is_none());
                assert_eq!(t.accounts[0].role_arn, found[0].role_arn);
            }
            Work::Discover { .. } => panic!("an account job sweeps"),
        }
        assert!(matches!(
            work(&c, &c.sources[0], &stored[0]).unwrap(),
            Work::Discover { .. }
        ));
    }
}
