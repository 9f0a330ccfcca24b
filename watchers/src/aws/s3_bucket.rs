//! S3 buckets of an account, each in its own region, in AWS Config's item shape.
//!
//! ListBuckets answers for every region, so one listing covers the type everywhere.
//! Each bucket then takes ten reads against its own region; "not configured" answers
//! (no policy, no encryption rule, no public access block…) are data, not errors.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{Grant, Type};
use aws_sdk_s3::Client;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{
    describe, tag_pairs, AwsLister, Context, ItemDoc, Listed, Problem, Reach, ReadOne,
};

pub struct Buckets;

/// S3 client settings: path-style addressing when an endpoint is overridden (emulators
/// and VPC endpoints have no per-bucket DNS names).
pub fn s3_conf(config: &SdkConfig, region: Option<&str>) -> aws_sdk_s3::Config {
    s3_builder(config, region).build()
}

fn s3_builder(config: &SdkConfig, region: Option<&str>) -> aws_sdk_s3::config::Builder {
    let mut b = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    if let Some(r) = region {
        b = b.region(aws_sdk_s3::config::Region::new(r.to_owned()));
    }
    b
}

/// `None` for the error codes that mean "not configured"; the error otherwise.
fn absent<T, E>(r: Result<T, SdkError<E>>, not_configured: &[&str]) -> Result<Option<T>, String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code().is_some_and(|c| not_configured.contains(&c)) => Ok(None),
        Err(e) => Err(format!(
            "{}{}",
            e.code().map(|c| format!("{c}: ")).unwrap_or_default(),
            describe(&e)
        )),
    }
}

/// AWS Config spells permissions `FullControl`, the API `FULL_CONTROL`.
fn permission(p: &str) -> String {
    p.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

fn grant(g: &Grant) -> Value {
    let grantee = g.grantee().map_or(Value::Null, |t| match t.r#type() {
        Type::Group => json!({"uri": t.uri()}),
        Type::AmazonCustomerByEmail => json!({"id": t.email_address()}),
        _ => json!({"id": t.id(), "displayName": t.display_name()}),
    });
    json!({
        "grantee": grantee,
        "permission": g.permission().map(|p| permission(p.as_str())),
    })
}

/// A bucket's region from GetBucketLocation's answer.
pub fn bucket_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(r) => r.into(),
    }
}

/// Clients per region, made on first use; each tells the context's pace how AWS
/// answered.
struct Clients<'a> {
    ctx: &'a Context,
    by_region: Mutex<HashMap<String, Client>>,
}

impl Clients<'_> {
    fn get(&self, region: &str) -> Client {
        let mut m = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(region.to_owned())
            .or_insert_with(|| {
                Client::from_conf(
                    s3_builder(&self.ctx.config, Some(region))
                        .interceptor(self.ctx.observer())
                        .build(),
                )
            })
            .clone()
    }
}

/// What became of one bucket.
enum Outcome {
    Item(Box<guardrail_model::Observation>),
    /// Deleted between ListBuckets and its detail calls: simply gone.
    Gone,
    Failed {
        region: Option<String>,
        message: String,
    },
}

async fn bucket(
    clients: &Clients<'_>,
    home: &Client,
    ctx: &Context,
    name: &str,
    created: Value,
    owner: &Value,
) -> Outcome {
    let location = {
        let _p = ctx.permit().await;
        home.get_bucket_location().bucket(name).send().await
    };
    let region = match location {
        Ok(l) => bucket_region(l.location_constraint().map(|c| c.as_str())),
        Err(e) if e.code() == Some("NoSuchBucket") => return Outcome::Gone,
        Err(e) => {
            return Outcome::Failed {
                region: None,
                message: format!("s3:GetBucketLocation {name} failed: {}", describe(&e)),
            }
        }
    };
    match details(&clients.get(&region), ctx, name, &region, created, owner).await {
        Ok(Some(o)) => Outcome::Item(Box::new(o)),
        Ok(None) => Outcome::Gone,
        Err(message) => Outcome::Failed {
            region: Some(region),
            message: format!("bucket {name}: {message}"),
        },
    }
}

/// The ten reads of one bucket. `Ok(None)` when the bucket disappeared meanwhile.
async fn details(
    c: &Client,
    ctx: &Context,
    name: &str,
    region: &str,
    created: Value,
    owner: &Value,
) -> Result<Option<guardrail_model::Observation>, String> {
    macro_rules! call {
        ($op:literal, $req:expr, $absent:expr) => {{
            let r = {
                let _p = ctx.permit().await;
                $req.bucket(name).send().await
            };
            if let Err(e) = &r {
                if e.code() == Some("NoSuchBucket") {
                    return Ok(None);
                }
            }
            absent(r, $absent).map_err(|e| format!("s3:{} failed: {e}", $op))?
        }};
    }
    let policy = call!(
        "GetBucketPolicy",
        c.get_bucket_policy(),
        &["NoSuchBucketPolicy"]
    );
    let status = call!(
        "GetBucketPolicyStatus",
        c.get_bucket_policy_status(),
        &["NoSuchBucketPolicy"]
    );
    let acl = call!("GetBucketAcl", c.get_bucket_acl(), &[]);
    let pab = call!(
        "GetPublicAccessBlock",
        c.get_public_access_block(),
        &["NoSuchPublicAccessBlockConfiguration"]
    );
    let encryption = call!(
        "GetBucketEncryption",
        c.get_bucket_encryption(),
        &["ServerSideEncryptionConfigurationNotFoundError"]
    );
    let versioning = call!("GetBucketVersioning", c.get_bucket_versioning(), &[]);
    let logging = call!("GetBucketLogging", c.get_bucket_logging(), &[]);
    let ownership = call!(
        "GetBucketOwnershipControls",
        c.get_bucket_ownership_controls(),
        &["OwnershipControlsNotFoundError"]
    );
    let tagging = call!(
        "GetBucketTagging",
        c.get_bucket_tagging(),
        &["NoSuchTagSet"]
    );

    let mut supp = serde_json::Map::new();
    supp.insert(
        "BucketPolicy".into(),
        json!({"policyText": policy.as_ref().and_then(|p| p.policy())}),
    );
    if let Some(s) = status.as_ref().and_then(|s| s.policy_status()) {
        supp.insert(
            "BucketPolicyStatus".into(),
            json!({"isPublic": s.is_public()}),
        );
    }
    let acl_owner = acl.as_ref().and_then(|a| a.owner()).map_or(
        owner.clone(),
        |o| json!({"id": o.id(), "displayName": o.display_name()}),
    );
    supp.insert(
        "AccessControlList".into(),
        json!({
            "owner": acl_owner,
            "grantList": acl.as_ref().map(|a| a.grants().iter().map(grant).collect::<Vec<_>>()).unwrap_or_default(),
        }),
    );
    if let Some(p) = pab
        .as_ref()
        .and_then(|p| p.public_access_block_configuration())
    {
        supp.insert(
            "PublicAccessBlockConfiguration".into(),
            json!({
                "blockPublicAcls": p.block_public_acls().unwrap_or(false),
                "ignorePublicAcls": p.ignore_public_acls().unwrap_or(false),
                "blockPublicPolicy": p.block_public_policy().unwrap_or(false),
                "restrictPublicBuckets": p.restrict_public_buckets().unwrap_or(false),
            }),
        );
    }
    if let Some(e) = encryption
        .as_ref()
        .and_then(|e| e.server_side_encryption_configuration())
    {
        let rules: Vec<Value> = e
            .rules()
            .iter()
            .map(|r| {
                json!({
                    "applyServerSideEncryptionByDefault": r.apply_server_side_encryption_by_default().map(|d| json!({
                        "sseAlgorithm": d.sse_algorithm().as_str(),
                        "kmsMasterKeyID": d.kms_master_key_id(),
                    })),
                    "bucketKeyEnabled": r.bucket_key_enabled().unwrap_or(false),
                })
            })
            .collect();
        supp.insert(
            "ServerSideEncryptionConfiguration".into(),
            json!({"rules": rules}),
        );
    }
    let v = versioning.as_ref();
    supp.insert(
        "BucketVersioningConfiguration".into(),
        json!({
            "status": v.and_then(|v| v.status()).map_or("Off", |s| s.as_str()),
            "isMfaDeleteEnabled": v.and_then(|v| v.mfa_delete()).map(|m| m.as_str() == "Enabled"),
        }),
    );
    let l = logging.as_ref().and_then(|l| l.logging_enabled());
    supp.insert(
        "BucketLoggingConfiguration".into(),
        json!({
            "destinationBucketName": l.map(|l| l.target_bucket()),
            "logFilePrefix": l.map(|l| l.target_prefix()),
        }),
    );
    if let Some(o) = ownership.as_ref().and_then(|o| o.ownership_controls()) {
        supp.insert(
            "BucketOwnershipControls".into(),
            json!({"rules": o.rules().iter().map(|r| json!({"objectOwnership": r.object_ownership().as_str()})).collect::<Vec<_>>()}),
        );
    }
    let (tag_list, tags) = tag_pairs(
        tagging
            .as_ref()
            .map(|t| t.tag_set())
            .unwrap_or_default()
            .iter()
            .map(|t| (Some(t.key()), Some(t.value()))),
    );
    if !tags.is_empty() {
        supp.insert(
            "BucketTaggingConfiguration".into(),
            json!({"tagSets": [{"tags": tags.clone()}]}),
        );
    }
    ItemDoc {
        resource_type: "AWS::S3::Bucket",
        account: &ctx.account,
        region,
        id: name,
        name: Some(name),
        arn: format!("arn:aws:s3:::{name}"),
        configuration: json!({"name": name, "owner": owner, "creationDate": created, "tags": tag_list}),
        supplementary: Value::Object(supp),
        relationships: Vec::new(),
        tags,
    }
    .observe()
    .map(Some)
}

/// Every bucket of the account (name, creation date) and their owner.
async fn list_buckets(ctx: &Context, home: &Client) -> Result<(Vec<(String, Value)>, Value), String> {
        let mut buckets: Vec<(String, Value)> = Vec::new();
        let mut owner = Value::Null;
        let mut token: Option<String> = None;
        loop {
            let out = {
                let _p = ctx.permit().await;
                home.list_buckets()
                    .set_continuation_token(token.clone())
                    .send()
                    .await
            }
            .map_err(|e| format!("s3:ListBuckets failed: {}", describe(&e)))?;
            if let Some(o) = out.owner() {
                owner = json!({"id": o.id(), "displayName": o.display_name()});
            }
            buckets.extend(
                out.buckets()
                    .iter()
                    .filter_map(|b| Some((b.name()?.to_owned(), super::time(b.creation_date())))),
            );
            token = out.continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok((buckets, owner))
}

impl AwsLister for Buckets {
    fn service(&self) -> &'static str {
        "s3"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::S3::Bucket".into()]
    }

    fn reach(&self) -> Reach {
        Reach::EveryRegion
    }

    /// By bucket name: ListBuckets gives what the detail calls do not (creation date,
    /// owner), then the same reads as a sweep. Only GetBucketLocation's NoSuchBucket
    /// for this name counts as gone.
    async fn read_one(&self, ctx: &Context, _resource_type: &str, name: &str) -> Option<ReadOne> {
        let clients = Clients {
            ctx,
            by_region: Mutex::default(),
        };
        let home = clients.get(&ctx.region);
        let (buckets, owner) = match list_buckets(ctx, &home).await {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let created = buckets.into_iter().find(|(n, _)| n == name).map(|(_, c)| c);
        let listed = created.is_some();
        let created = created.unwrap_or(Value::Null);
        Some(match bucket(&clients, &home, ctx, name, created, &owner).await {
            Outcome::Item(o) if listed => Ok(Some(*o)),
            // Eventual consistency: it answers, but the account's listing has not caught
            // up; stored now it would lack its creation date.
            Outcome::Item(_) => Err(format!(
                "bucket {name} answers but s3:ListBuckets does not list it yet; retried"
            )),
            Outcome::Gone => Ok(None),
            Outcome::Failed { message, .. } => Err(message),
        })
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let clients = Clients {
            ctx,
            by_region: Mutex::default(),
        };
        let home = clients.get(&ctx.region);
        let (buckets, owner) = list_buckets(ctx, &home).await?;
        let outcomes: Vec<(String, Outcome)> = stream::iter(buckets)
            .map(|(name, created)| {
                let (clients, home, owner) = (&clients, &home, &owner);
                async move {
                    let o = bucket(clients, home, ctx, &name, created, owner).await;
                    (name, o)
                }
            })
            .buffer_unordered(ctx.fan_out())
            .collect()
            .await;
        let mut listed = Listed::default();
        for (name, o) in outcomes {
            match o {
                Outcome::Item(o) => listed.items.push(*o),
                Outcome::Gone => {}
                Outcome::Failed { region, message } => listed.problems.push(Problem {
                    resource_type: "AWS::S3::Bucket".into(),
                    region,
                    item: Some(name),
                    message,
                }),
            }
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_as_aws_config_spells_them() {
        assert_eq!(permission("FULL_CONTROL"), "FullControl");
        assert_eq!(permission("READ_ACP"), "ReadAcp");
        assert_eq!(permission("READ"), "Read");
    }

    #[test]
    fn bucket_regions() {
        assert_eq!(bucket_region(None), "us-east-1");
        assert_eq!(bucket_region(Some("")), "us-east-1");
        assert_eq!(bucket_region(Some("EU")), "eu-west-1");
        assert_eq!(bucket_region(Some("ap-south-1")), "ap-south-1");
    }
}
