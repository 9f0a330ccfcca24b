//! Who made a change a sweep found: CloudTrail `LookupEvents` (read-only) for the item
//! within the window between the version before and the one found, the newest
//! mutating call kept. CloudTrail delivers events minutes late and answers two calls a
//! second per account and region, so callers ask a bounded number of times and items.

use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Utc};
use guardrail_model::Actor;
use serde_json::Value;

use super::events::actor_of;
use super::{describe, Context};

/// What CloudTrail knows a resource by: IAM principals by name and managed policies by
/// ARN (their item ids are the AROA/AIDA/ANPA ids CloudTrail does not index),
/// everything else by its id.
pub fn lookup_name<'a>(
    resource_type: &str,
    resource_id: &'a str,
    name: Option<&'a str>,
    arn: Option<&'a str>,
) -> &'a str {
    match (resource_type, name, arn) {
        ("AWS::IAM::Policy", _, Some(a)) => a,
        (t, Some(n), _) if t.starts_with("AWS::IAM::") => n,
        _ => resource_id,
    }
}

/// The actor of the newest mutating call on `resource` in `[from, to]`; `Ok(None)`
/// when CloudTrail has none (yet).
pub async fn lookup(
    ctx: &Context,
    resource: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<Actor>, String> {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let client = super::lister::client!(aws_sdk_cloudtrail, ctx);
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::ResourceName)
        .attribute_value(resource)
        .build()
        .map_err(|e| format!("cloudtrail:LookupEvents for {resource}: {e}"))?;
    let out = {
        let _p = ctx.permit().await;
        client
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(SmithyTime::from_secs(from.timestamp()))
            .end_time(SmithyTime::from_secs(to.timestamp()))
            .max_results(50)
            .send()
            .await
    }
    .map_err(|e| {
        format!(
            "cloudtrail:LookupEvents for {resource} failed: {}",
            describe(&e)
        )
    })?;
    // Newest first, as CloudTrail answers; reads tell nothing about who changed it.
    Ok(out
        .events()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e.cloud_trail_event()?).ok())
        .find(|r| r.get("readOnly").and_then(Value::as_bool) != Some(true))
        .map(|r| actor_of(&r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_principals_are_looked_up_by_name_the_rest_by_id() {
        let arn = Some("arn:aws:iam::1:x");
        assert_eq!(
            lookup_name("AWS::IAM::Role", "AROA123", Some("deploy"), arn),
            "deploy"
        );
        assert_eq!(
            lookup_name("AWS::IAM::Policy", "ANPA1", Some("p"), arn),
            "arn:aws:iam::1:x"
        );
        assert_eq!(
            lookup_name("AWS::EC2::SecurityGroup", "sg-1", Some("web"), None),
            "sg-1"
        );
    }
}
