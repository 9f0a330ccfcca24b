//! The TOML configuration file: database, accounts, audit settings. Every key is
//! checked; a typo or a bad value is an error naming the key and the fix.

use std::collections::BTreeMap;
use std::path::Path;

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
    #[serde(default)]
    pub server: guardrail_server::ServerSettings,
    /// What the scheduler of `serve` sweeps, and how often.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

/// One thing to sweep on an interval: `[[sources]] name = "prod-config",
/// path = "deliveries/", interval_seconds = 300`. Today a local directory of AWS Config
/// deliveries; AWS accounts will be further kinds of source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique among the sources; shown in logs.
    pub name: String,
    /// Directory (or file) of AWS Config snapshot/history deliveries. Relative paths
    /// are relative to the configuration file's directory.
    pub path: std::path::PathBuf,
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
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
            if s.path.is_relative() {
                s.path = base.join(&s.path);
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
        self.audit.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.notify.validate().map_err(|e| anyhow::anyhow!(e))?;
        self.server.validate()?;
        let mut names = std::collections::BTreeSet::new();
        for (n, s) in self.sources.iter().enumerate() {
            if s.name.is_empty() || !names.insert(s.name.as_str()) {
                bail!(
                    "sources[{n}].name = {:?}: give each source a unique, non-empty name",
                    s.name
                );
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
        assert_eq!(c.audit.overrides.len(), 1);
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
        let e = parse("[[audit.overrides]]\nrule = \"x\"\nscore = 42\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit.overrides[0]"), "{e}");
        let e = parse("[audit]\ninternal_cidrs = \"10.0.0.0/8\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("internal_cidrs"), "{e}");
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
        assert_eq!(c.sources[0].path, dir.path().join("data/day1"));
        assert_eq!(c.sources[0].interval_seconds, 300.0);
    }
}
