//! The TOML configuration file: database, accounts, audit settings. Every key is
//! checked; a typo or a bad value is an error naming the key and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use guardrail_auditors::{AccountInfo, AuditSettings};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Known accounts by id: `[accounts."111111111111"] name = "prod", classification = "ours"`.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub notify: guardrail_notify::NotifySettings,
    /// How to reach AWS for `sweep` without `--source`/`--aws`.
    #[serde(default)]
    pub aws: AwsConfig,
    #[serde(default)]
    pub server: guardrail_server::ServerSettings,
    /// What the scheduler of `serve` sweeps, and how often.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// `[ingest]`: limits on what one delivery item may cost.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// `[workers]`: how processes sharing one database lease sweep jobs.
    #[serde(default)]
    pub workers: WorkersConfig,
    /// A rule directory to use instead of the pack built into the binary (relative
    /// paths are relative to this file); `--rules` overrides it.
    #[serde(default)]
    pub rules: Option<PathBuf>,
}

/// `[workers] lease_seconds = 60`: a worker holds a sweep job (or the audit turn) for
/// this long past its last heartbeat (every third of it); a worker that stops beating
/// loses its jobs to the others after this. Every worker must read the same file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// Jobs one worker runs at once (accounts swept side by side; each job's calls keep
    /// their own per-(account, region, service) limits).
    #[serde(default = "default_jobs_at_once")]
    pub jobs_at_once: usize,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            lease_seconds: default_lease_seconds(),
            jobs_at_once: default_jobs_at_once(),
        }
    }
}

fn default_jobs_at_once() -> usize {
    1
}

fn default_lease_seconds() -> u64 {
    60
}

impl WorkersConfig {
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.lease_seconds.clamp(3, 86_400) as i64) // validated
    }
}

/// `[ingest] max_item_bytes = 16777216`: an AWS Config item larger than this is
/// reported and skipped; the rest of its file is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub max_item_bytes: Option<usize>,
}

impl IngestConfig {
    pub fn max_item_bytes(&self) -> usize {
        self.max_item_bytes
            .unwrap_or(guardrail_watchers::config_deliveries::MAX_ITEM_BYTES)
    }
}

/// `[aws]`: the base credentials and defaults for the accounts swept through the APIs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Regions of accounts that name none; `["all"]` = every enabled region; empty
    /// (default) = the SDK's region chain: AWS_REGION, AWS_DEFAULT_REGION, the
    /// profile's region, else us-east-1.
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    /// Profile of the base credentials (default: the standard credential chain).
    pub profile: Option<String>,
    /// An emulator or VPC endpoint; AWS_ENDPOINT_URL works too.
    pub endpoint_url: Option<String>,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Calls in flight at once per (account, region, service).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// New calls a second per (account, region, service) at most (default: no cap;
    /// the pace slows down on its own when AWS throttles).
    pub max_calls_per_second: Option<f64>,
    /// Services to sweep (`guardrail_watchers::aws::SERVICES`; default: all but config).
    #[serde(default)]
    pub only: Vec<String>,
    /// Resource types read through the AWS Config API when `config` is swept.
    #[serde(default)]
    pub config_types: Vec<String>,
    /// Read `config_types` through this aggregator (the whole organisation at once).
    pub config_aggregator: Option<String>,
    /// Overall deadline of one API call, retries included (default 60).
    #[serde(default = "default_call_timeout")]
    pub call_timeout_seconds: u64,
    /// Sweep every active account of the AWS organisation through one role.
    pub organization: Option<OrganizationConfig>,
    /// Ask CloudTrail (`LookupEvents`, read-only) who made the changes a sweep finds
    /// (default true).
    #[serde(default = "default_true")]
    pub lookup_actors: bool,
}

/// `organization = { role_name = "guardrail-audit", external_id = "...", exclude_ous = ["ou-..."] }`:
/// the accounts come from `organizations:ListAccounts` at every sweep.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationConfig {
    /// The role assumed in each account (the same name everywhere, as StackSets deploy it).
    pub role_name: String,
    pub external_id: Option<String>,
    /// Only accounts under these OUs (`ou-...` ids, at any depth); empty = every account.
    #[serde(default)]
    pub include_ous: Vec<String>,
    #[serde(default)]
    pub exclude_ous: Vec<String>,
    #[serde(default)]
    pub exclude_accounts: Vec<String>,
}

fn default_true() -> bool {
    true
}

fn default_call_timeout() -> u64 {
    60
}

/// None: the SDK's region chain decides (AWS_REGION, the profile's region, else
/// us-east-1).
fn default_regions() -> Vec<String> {
    Vec::new()
}
fn default_attempts() -> u32 {
    5
}
fn default_concurrency() -> usize {
    4
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            regions: default_regions(),
            profile: None,
            endpoint_url: None,
            max_attempts: default_attempts(),
            call_timeout_seconds: default_call_timeout(),
            lookup_actors: true,
            organization: None,
            concurrency: default_concurrency(),
            max_calls_per_second: None,
            only: Vec::new(),
            config_types: Vec::new(),
            config_aggregator: None,
        }
    }
}

/// One thing to sweep on an interval, exactly one of: `path` (a local directory of AWS
/// Config deliveries), `url` (the delivery bucket, `s3://bucket/prefix`) or `aws` (the
/// AWS APIs of configured accounts, narrowed to services and regions, so each
/// (account, region, service) can have its own interval).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique among the sources; shown in logs.
    pub name: String,
    /// Directory (or file) of AWS Config snapshot/history deliveries. Relative paths
    /// are relative to the configuration file's directory.
    pub path: Option<std::path::PathBuf>,
    /// AWS Config deliveries in S3: `s3://bucket/prefix`.
    pub url: Option<String>,
    /// The AWS APIs, with the `[aws]` credentials and `[accounts]` roles.
    pub aws: Option<AwsSourceConfig>,
    /// EventBridge events (CloudTrail API calls, AWS Config item changes) delivered to
    /// an SQS queue: read continuously, not on an interval.
    pub events: Option<EventsSourceConfig>,
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
}

/// `aws = { accounts = ["111111111111"], only = ["iam"], regions = ["eu-west-1"] }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSourceConfig {
    /// Account ids from `[accounts]`; empty = every swept account (or, with none
    /// configured, the base credentials' own).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Services: iam, s3, ec2, config; empty = `[aws] only`.
    #[serde(default)]
    pub only: Vec<String>,
    /// Regions; empty = the accounts' own or `[aws] regions`.
    #[serde(default)]
    pub regions: Vec<String>,
}

/// `events = { queue_url = "https://sqs.eu-west-1.amazonaws.com/111111111111/guardrail-events" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSourceConfig {
    /// The queue an EventBridge rule delivers to (one per account, or one central queue
    /// fed by an organisation-wide bus).
    pub queue_url: String,
    /// Long-poll wait per receive (0 to 20 s): how long `serve` may take to stop.
    #[serde(default = "default_event_wait")]
    pub wait_seconds: i32,
}

fn default_event_wait() -> i32 {
    10
}

impl SourceConfig {
    /// An event source is read continuously by its own thread, never swept.
    pub fn is_events(&self) -> bool {
        self.events.is_some()
    }

    /// What the source reads, for logs and pages.
    pub fn describe(&self) -> String {
        if let Some(e) = &self.events {
            return format!("events from {}", e.queue_url);
        }
        if let Some(p) = &self.path {
            return p.display().to_string();
        }
        if let Some(u) = &self.url {
            return u.clone();
        }
        let a = self.aws.clone().unwrap_or_default();
        let list = |v: &[String], all: &str| {
            if v.is_empty() {
                all.to_owned()
            } else {
                v.join(",")
            }
        };
        format!(
            "AWS APIs: accounts {}, services {}, regions {}",
            list(&a.accounts, "all"),
            list(&a.only, "default"),
            list(&a.regions, "default")
        )
    }
}

/// A queue URL as SQS writes it: `http(s)://HOST/ACCOUNT/QUEUE` (any host, so VPC
/// endpoints and emulators work).
fn validate_queue_url(url: &str) -> Result<(), String> {
    let fix =
        "write the queue's URL as SQS shows it, https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("not an http(s) URL; {fix}"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [host, account, queue]
            if !host.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !queue.is_empty() =>
        {
            Ok(())
        }
        _ => Err(format!(
            "no 12-digit account and queue name in the path; {fix}"
        )),
    }
}

fn default_interval() -> f64 {
    300.0
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    #[serde(default)]
    pub name: String,
    pub classification: String,
    /// Role to assume in this account for sweeps (from the `[aws]` base credentials).
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// Regions for this account (default: `[aws] regions`); `["all"]` = enabled ones.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Sweep this account; defaults to true when `role_arn` is set. Set it to sweep
    /// the base credentials' own account without a role.
    pub sweep: Option<bool>,
}

impl AccountConfig {
    pub fn swept(&self) -> bool {
        self.sweep.unwrap_or(self.role_arn.is_some())
    }
}

const CLASSIFICATIONS: &[&str] = &["ours", "friendly", "third_party"];

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for s in &mut config.sources {
            if let Some(p) = &mut s.path {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        if let Some(p) = &mut config.rules {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        for (id, a) in &self.accounts {
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                bail!("accounts.{id:?}: an account id is 12 digits, quoted, like [accounts.\"111111111111\"]");
            }
            if !CLASSIFICATIONS.contains(&a.classification.as_str()) {
                bail!(
                    "accounts.\"{id}\".classification = {:?}: use one of {}",
                    a.classification,
                    CLASSIFICATIONS.join(", ")
                );
            }
        }
        for (id, a) in &self.accounts {
            if let Some(arn) = &a.role_arn {
                let parts: Vec<&str> = arn.split(':').collect();
                if parts.len() != 6
                    || parts[0] != "arn"
                    || parts[2] != "iam"
                    || !parts[5].starts_with("role/")
                {
                    bail!("accounts.\"{id}\".role_arn = {arn:?}: write a role ARN like \"arn:aws:iam::{id}:role/guardrail-audit\"");
                }
                if parts[4] != id {
                    bail!("accounts.\"{id}\".role_arn = {arn:?} is a role in account {}; use a role in {id}", parts[4]);
                }
            }
            if a.external_id.is_some() && a.role_arn.is_none() {
                bail!("accounts.\"{id}\".external_id needs role_arn: the external id is sent when assuming that role");
            }
        }
        let services = guardrail_watchers::aws::SERVICES;
        for s in &self.aws.only {
            if !services.contains(&s.as_str()) {
                bail!(
                    "aws.only: unknown service {s:?}; use one or more of {}",
                    services.join(", ")
                );
            }
        }
        if self.aws.max_attempts == 0 || self.aws.concurrency == 0 {
            bail!("aws.max_attempts and aws.concurrency must be at least 1");
        }
        if let Some(r) = self.aws.max_calls_per_second {
            if !(r.is_finite() && r >= 1.0) {
                bail!("aws.max_calls_per_second = {r}: use at least 1 (new calls a second per account, region and service), or leave it out for no cap");
            }
        }
        if !(1..=64).contains(&self.workers.jobs_at_once) {
            bail!(
                "workers.jobs_at_once = {}: use 1 to 64 (jobs one worker runs side by side)",
                self.workers.jobs_at_once
            );
        }
        if !(3..=86_400).contains(&self.workers.lease_seconds) {
            bail!(
                "workers.lease_seconds = {}: use 3 to 86400 (a minute is the default; a worker silent this long loses its jobs)",
                self.workers.lease_seconds
            );
        }
        self.audit.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.notify.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.server.validate()?;
        if let Some(o) = &self.aws.organization {
            if o.role_name.is_empty() || o.role_name.contains(['/', ':', ' ']) {
                bail!(
                    "[aws] organization.role_name = {:?}: give the role's name (e.g. \"guardrail-audit\"), not an ARN or path",
                    o.role_name
                );
            }
            for ou in o.include_ous.iter().chain(&o.exclude_ous) {
                if !ou.starts_with("ou-") {
                    bail!("[aws] organization: {ou:?} is not an OU id; write ou-xxxx-yyyyyyyy (aws organizations list-organizational-units-for-parent)");
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (n, s) in self.sources.iter().enumerate() {
            if s.name.is_empty() || !names.insert(s.name.as_str()) {
                bail!(
                    "sources[{n}].name = {:?}: give each source a unique, non-empty name",
                    s.name
                );
            }
            let kinds = [
                s.path.is_some(),
                s.url.is_some(),
                s.aws.is_some(),
                s.events.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                bail!(
                    "sources[{n}] ({}): give exactly one of path = \"deliveries/\", url = \"s3://bucket/prefix\", aws = {{ accounts = [...], only = [...] }} or events = {{ queue_url = \"https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE\" }}",
                    s.name
                );
            }
            if let Some(e) = &s.events {
                validate_queue_url(&e.queue_url).map_err(|why| {
                    anyhow::anyhow!("sources[{n}].events.queue_url = {:?}: {why}", e.queue_url)
                })?;
                if !(0..=20).contains(&e.wait_seconds) {
                    bail!(
                        "sources[{n}].events.wait_seconds = {}: SQS long-polls 0 to 20 seconds",
                        e.wait_seconds
                    );
                }
            }
            if let Some(u) = &s.url {
                if !u.starts_with("s3://") {
                    bail!("sources[{n}].url = {u:?}: write s3://bucket/prefix (local directories go in path)");
                }
            }
            if let Some(a) = &s.aws {
                for id in &a.accounts {
                    if !self.accounts.get(id).is_some_and(AccountConfig::swept) {
                        bail!("sources[{n}].aws.accounts: {id:?} is not a swept account; add [accounts.\"{id}\"] with role_arn (or sweep = true)");
                    }
                }
                for svc in &a.only {
                    if !guardrail_watchers::aws::SERVICES.contains(&svc.as_str()) {
                        bail!(
                            "sources[{n}].aws.only: unknown service {svc:?}; use one of {}",
                            guardrail_watchers::aws::SERVICES.join(", ")
                        );
                    }
                }
            }
            if !(s.interval_seconds.is_finite() && s.interval_seconds >= 1.0) {
                bail!(
                    "sources[{n}].interval_seconds = {}: use at least 1 second",
                    s.interval_seconds
                );
            }
        }
        Ok(())
    }

    /// The accounts `sweep` reaches through the APIs, with their credentials.
    pub fn aws_accounts(&self) -> Vec<guardrail_watchers::aws::AwsAccount> {
        self.accounts
            .iter()
            .filter(|(_, a)| a.swept())
            .map(|(id, a)| guardrail_watchers::aws::AwsAccount {
                id: Some(id.clone()),
                role_arn: a.role_arn.clone(),
                external_id: a.external_id.clone(),
                session_name: a.session_name.clone(),
                regions: a.regions.clone(),
            })
            .collect()
    }

    pub fn account_infos(&self) -> BTreeMap<String, AccountInfo> {
        self.accounts
            .iter()
            .map(|(id, a)| {
                (
                    id.clone(),
                    AccountInfo {
                        name: a.name.clone(),
                        classification: a.classification.clone(),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("g.toml");
        std::fs::write(&p, text)?;
        Config::load(&p)
    }

    #[test]
    fn an_event_source_names_a_queue_url_and_a_long_poll_wait() {
        let c = parse(
            r#"
            [[sources]]
            name = "trail"
            events = { queue_url = "https://sqs.eu-west-1.amazonaws.com/111111111111/guardrail-events" }
            "#,
        )
        .unwrap();
        assert!(c.sources[0].is_events());
        assert_eq!(c.sources[0].events.as_ref().unwrap().wait_seconds, 10);
        for (bad, says) in [
            (
                "sqs.eu-west-1.amazonaws.com/111111111111/q",
                "not an http(s) URL",
            ),
            (
                "https://sqs.eu-west-1.amazonaws.com/guardrail-events",
                "12-digit account",
            ),
            (
                "https://sqs.eu-west-1.amazonaws.com/1111/q",
                "12-digit account",
            ),
        ] {
            let e = parse(&format!(
                "[[sources]]\nname = \"trail\"\nevents = {{ queue_url = \"{bad}\" }}\n"
            ))
            .unwrap_err();
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
            assert!(
                format!("{e:#}").contains("sources[0].events.queue_url"),
                "{e:#}"
            );
        }
        let e = parse(
            "[[sources]]\nname = \"t\"\nevents = { queue_url = \"https://h/111111111111/q\", wait_seconds = 30 }\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("0 to 20 seconds"), "{e:#}");
        let e = parse(
            "[[sources]]\nname = \"t\"\npath = \"x\"\nevents = { queue_url = \"https://h/111111111111/q\" }\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("exactly one of"), "{e:#}");
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
            [database]
            url = "sqlite://x.db"
            [accounts."111111111111"]
            name = "prod"
            classification = "ours"
            [audit]
            internal_cidrs = ["10.0.0.0/8"]
            [[audit.overrides]]
            rule = "s3/bucket_logging"
            disabled = true
            [[audit.suppressions]]
            rule = "ec2/sg_internet_ingress"
            resource = "*web*"
            reason = "public web tier"
            "#,
        )
        .unwrap();
        assert_eq!(c.accounts["111111111111"].name, "prod");
        assert!(c.aws_accounts().is_empty());
        assert_eq!(c.audit.overrides.len(), 1);
    }

    #[test]
    fn swept_accounts_with_roles() {
        let c = parse(
            r#"
            [aws]
            regions = ["us-east-1", "eu-west-1"]
            [accounts."111111111111"]
            classification = "ours"
            role_arn = "arn:aws:iam::111111111111:role/guardrail-audit"
            external_id = "guardrail-7f3a"
            regions = ["all"]
            [accounts."222222222222"]
            classification = "friendly"
            "#,
        )
        .unwrap();
        let a = c.aws_accounts();
        assert_eq!(
            a.len(),
            1,
            "only accounts with a role (or sweep = true) are swept"
        );
        assert_eq!(a[0].external_id.as_deref(), Some("guardrail-7f3a"));
        assert_eq!(a[0].regions, vec!["all"]);
        assert_eq!(c.aws.regions.len(), 2);
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = parse("[acounts]\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `acounts`"), "{e}");
        let e = parse("[accounts.\"111111111111\"]\nclassification = \"mine\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("classification") && e.contains("ours, friendly, third_party"),
            "{e}"
        );
        let e = parse("[accounts.prod]\nclassification = \"ours\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("12 digits"), "{e}");
        let e = parse("[accounts.\"111111111111\"]\nclassification = \"ours\"\nrole_arn = \"arn:aws:iam::222222222222:role/a\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("role in account 222222222222"), "{e}");
        let e = parse("[aws]\nonly = [\"lamda\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aws.only") && e.contains("iam, s3, ec2") && e.contains("lambda"),
            "{e}"
        );
        // Every watched service may be named (the list was once iam, s3, ec2, config).
        let c = parse(
            "[aws]\nonly = [\"lambda\", \"sqs\", \"secretsmanager\"]\nmax_calls_per_second = 20\n",
        )
        .unwrap();
        assert_eq!(c.aws.only.len(), 3);
        assert_eq!(c.aws.max_calls_per_second, Some(20.0));
        for bad in ["0", "0.5", "-3", "nan"] {
            let e = parse(&format!("[aws]\nmax_calls_per_second = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("aws.max_calls_per_second"), "{bad}: {e}");
        }
        let e = parse("[[audit.overrides]]\nrule = \"x\"\nscore = 42\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit.overrides[0]"), "{e}");
        let e = parse("[audit]\ninternal_cidrs = \"10.0.0.0/8\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("internal_cidrs"), "{e}");
        let e = parse("[audit]\nvpcs = [\"sg-0a1b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit.vpcs[0]") && e.contains("vpc-"), "{e}");
        let e = parse("[audit]\ntrusted_cidrs = [\"office\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit.trusted_cidrs[0]"), "{e}");
        let e = parse("[server]\nlisten = \"everywhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen"), "{e}");
        let e = parse("[server]\nlisen = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `lisen`"), "{e}");
        let two =
            "[[sources]]\nname = \"a\"\npath = \"x\"\n[[sources]]\nname = \"a\"\npath = \"y\"\n";
        assert!(parse(two)
            .unwrap_err()
            .to_string()
            .contains("sources[1].name"));
        let e = parse("[[sources]]\nname = \"a\"\npath = \"x\"\ninterval_seconds = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("interval_seconds"), "{e}");
    }

    #[test]
    fn source_paths_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.toml");
        std::fs::write(&p, "[[sources]]\nname = \"demo\"\npath = \"data/day1\"\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.sources[0].path, Some(dir.path().join("data/day1")));
        assert_eq!(c.sources[0].interval_seconds, 300.0);
    }
}
