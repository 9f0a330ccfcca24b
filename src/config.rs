//! The TOML configuration file: database, accounts, audit settings. Every key is
//! checked; a typo or a bad value is an error naming the key and the fix.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use guardrail_auditors::{AccountInfo, AuditSettings};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
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
        let config: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
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
        self.notify.validate().map_err(|e| anyhow::anyhow!(e))
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
    }
}
