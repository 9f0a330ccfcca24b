//! The event source: EventBridge rules deliver CloudTrail management events ("AWS API
//! Call via CloudTrail") and AWS Config change notifications ("Configuration Item
//! Change Notification") to an SQS queue; guardrail long-polls it and refreshes
//! exactly the items the events name, in seconds instead of at the next sweep.
//!
//! What an event means is data: [`TARGETS`] maps (event source, event name) to the
//! resource type and where its id is in the event. A named item is re-read through its
//! own lister ([`AwsListerDyn::read_one`]: the same calls and item shape as a sweep),
//! so an event never stores what the event claims, only what AWS answers. A Config
//! notification carries the configuration item itself, stored as a delivery would be.
//!
//! Deletions stay safe: an event saying a resource was deleted only triggers the
//! describe; only AWS answering "no such item" for that one id records its deletion.
//!
//! `sqs:ReceiveMessage` and `sqs:DeleteMessage` on this queue are the only non-read
//! calls guardrail makes, and a message is deleted only after its effect is recorded
//! (the caller says so), so a crash re-delivers it and re-delivery changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use guardrail_model::{Actor, ItemKey, Observation};
use serde_json::Value;

use super::{AwsListerDyn, Context};
use crate::config_deliveries::{parse_time, read_item, ItemState};

/// One mutating API call and the item it changes.
pub struct Target {
    /// CloudTrail's `eventSource` without `.amazonaws.com` (`ec2`).
    pub service: &'static str,
    pub event_name: &'static str,
    pub resource_type: &'static str,
    /// Where the id is: dotted paths into the event's `detail`, the first present wins.
    pub id: &'static [&'static str],
    /// The call deletes the resource (a describe decides whether it is gone).
    pub deletes: bool,
}

macro_rules! targets {
    ($($service:literal $name:literal => $ty:literal at [$($path:literal),+] $($del:ident)?;)+) => {
        /// Mutating calls and the item each changes, one line per (service, call).
        pub const TARGETS: &[Target] = &[$(Target {
            service: $service,
            event_name: $name,
            resource_type: $ty,
            id: &[$($path),+],
            deletes: targets!(@del $($del)?),
        }),+];
    };
    (@del deletes) => { true };
    (@del) => { false };
}

targets! {
    "ec2" "AuthorizeSecurityGroupIngress" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"];
    "ec2" "AuthorizeSecurityGroupEgress" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"];
    "ec2" "RevokeSecurityGroupIngress" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"];
    "ec2" "RevokeSecurityGroupEgress" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"];
    "ec2" "ModifySecurityGroupRules" => "AWS::EC2::SecurityGroup" at ["requestParameters.ModifySecurityGroupRulesRequest.GroupId", "requestParameters.groupId"];
    "ec2" "UpdateSecurityGroupRuleDescriptionsIngress" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"];
    "ec2" "UpdateSecurityGroupRuleDescriptionsEgress" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"];
    "ec2" "CreateSecurityGroup" => "AWS::EC2::SecurityGroup" at ["responseElements.groupId"];
    "ec2" "DeleteSecurityGroup" => "AWS::EC2::SecurityGroup" at ["requestParameters.groupId"] deletes;
    "sqs" "CreateQueue" => "AWS::SQS::Queue" at ["responseElements.queueUrl"];
    "sqs" "SetQueueAttributes" => "AWS::SQS::Queue" at ["requestParameters.queueUrl"];
    "sqs" "AddPermission" => "AWS::SQS::Queue" at ["requestParameters.queueUrl"];
    "sqs" "RemovePermission" => "AWS::SQS::Queue" at ["requestParameters.queueUrl"];
    "sqs" "TagQueue" => "AWS::SQS::Queue" at ["requestParameters.queueUrl"];
    "sqs" "UntagQueue" => "AWS::SQS::Queue" at ["requestParameters.queueUrl"];
    "sqs" "DeleteQueue" => "AWS::SQS::Queue" at ["requestParameters.queueUrl"] deletes;
    "sns" "CreateTopic" => "AWS::SNS::Topic" at ["responseElements.topicArn"];
    "sns" "SetTopicAttributes" => "AWS::SNS::Topic" at ["requestParameters.topicArn"];
    "sns" "AddPermission" => "AWS::SNS::Topic" at ["requestParameters.topicArn"];
    "sns" "RemovePermission" => "AWS::SNS::Topic" at ["requestParameters.topicArn"];
    "sns" "DeleteTopic" => "AWS::SNS::Topic" at ["requestParameters.topicArn"] deletes;
    "iam" "CreateRole" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "UpdateRole" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "UpdateAssumeRolePolicy" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "AttachRolePolicy" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "DetachRolePolicy" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "PutRolePolicy" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "DeleteRolePolicy" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "PutRolePermissionsBoundary" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "DeleteRolePermissionsBoundary" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "TagRole" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "UntagRole" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "AddRoleToInstanceProfile" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "RemoveRoleFromInstanceProfile" => "AWS::IAM::Role" at ["requestParameters.roleName"];
    "iam" "DeleteRole" => "AWS::IAM::Role" at ["requestParameters.roleName"] deletes;
    "iam" "CreateUser" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "UpdateUser" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "AttachUserPolicy" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "DetachUserPolicy" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "PutUserPolicy" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "DeleteUserPolicy" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "PutUserPermissionsBoundary" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "DeleteUserPermissionsBoundary" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "CreateLoginProfile" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "UpdateLoginProfile" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "DeleteLoginProfile" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "EnableMFADevice" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "DeactivateMFADevice" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "AddUserToGroup" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "RemoveUserFromGroup" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "TagUser" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "UntagUser" => "AWS::IAM::User" at ["requestParameters.userName"];
    "iam" "CreateAccessKey" => "AWS::IAM::User" at ["requestParameters.userName", "responseElements.accessKey.userName"];
    "iam" "UpdateAccessKey" => "AWS::IAM::User" at ["requestParameters.userName", "responseElements.accessKey.userName"];
    "iam" "DeleteAccessKey" => "AWS::IAM::User" at ["requestParameters.userName", "responseElements.accessKey.userName"];
    "iam" "DeleteUser" => "AWS::IAM::User" at ["requestParameters.userName"] deletes;
    "iam" "CreateGroup" => "AWS::IAM::Group" at ["requestParameters.groupName"];
    "iam" "UpdateGroup" => "AWS::IAM::Group" at ["requestParameters.groupName"];
    "iam" "AttachGroupPolicy" => "AWS::IAM::Group" at ["requestParameters.groupName"];
    "iam" "DetachGroupPolicy" => "AWS::IAM::Group" at ["requestParameters.groupName"];
    "iam" "PutGroupPolicy" => "AWS::IAM::Group" at ["requestParameters.groupName"];
    "iam" "DeleteGroupPolicy" => "AWS::IAM::Group" at ["requestParameters.groupName"];
    "iam" "DeleteGroup" => "AWS::IAM::Group" at ["requestParameters.groupName"] deletes;
    "iam" "CreatePolicy" => "AWS::IAM::Policy" at ["responseElements.policy.arn"];
    "iam" "CreatePolicyVersion" => "AWS::IAM::Policy" at ["requestParameters.policyArn"];
    "iam" "DeletePolicyVersion" => "AWS::IAM::Policy" at ["requestParameters.policyArn"];
    "iam" "SetDefaultPolicyVersion" => "AWS::IAM::Policy" at ["requestParameters.policyArn"];
    "iam" "TagPolicy" => "AWS::IAM::Policy" at ["requestParameters.policyArn"];
    "iam" "UntagPolicy" => "AWS::IAM::Policy" at ["requestParameters.policyArn"];
    "iam" "DeletePolicy" => "AWS::IAM::Policy" at ["requestParameters.policyArn"] deletes;
    "s3" "CreateBucket" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketPolicy" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketPolicy" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketAcl" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketPublicAccessBlock" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketPublicAccessBlock" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketEncryption" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketEncryption" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketVersioning" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketLogging" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketOwnershipControls" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketOwnershipControls" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketTagging" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketTagging" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketLifecycle" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketLifecycle" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketWebsite" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketWebsite" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketCors" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketCors" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketReplication" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucketReplication" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "PutBucketNotification" => "AWS::S3::Bucket" at ["requestParameters.bucketName"];
    "s3" "DeleteBucket" => "AWS::S3::Bucket" at ["requestParameters.bucketName"] deletes;
}

/// Why an event was not acted on; each is counted (`/metrics`) and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Not JSON, or not an EventBridge event of a known shape.
    Malformed,
    /// A read, or a call no entry of [`TARGETS`] names.
    UnknownEvent,
    /// From an account guardrail is not configured to watch.
    UnknownAccount,
    /// A known event for a type whose lister cannot read single items.
    NotRefreshable,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Malformed => "malformed",
            Ignored::UnknownEvent => "unknown_event",
            Ignored::UnknownAccount => "unknown_account",
            Ignored::NotRefreshable => "not_refreshable",
        }
    }
}

/// What one event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Re-read this item (the event says what changed it and who).
    Refresh {
        key: ItemKey,
        deletes: bool,
        actor: Actor,
    },
    /// AWS Config's own record of the item's new state.
    Recorded {
        state: ItemState,
        actor: Option<Actor>,
    },
    Ignored {
        why: Ignored,
        message: String,
    },
}

fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn text(v: &Value, path: &str) -> Option<String> {
    at(v, path).and_then(Value::as_str).map(str::to_owned)
}

/// The actor of a CloudTrail event's `detail`.
pub fn actor_of(detail: &Value) -> Actor {
    let who = detail.get("userIdentity").cloned().unwrap_or(Value::Null);
    let kind = text(&who, "type");
    let issuer = text(&who, "sessionContext.sessionIssuer.arn");
    let session_name = text(&who, "arn")
        .filter(|_| kind.as_deref() == Some("AssumedRole"))
        .and_then(|a| a.rsplit('/').next().map(str::to_owned))
        .or_else(|| text(&who, "userName"));
    Actor {
        principal: text(&who, "arn").or_else(|| text(&who, "invokedBy")),
        principal_type: kind,
        session_issuer: issuer,
        session_name,
        source_ip: text(detail, "sourceIPAddress"),
        user_agent: text(detail, "userAgent"),
        event_name: match (text(detail, "eventSource"), text(detail, "eventName")) {
            (Some(s), Some(n)) => Some(format!("{}:{n}", s.trim_end_matches(".amazonaws.com"))),
            _ => None,
        },
        event_time: detail.get("eventTime").and_then(parse_time),
        event_id: text(detail, "eventID"),
    }
}

/// Reads one SQS message body (an EventBridge event). `accounts` are the accounts
/// guardrail watches (empty: any).
pub fn parse(body: &str, accounts: &[String], now: DateTime<Utc>) -> Parsed {
    let ignored = |why, message: String| Parsed::Ignored { why, message };
    let event: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return ignored(Ignored::Malformed, format!("the message is not JSON ({e}); an EventBridge rule must deliver the whole event to the queue (no input transformer)")),
    };
    let (Some(kind), Some(detail)) = (text(&event, "detail-type"), event.get("detail")) else {
        return ignored(
            Ignored::Malformed,
            "the message has no detail-type and detail: not an EventBridge event".into(),
        );
    };
    let account = text(&event, "account")
        .or_else(|| text(detail, "recipientAccountId"))
        .unwrap_or_default();
    if !accounts.is_empty() && !accounts.contains(&account) {
        return ignored(Ignored::UnknownAccount, format!("event from account {account:?}, which is not configured; add it under [accounts] or narrow the event bus rule"));
    }
    let region = text(&event, "region")
        .or_else(|| text(detail, "awsRegion"))
        .unwrap_or_default();
    match kind.as_str() {
        "AWS API Call via CloudTrail" => {
            let service = text(detail, "eventSource").unwrap_or_default();
            let service = service.trim_end_matches(".amazonaws.com");
            let name = text(detail, "eventName").unwrap_or_default();
            let Some(t) = TARGETS.iter().find(|t| t.service == service && t.event_name == name) else {
                return ignored(Ignored::UnknownEvent, format!("{service}:{name} changes no item guardrail refreshes by event"));
            };
            if detail.get("errorCode").is_some_and(|c| !c.is_null()) {
                return ignored(Ignored::UnknownEvent, format!("{service}:{name} failed ({}), so it changed nothing", text(detail, "errorCode").unwrap_or_default()));
            }
            let Some(id) = t.id.iter().find_map(|p| text(detail, p)) else {
                return ignored(Ignored::Malformed, format!("{service}:{name} without {} in the event", t.id.join(" or ")));
            };
            if account.is_empty() || region.is_empty() {
                return ignored(Ignored::Malformed, format!("{service}:{name} names no account or region"));
            }
            Parsed::Refresh {
                key: ItemKey {
                    account,
                    region,
                    resource_type: t.resource_type.into(),
                    resource_id: id,
                },
                deletes: t.deletes,
                actor: actor_of(detail),
            }
        }
        "Configuration Item Change Notification" => {
            let Some(ci) = detail.get("configurationItem").cloned() else {
                return ignored(Ignored::Malformed, "a Config change notification without configurationItem".into());
            };
            match read_item(ci, 0, now, true) {
                Ok(state) => Parsed::Recorded { state, actor: None },
                Err(e) => ignored(Ignored::Malformed, format!("configuration item {}: {}", e.item, e.message)),
            }
        }
        other => ignored(Ignored::UnknownEvent, format!("detail-type {other:?} is not one guardrail reads (CloudTrail API calls and Config item changes)")),
    }
}

/// What refreshing one item came to.
pub enum Refreshed {
    Item(Box<Observation>),
    /// AWS answered that the item does not exist.
    Gone,
    Failed(String),
    /// Its lister cannot read single items.
    NotRefreshable,
}

/// Re-reads one item through the lister of its type.
pub async fn refresh(listers: &[Box<dyn AwsListerDyn>], ctx: &Context, key: &ItemKey) -> Refreshed {
    let Some(l) = listers
        .iter()
        .find(|l| l.resource_types().contains(&key.resource_type))
    else {
        return Refreshed::NotRefreshable;
    };
    match l.read_one(ctx, &key.resource_type, &key.resource_id).await {
        None => Refreshed::NotRefreshable,
        Some(Ok(Some(o))) => Refreshed::Item(Box::new(o)),
        Some(Ok(None)) => Refreshed::Gone,
        Some(Err(e)) => Refreshed::Failed(e),
    }
}

/// Keeps one refresh per item in a batch: the last event's actor is the one that
/// left the item as AWS will answer. Events for other items keep their order.
pub fn debounce(
    events: Vec<(usize, ItemKey, bool, Actor)>,
) -> Vec<(Vec<usize>, ItemKey, bool, Actor)> {
    let mut order: Vec<ItemKey> = Vec::new();
    let mut by_key: HashMap<ItemKey, (Vec<usize>, bool, Actor)> = HashMap::new();
    for (msg, key, deletes, actor) in events {
        match by_key.get_mut(&key) {
            Some(e) => {
                e.0.push(msg);
                e.1 |= deletes;
                e.2 = actor;
            }
            None => {
                order.push(key.clone());
                by_key.insert(key, (vec![msg], deletes, actor));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| by_key.remove(&k).map(|(m, d, a)| (m, k, d, a)))
        .collect()
}

/// One message of the event queue.
pub struct QueueMessage {
    pub id: String,
    /// What deletes it once its effect is recorded.
    pub receipt: String,
    pub body: String,
}

/// The queue guardrail reads events from: its URL, and a client in its region.
pub struct EventQueue {
    pub url: String,
    client: aws_sdk_sqs::Client,
}

/// `https://sqs.eu-west-1.amazonaws.com/1/q` → `eu-west-1`.
pub fn queue_region(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    (parts.next()? == "sqs").then(|| parts.next().map(str::to_owned))?
}

impl EventQueue {
    pub async fn new(target: &super::AwsTarget, url: &str) -> EventQueue {
        let region = queue_region(url)
            .or_else(|| target.regions.first().cloned().filter(|r| r != "all"))
            .unwrap_or_else(|| "us-east-1".into());
        let config = super::sdk_config(target, &region).await;
        EventQueue {
            url: url.to_owned(),
            client: aws_sdk_sqs::Client::new(&config),
        }
    }

    /// Long-polls for up to `wait_seconds` (0..=20) and returns at most 10 messages.
    pub async fn receive(&self, wait_seconds: i32) -> Result<Vec<QueueMessage>, String> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds.clamp(0, 20))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "sqs:ReceiveMessage on {} failed: {}",
                    self.url,
                    super::describe(&e)
                )
            })?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(QueueMessage {
                    id: m.message_id.unwrap_or_default(),
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Deletes handled messages (their effect is recorded); a failure leaves them to
    /// be delivered again, which is harmless.
    pub async fn delete(&self, receipts: &[String]) -> Result<(), String> {
        for chunk in receipts.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .ok()
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "sqs:DeleteMessageBatch on {} failed: {}",
                        self.url,
                        super::describe(&e)
                    )
                })?;
            if !out.failed().is_empty() {
                return Err(format!(
                    "sqs:DeleteMessageBatch on {} left {} message(s); they will be delivered again",
                    self.url,
                    out.failed().len()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloudtrail(name: &str, request: Value, account: &str) -> String {
        serde_json::json!({
            "version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2", "account": account, "time": "2026-12-02T10:00:00Z",
            "region": "eu-west-1", "resources": [],
            "detail": {
                "eventVersion": "1.08", "eventSource": "ec2.amazonaws.com", "eventName": name,
                "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.7",
                "userAgent": "aws-cli/2.15.0", "eventTime": "2026-12-02T09:59:58Z",
                "eventID": "5f1c-ev", "requestParameters": request, "responseElements": null,
                "userIdentity": {
                    "type": "AssumedRole", "principalId": "AROA:alice",
                    "arn": "arn:aws:sts::111111111111:assumed-role/deploy/alice",
                    "accountId": "111111111111",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111111111111:role/deploy", "userName": "deploy"}}
                }
            }
        })
        .to_string()
    }

    #[test]
    fn an_ingress_change_names_its_group_and_who_made_it() {
        let body = cloudtrail(
            "AuthorizeSecurityGroupIngress",
            serde_json::json!({"groupId": "sg-1"}),
            "111111111111",
        );
        let Parsed::Refresh {
            key,
            deletes,
            actor,
        } = parse(&body, &["111111111111".into()], Utc::now())
        else {
            panic!("not a refresh");
        };
        assert_eq!(
            (
                key.resource_type.as_str(),
                key.resource_id.as_str(),
                key.region.as_str()
            ),
            ("AWS::EC2::SecurityGroup", "sg-1", "eu-west-1")
        );
        assert!(!deletes);
        assert_eq!(
            actor.principal.as_deref(),
            Some("arn:aws:sts::111111111111:assumed-role/deploy/alice")
        );
        assert_eq!(
            actor.session_issuer.as_deref(),
            Some("arn:aws:iam::111111111111:role/deploy")
        );
        assert_eq!(actor.session_name.as_deref(), Some("alice"));
        assert_eq!(actor.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(
            actor.event_name.as_deref(),
            Some("ec2:AuthorizeSecurityGroupIngress")
        );
        assert_eq!(actor.event_id.as_deref(), Some("5f1c-ev"));
    }

    #[test]
    fn bad_unknown_and_foreign_events_are_ignored_with_a_reason() {
        let why = |body: &str| match parse(body, &["111111111111".into()], Utc::now()) {
            Parsed::Ignored { why, message } => (why, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(why("{not json").0, Ignored::Malformed);
        assert_eq!(why("{\"hello\": 1}").0, Ignored::Malformed);
        let read = cloudtrail(
            "DescribeSecurityGroups",
            serde_json::json!({}),
            "111111111111",
        );
        assert_eq!(why(&read).0, Ignored::UnknownEvent);
        let foreign = cloudtrail(
            "AuthorizeSecurityGroupIngress",
            serde_json::json!({"groupId": "sg-1"}),
            "999999999999",
        );
        let (w, m) = why(&foreign);
        assert_eq!(w, Ignored::UnknownAccount);
        assert!(m.contains("999999999999"), "{m}");
        let no_id = cloudtrail(
            "AuthorizeSecurityGroupIngress",
            serde_json::json!({}),
            "111111111111",
        );
        assert_eq!(why(&no_id).0, Ignored::Malformed);
    }

    #[test]
    fn the_queue_region_comes_from_its_url() {
        assert_eq!(
            queue_region("https://sqs.eu-west-1.amazonaws.com/1/q").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:5000/1/q"), None);
    }

    #[test]
    fn a_burst_for_one_item_is_one_refresh_with_the_last_actor() {
        let key = |id: &str| ItemKey {
            account: "1".into(),
            region: "r".into(),
            resource_type: "AWS::EC2::SecurityGroup".into(),
            resource_id: id.into(),
        };
        let actor = |n: &str| Actor {
            principal: Some(n.into()),
            ..Actor::default()
        };
        let out = debounce(vec![
            (0, key("a"), false, actor("x")),
            (1, key("b"), false, actor("y")),
            (2, key("a"), true, actor("z")),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, vec![0, 2]);
        assert!(out[0].2);
        assert_eq!(out[0].3.principal.as_deref(), Some("z"));
        assert_eq!(out[1].1.resource_id, "b");
    }
}
