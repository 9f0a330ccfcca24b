//! Watchers that read the AWS APIs directly (read-only: List/Get/Describe only).
//!
//! Each resource type is one [`AwsLister`]: it lists one scope (account, region, type)
//! completely or fails. [`AwsSweep`] runs listers and reports each listing with its
//! coverage, so a failed call keeps the last revisions instead of deleting anything.
//! Items have the same shape as AWS Config's, so one rule serves both sources.

mod ec2_security_group;
mod iam;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::Utc;
use guardrail_model::{
    Cause, CollectError, Collector, Coverage, Listing, Observation, Scope, SourceError,
};

use crate::{Progress, Watcher};

pub use ec2_security_group::SecurityGroups;
pub use iam::Iam;

/// Where and how to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    pub regions: Vec<String>,
    /// An emulator or VPC endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    /// Attempts per call, adaptive retry with capped backoff.
    pub max_attempts: u32,
}

/// Everything a lister needs for one region.
pub struct Context {
    pub config: SdkConfig,
    pub account: String,
    pub region: String,
}

/// One resource type: lists one scope completely, or returns the error.
#[allow(async_fn_in_trait)]
pub trait AwsLister {
    fn resource_types(&self) -> Vec<&'static str>;
    /// IAM and other global services are listed once, not per region.
    fn global(&self) -> bool;
    async fn list(&self, ctx: &Context) -> Result<Vec<Observation>, String>;
}

pub async fn sdk_config(target: &AwsTarget, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(target.max_attempts.max(1))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        );
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(p) = &target.profile {
        loader = loader.profile_name(p);
    }
    loader.load().await
}

/// Reads AWS error messages with their causes, never just "service error".
pub fn describe<E: std::error::Error>(e: &E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}

/// Sweeps the given listers across the target's regions.
pub struct AwsSweep {
    pub target: AwsTarget,
    pub listers: Vec<Box<dyn AwsListerDyn>>,
}

/// Object-safe wrapper for [`AwsLister`].
pub trait AwsListerDyn {
    fn resource_types(&self) -> Vec<&'static str>;
    fn global(&self) -> bool;
    fn list<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Observation>, String>> + 'a>>;
}

impl<T: AwsLister> AwsListerDyn for T {
    fn resource_types(&self) -> Vec<&'static str> {
        AwsLister::resource_types(self)
    }
    fn global(&self) -> bool {
        AwsLister::global(self)
    }
    fn list<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Observation>, String>> + 'a>>
    {
        Box::pin(AwsLister::list(self, ctx))
    }
}

impl AwsSweep {
    pub fn all(target: AwsTarget) -> AwsSweep {
        AwsSweep {
            target,
            listers: vec![Box::new(Iam), Box::new(SecurityGroups)],
        }
    }

    async fn run(
        &self,
        c: &mut dyn Collector,
        progress: &dyn Progress,
    ) -> Result<(), CollectError> {
        let origin = format!(
            "aws:{}",
            self.target
                .endpoint_url
                .as_deref()
                .unwrap_or("default endpoints")
        );
        let first_region = self
            .target
            .regions
            .first()
            .cloned()
            .unwrap_or_else(|| "us-east-1".into());
        let base = sdk_config(&self.target, &first_region).await;
        let account = match aws_sdk_sts_account(&base).await {
            Ok(a) => a,
            Err(e) => {
                c.begin_listing(Listing {
                    origin: origin.clone(),
                    cause: Cause::Sweep,
                    observed_at: Utc::now(),
                })?;
                c.error(SourceError { origin, item: None, scope: None, message: format!("cannot identify the account (sts:GetCallerIdentity): {e}; check credentials and --endpoint-url") });
                return c.end_listing(Coverage::Nothing);
            }
        };
        progress.begin((self.listers.len() * self.target.regions.len().max(1)) as u64);
        for lister in &self.listers {
            let regions: Vec<String> = if lister.global() {
                vec![first_region.clone()]
            } else {
                self.target.regions.clone()
            };
            for region in regions {
                let config = if region == first_region {
                    base.clone()
                } else {
                    sdk_config(&self.target, &region).await
                };
                let scope_region = if lister.global() {
                    "global".to_owned()
                } else {
                    region.clone()
                };
                let ctx = Context {
                    config,
                    account: account.clone(),
                    region: region.clone(),
                };
                let scopes: Vec<Scope> = lister
                    .resource_types()
                    .into_iter()
                    .map(|t| Scope {
                        account: account.clone(),
                        region: scope_region.clone(),
                        resource_type: t.to_owned(),
                    })
                    .collect();
                let listing_origin = format!(
                    "aws:{account}/{scope_region}/{}",
                    lister.resource_types().join(",")
                );
                progress.file(&listing_origin);
                c.begin_listing(Listing {
                    origin: listing_origin.clone(),
                    cause: Cause::Sweep,
                    observed_at: Utc::now(),
                })?;
                match lister.list(&ctx).await {
                    Ok(items) => {
                        for o in items {
                            progress.item();
                            c.observe(o)?;
                        }
                        c.end_listing(Coverage::Scopes(scopes))?;
                    }
                    Err(message) => {
                        // A listing that failed after retries vouches for nothing:
                        // every item of these scopes keeps its last revision.
                        for s in scopes {
                            c.error(SourceError {
                                origin: listing_origin.clone(),
                                item: None,
                                scope: Some(s),
                                message: message.clone(),
                            });
                        }
                        c.end_listing(Coverage::Nothing)?;
                    }
                }
            }
        }
        progress.finish();
        Ok(())
    }
}

async fn aws_sdk_sts_account(config: &SdkConfig) -> Result<String, String> {
    let sts = aws_sdk_sts::Client::new(config);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| describe(&e))?;
    out.account()
        .map(str::to_owned)
        .ok_or_else(|| "no account in the answer".into())
}

impl Watcher for AwsSweep {
    fn describe(&self) -> String {
        format!("AWS APIs ({})", self.target.regions.join(", "))
    }

    fn sweep(
        &mut self,
        c: &mut dyn Collector,
        progress: &dyn Progress,
    ) -> Result<(), CollectError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(self.run(c, progress))
    }
}
