//! E-mail over SMTP (lettre): one message per finding event, or one digest per
//! window when the route has `digest_seconds`. STARTTLS is required unless the route
//! says otherwise: a relay that stops offering it gets no mail in clear text, and the
//! outbox row says why.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::notifier::{BaselineMessage, ChangeMessage, FindingMessage, Notifier, Outgoing};
use crate::render::{diff_lines, truncate, Links};
use crate::route::{Notice, Route, Secret};
use crate::send::{Http, SendError};

/// Lines listed in a digest or baseline message; the rest are counted.
const SUMMARY_LINES: usize = 200;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the relay must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted local network.
    None,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: Option<String>,
    /// Default: 587 for starttls, 465 for tls, 25 for none.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `"guardrail <guardrail@example.com>"`.
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// Owner tag value → recipients; owners without an entry get `to`.
    #[serde(default)]
    pub owner_recipients: BTreeMap<String, Vec<String>>,
}

fn mailbox(what: &str, address: &str) -> Result<Mailbox, String> {
    address
        .parse::<Mailbox>()
        .map_err(|e| format!("{what} {address:?} is not an e-mail address ({e})"))
}

#[async_trait]
impl Notifier for EmailConfig {
    fn name(&self) -> &'static str {
        "email"
    }

    fn validate(&self, _route: &Route) -> Result<(), String> {
        if self
            .smtp_host
            .as_deref()
            .is_none_or(|h| h.trim().is_empty())
        {
            return Err("an email route needs smtp_host = \"smtp.example.com\"".into());
        }
        let from = self
            .from
            .as_deref()
            .ok_or("an email route needs from = \"guardrail <guardrail@example.com>\"")?;
        mailbox("from", from)?;
        if self.to.is_empty() && self.owner_recipients.is_empty() {
            return Err(
                "an email route needs to = [\"security@example.com\"] (or owner_recipients)".into(),
            );
        }
        for a in self
            .to
            .iter()
            .chain(self.owner_recipients.values().flatten())
        {
            mailbox("recipient", a)?;
        }
        if self.owner_recipients.values().any(Vec::is_empty) {
            return Err("owner_recipients: every owner needs at least one address".into());
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("give both username and password = { env = \"...\" }, or neither".into());
        }
        Ok(())
    }

    /// The owner's recipients, else the route's, comma-separated.
    fn destination(&self, route: &Route, item: &guardrail_storage::ItemRow) -> Option<String> {
        let to = route
            .owner(item)
            .and_then(|o| self.owner_recipients.get(&o))
            .unwrap_or(&self.to);
        Some(to.join(", "))
    }

    fn finding(&self, m: &FindingMessage) -> Value {
        let f = m.finding;
        json!({
            "to": self.destination(m.route, m.item),
            "subject": truncate(&format!("[guardrail] {} ({}) {}: {}", f.severity.to_uppercase(), f.score, m.notice, f.title), 200),
            "text": finding_text(m),
        })
    }

    fn digest_entry(&self, m: &FindingMessage) -> Value {
        let f = m.finding;
        let mut line = format!(
            "- {} ({}) {}: {} — {} {} in {}/{}",
            f.severity.to_uppercase(),
            f.score,
            m.notice,
            f.title,
            m.item.resource_type,
            m.item.name.as_deref().unwrap_or(&m.item.resource_id),
            m.item.account,
            m.item.region
        );
        if let Some(url) = &m.links.finding {
            line.push_str(&format!("\n  {url}"));
        }
        json!({"to": self.destination(m.route, m.item), "score": f.score, "line": line})
    }

    fn change(&self, m: &ChangeMessage) -> Option<Value> {
        let item = m.item;
        let name = item.name.as_deref().unwrap_or(&item.resource_id);
        let mut text = format!(
            "{} {name} {} (version {})\n\nAccount / region: {} / {}\nResource: {}\n",
            item.resource_type,
            m.revision.change,
            m.revision.version,
            item.account,
            item.region,
            item.resource_id
        );
        push_changes(&mut text, m.changes);
        if let Some(url) = m.item_url {
            text.push_str(&format!("\nResource history: {url}\n"));
        }
        Some(json!({
            "to": self.destination(m.route, item),
            "subject": truncate(&format!("[guardrail] {} {name} {}", item.resource_type, m.revision.change), 200),
            "text": text,
        }))
    }

    fn baseline(&self, m: &BaselineMessage) -> Value {
        let lines: Vec<&str> = m.found.iter().map(|f| f.line.as_str()).collect();
        json!({
            "to": m.destination,
            "subject": truncate(&format!("[guardrail] {}", m.headline), 200),
            "text": summary_text(m.headline, &lines),
        })
    }

    fn test(&self, route: &Route, _delivery_id: &str) -> Value {
        json!({
            "to": self.to.join(", "),
            "subject": "[guardrail] test notification: this route works",
            "text": format!("This is a test message from guardrail through route {}.\n", route.name),
        })
    }

    async fn send(&self, http: &Http, out: &Outgoing<'_>) -> Result<(), SendError> {
        let (_, first) = out.first()?;
        let to = first["to"].as_str().unwrap_or_default().to_owned();
        let (subject, text) = if out.is_digest() {
            let mut entries = out.digest_lines();
            entries.sort_by_key(|l| std::cmp::Reverse(l.0));
            let lines: Vec<&str> = entries.iter().map(|(_, l)| l.as_str()).collect();
            let headline = format!(
                "{} finding events for route {} since {}",
                lines.len(),
                out.route.name,
                out.window()
            );
            (
                format!("[guardrail] {headline}"),
                summary_text(&headline, &lines),
            )
        } else {
            (
                first["subject"]
                    .as_str()
                    .unwrap_or("[guardrail]")
                    .to_owned(),
                first["text"].as_str().unwrap_or_default().to_owned(),
            )
        };
        let permanent = |e: String| SendError::Permanent(format!("route {}: {e}", out.route.name));
        let from = mailbox("from", self.from.as_deref().unwrap_or_default()).map_err(permanent)?;
        let mut message = Message::builder().from(from).subject(subject);
        let mut recipients = 0;
        for address in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            message = message.to(mailbox("recipient", address).map_err(permanent)?);
            recipients += 1;
        }
        if recipients == 0 {
            return Err(permanent("no recipients for this message".into()));
        }
        let message = message
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| permanent(format!("cannot build the message: {e}")))?;
        let transport = self.transport(http).map_err(permanent)?;
        tokio::time::timeout(http.timeout() * 3, transport.send(message))
            .await
            .map_err(|_| {
                SendError::Retry(format!(
                    "no answer from SMTP relay {} in time",
                    self.relay()
                ))
            })?
            .map(|_| ())
            .map_err(|e| classify(&self.relay(), &e))
    }
}

impl EmailConfig {
    fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }

    fn relay(&self) -> String {
        format!(
            "{}:{}",
            self.smtp_host.as_deref().unwrap_or_default(),
            self.port()
        )
    }

    fn transport(&self, http: &Http) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        crate::send::install_crypto_provider();
        let host = self.smtp_host.as_deref().unwrap_or_default();
        let builder = match self.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| format!("SMTP relay {host:?}: {e}"))?;
        let mut builder = builder.port(self.port()).timeout(Some(http.timeout()));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            let password = password.resolve("password")?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(builder.build())
    }
}

/// SMTP's own classes: 5xx replies are permanent (bad recipient, refused
/// credentials); 4xx, network and TLS failures are retried until give-up.
fn classify(relay: &str, e: &lettre::transport::smtp::Error) -> SendError {
    let m = format!("SMTP relay {relay}: {e}");
    if e.is_permanent() {
        SendError::Permanent(m)
    } else {
        SendError::Retry(m)
    }
}

fn push_changes(text: &mut String, changes: &[guardrail_model::DiffEntry]) {
    let lines = diff_lines(changes);
    if !lines.is_empty() {
        text.push_str("\nWhat changed:\n");
        for l in lines {
            text.push_str(&format!("  {l}\n"));
        }
    }
}

fn finding_text(m: &FindingMessage) -> String {
    let (f, item) = (m.finding, m.item);
    let mut t = format!(
        "{} (score {}) {}: {}\n\nResource: {} {}\nAccount / region: {} / {}\nRule: {}\n",
        f.severity.to_uppercase(),
        f.score,
        m.notice,
        f.title,
        item.resource_type,
        item.name.as_deref().unwrap_or(&item.resource_id),
        item.account,
        item.region,
        f.rule_id
    );
    if let Some(owner) = m.route.owner(item) {
        t.push_str(&format!("Owner: {owner}\n"));
    }
    if !f.detail.is_empty() {
        t.push_str(&format!("\n{}\n", f.detail));
    }
    if let Some(a) = m.actor {
        t.push_str(&format!("\nChanged by: {}\n", crate::render::actor_line(a)));
    }
    push_changes(&mut t, m.changes);
    if !f.remediation.is_empty() && m.notice != Notice::Fixed {
        t.push_str(&format!("\nRemediation:\n{}\n", f.remediation));
    }
    push_links(&mut t, m.links);
    t
}

fn push_links(t: &mut String, links: &Links) {
    if links.finding.is_some() || links.item.is_some() {
        t.push('\n');
    }
    if let Some(u) = &links.finding {
        t.push_str(&format!("Finding: {u}\n"));
    }
    if let Some(u) = &links.item {
        t.push_str(&format!("Resource history: {u}\n"));
    }
}

fn summary_text(headline: &str, lines: &[&str]) -> String {
    let mut t = format!("{headline}\n\n");
    for l in lines.iter().take(SUMMARY_LINES) {
        t.push_str(l);
        t.push('\n');
    }
    if lines.len() > SUMMARY_LINES {
        t.push_str(&format!("… and {} more\n", lines.len() - SUMMARY_LINES));
    }
    t
}
