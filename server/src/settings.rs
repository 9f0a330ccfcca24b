//! The `[server]` table of the configuration file.

use std::net::{IpAddr, SocketAddr};

use anyhow::bail;
use guardrail_storage::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Loopback by default: exposing the UI is a decision.
    pub listen: String,
    /// The URL people reach the server at (`https://…` makes cookies `Secure`).
    pub public_url: Option<String>,
    /// How long a browser session lasts.
    pub session_hours: u64,
    /// Reverse proxies (IPs or CIDRs) whose identity headers are believed. Headers
    /// from any other peer are ignored.
    pub trusted_proxies: Vec<String>,
    /// Header naming the signed-in user, set by the trusted proxy (e.g. `X-Forwarded-User`).
    pub proxy_user_header: Option<String>,
    /// Header carrying the user's role (viewer, triager or admin), if the proxy sends one.
    pub proxy_role_header: Option<String>,
    /// Role of proxy users when no role header is configured or sent.
    pub proxy_default_role: String,
    /// The item tag that names a resource's owning team (dashboards group by it).
    pub owner_tag: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            session_hours: 12,
            trusted_proxies: Vec::new(),
            proxy_user_header: None,
            proxy_role_header: None,
            proxy_default_role: "viewer".into(),
            owner_tag: "owner".into(),
        }
    }
}

impl ServerSettings {
    /// Errors name the key under `[server]` and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.listen.parse::<SocketAddr>().is_err() {
            bail!(
                "server.listen = {:?}: use an address and port such as \"127.0.0.1:8080\"",
                self.listen
            );
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("server.public_url = {u:?}: use a full URL such as \"https://guardrail.example.com\"");
            }
        }
        if !(1..=24 * 30).contains(&self.session_hours) {
            bail!(
                "server.session_hours = {}: use 1 to 720 hours",
                self.session_hours
            );
        }
        self.trusted_networks()?;
        if !self.trusted_proxies.is_empty() && self.proxy_user_header.is_none() {
            bail!("server.trusted_proxies is set but server.proxy_user_header is not: name the header your proxy puts the user in, e.g. proxy_user_header = \"X-Forwarded-User\"");
        }
        for (key, h) in [
            ("proxy_user_header", &self.proxy_user_header),
            ("proxy_role_header", &self.proxy_role_header),
        ] {
            if let Some(h) = h {
                if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    bail!("server.{key} = {h:?} is not a valid HTTP header name");
                }
            }
        }
        Role::parse(&self.proxy_default_role)
            .map_err(|e| anyhow::anyhow!("server.proxy_default_role: {e}"))?;
        if self.owner_tag.is_empty() {
            bail!("server.owner_tag must name a tag, e.g. \"owner\" or \"team\"");
        }
        Ok(())
    }

    pub(crate) fn trusted_networks(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "server.trusted_proxies: {p:?} is neither an IP address nor a CIDR such as \"10.0.0.0/8\""
                        )
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_loopback_and_validate() {
        let s = ServerSettings::default();
        assert!(s.listen.starts_with("127.0.0.1:"));
        s.validate().unwrap();
    }

    #[test]
    fn mistakes_name_the_key() {
        let bad = |f: fn(&mut ServerSettings)| {
            let mut s = ServerSettings::default();
            f(&mut s);
            s.validate().unwrap_err().to_string()
        };
        assert!(bad(|s| s.listen = "localhost".into()).contains("server.listen"));
        assert!(bad(|s| s.trusted_proxies = vec!["10.0.0.0/33".into()]).contains("trusted_proxies"));
        assert!(bad(|s| s.trusted_proxies = vec!["10.0.0.1".into()]).contains("proxy_user_header"));
        assert!(bad(|s| s.proxy_default_role = "root".into()).contains("proxy_default_role"));
        assert!(bad(|s| s.session_hours = 0).contains("session_hours"));
        let ok = ServerSettings {
            trusted_proxies: vec!["10.0.0.1".into(), "192.168.0.0/16".into()],
            proxy_user_header: Some("X-Forwarded-User".into()),
            ..Default::default()
        };
        ok.validate().unwrap();
        assert_eq!(ok.trusted_networks().unwrap().len(), 2);
    }
}
