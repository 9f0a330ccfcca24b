//! Watchers that read the AWS APIs directly (read-only: List/Get/Describe only).
//!
//! Each resource type is one [`AwsLister`] in its own file: it lists one scope
//! (account, region, type) completely or fails. [`AwsSweep`] runs the listers of every
//! account and region concurrently, bounded per (account, region, service), and reports
//! each listing with its coverage, so a failed call keeps the last revisions instead of
//! deleting anything. Items have the same shape as AWS Config's, so one rule serves both
//! sources.

mod accounts;
mod s3_deliveries;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use guardrail_model::{
    Cause, CollectError, Collector, Coverage, ItemKey, Listing, Observation, Scope, SourceError,
};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::normalize::normalize_lenient;
use crate::{Progress, Watcher};

pub use accounts::{check_accounts, AccessCheck, AccountAccess};
pub use s3_deliveries::S3Deliveries;

/// Declares each lister's module and builds the full list: one line per resource
/// type (`module::Type = constructor`), so a new type is a file and a line.
macro_rules! listers {
    ($target:ident => $($module:ident::$ty:ident = $make:expr,)+) => {
        $(mod $module; pub use $module::$ty;)+

        /// Every lister, in sweep order (`AwsSweep::new` narrows it to `target.only`).
        fn all_listers($target: &AwsTarget) -> Vec<Box<dyn AwsListerDyn>> {
            vec![$(Box::new($make)),+]
        }
    };
}

listers! { target =>
    iam::Iam = Iam,
    s3_bucket::Buckets = Buckets,
    s3_account_public_access_block::AccountPublicAccessBlock = AccountPublicAccessBlock,
    ec2_security_group::SecurityGroups = SecurityGroups,
    ec2_instance::Instances = Instances,
    ec2_vpc::Vpcs = Vpcs,
    ec2_subnet::Subnets = Subnets,
    ec2_network_acl::NetworkAcls = NetworkAcls,
    ec2_route_table::RouteTables = RouteTables,
    ec2_internet_gateway::InternetGateways = InternetGateways,
    config_api::ConfigRecorded = ConfigRecorded::new(
        target.config_types.clone(),
        target.config_aggregator.clone(),
    ),
}

/// One account to sweep, and how to get into it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsAccount {
    /// The id the credentials must land in; checked against sts:GetCallerIdentity so a
    /// wrong role ARN cannot silently sweep (and later "delete") another account.
    pub id: Option<String>,
    /// Role to assume from the base credentials; none = use them directly.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// Regions for this account; empty = the target's default regions; `all` = every
    /// region enabled in the account (ec2:DescribeRegions).
    pub regions: Vec<String>,
}

/// Where and how to reach AWS.
#[derive(Debug, Clone)]
pub struct AwsTarget {
    pub accounts: Vec<AwsAccount>,
    /// Regions of accounts that name none.
    pub regions: Vec<String>,
    /// An emulator or VPC endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Profile of the base credentials (the standard chain otherwise).
    pub profile: Option<String>,
    /// Attempts per call, adaptive retry with capped backoff.
    pub max_attempts: u32,
    /// Calls in flight at once per (account, region, service).
    pub concurrency: usize,
    /// Which services' listers run (`iam`, `s3`, `ec2`, `config`); empty = the API
    /// watchers (everything but `config`).
    pub only: Vec<String>,
    /// AWS Config API source: resource types to read, and an optional aggregator.
    pub config_types: Vec<String>,
    pub config_aggregator: Option<String>,
    /// Overall deadline of one API call, retries included.
    pub call_timeout_seconds: u64,
}

impl Default for AwsTarget {
    fn default() -> Self {
        AwsTarget {
            accounts: Vec::new(),
            regions: Vec::new(),
            endpoint_url: None,
            profile: None,
            max_attempts: 5,
            concurrency: 4,
            only: Vec::new(),
            config_types: Vec::new(),
            config_aggregator: None,
            call_timeout_seconds: 60,
        }
    }
}

/// Services a lister can belong to, for `--only`.
pub const SERVICES: &[&str] = &["iam", "s3", "ec2", "config"];

/// How far one listing of a lister reaches, which decides its coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Listed per region; covers (account, region, type).
    Regional,
    /// Listed once per account; items and coverage in region `global` (IAM).
    Global,
    /// Listed once per account, items in their own regions; covers the type in every
    /// region (S3 buckets: ListBuckets answers for all regions).
    EveryRegion,
    /// Listed once through an AWS Config aggregator: items of many accounts and
    /// regions; covers the (account, region, type) scopes it returned items for.
    Aggregated,
}

/// Everything a lister needs for one listing.
pub struct Context {
    pub config: SdkConfig,
    pub account: String,
    pub region: String,
    /// Bounds the calls in flight for this (account, region, service).
    limiter: Arc<Semaphore>,
    concurrency: usize,
}

impl Context {
    /// Taken around every call so one service in one region never sees more than the
    /// configured number of requests at once, whatever else the sweep is doing.
    pub async fn permit(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed, so acquire cannot fail.
        loop {
            if let Ok(p) = self.limiter.acquire().await {
                return p;
            }
        }
    }

    /// The concurrency allowed, for fan-out over detail calls.
    pub fn fan_out(&self) -> usize {
        self.concurrency.max(1)
    }
}

/// What one listing produced: the items it could read in full, and problems with
/// single items (which leave their scope incomplete, so nothing there is deleted).
#[derive(Default)]
pub struct Listed {
    pub items: Vec<Observation>,
    pub problems: Vec<Problem>,
}

pub struct Problem {
    pub resource_type: String,
    /// The item's region when known; `None` taints the type in every region listed.
    pub region: Option<String>,
    pub item: Option<String>,
    pub message: String,
}

/// One resource type (or a family read by one call, like IAM's authorization details).
#[allow(async_fn_in_trait)]
pub trait AwsLister {
    fn service(&self) -> &'static str;
    fn resource_types(&self) -> Vec<String>;
    fn reach(&self) -> Reach;
    /// Lists one scope completely, or returns why it could not.
    async fn list(&self, ctx: &Context) -> Result<Listed, String>;
}

type ListFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Listed, String>> + 'a>>;

/// Object-safe wrapper for [`AwsLister`].
pub trait AwsListerDyn {
    fn service(&self) -> &'static str;
    fn resource_types(&self) -> Vec<String>;
    fn reach(&self) -> Reach;
    fn list<'a>(&'a self, ctx: &'a Context) -> ListFuture<'a>;
}

impl<T: AwsLister> AwsListerDyn for T {
    fn service(&self) -> &'static str {
        AwsLister::service(self)
    }
    fn resource_types(&self) -> Vec<String> {
        AwsLister::resource_types(self)
    }
    fn reach(&self) -> Reach {
        AwsLister::reach(self)
    }
    fn list<'a>(&'a self, ctx: &'a Context) -> ListFuture<'a> {
        Box::pin(AwsLister::list(self, ctx))
    }
}

/// The regions to sweep where none are configured: the SDK's own region chain
/// (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`), else us-east-1.
pub async fn configured_regions(target: &AwsTarget, own: &[String]) -> Vec<String> {
    if !own.is_empty() {
        return own.to_vec();
    }
    if !target.regions.is_empty() {
        return target.regions.clone();
    }
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(p) = &target.profile {
        chain = chain.profile_name(p);
    }
    let region = chain.build().region().await;
    vec![region.map_or_else(|| "us-east-1".to_owned(), |r| r.to_string())]
}

/// The SDK configuration of the base credentials in one region.
pub async fn sdk_config(target: &AwsTarget, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(target.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(20))
                .operation_attempt_timeout(Duration::from_secs(20))
                // One deadline over all attempts of a call: a stalled endpoint costs
                // this, not attempts x attempt timeout.
                .operation_timeout(Duration::from_secs(target.call_timeout_seconds.max(1)))
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

/// The configuration for one account: the base credentials, or a role assumed from
/// them. The assume-role provider caches its credentials and refreshes them before
/// they expire, so long sweeps keep working.
pub async fn account_config(base: &SdkConfig, account: &AwsAccount) -> SdkConfig {
    let Some(role) = &account.role_arn else {
        return base.clone();
    };
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.clone())
        .session_name(
            account
                .session_name
                .clone()
                .unwrap_or_else(|| "guardrail".into()),
        )
        .configure(base);
    if let Some(x) = &account.external_id {
        builder = builder.external_id(x.clone());
    }
    let provider = builder.build().await;
    base.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// The same configuration in another region.
fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build()
}

/// Every page of a paginated call, each page under the (account, region, service)
/// limit. Any failed page fails the whole listing: a partial list must not read as
/// complete.
pub async fn all_pages<
    T,
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata,
>(
    ctx: &Context,
    operation: &str,
    mut pages: aws_smithy_async::future::pagination_stream::PaginationStream<Result<T, E>>,
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    loop {
        let page = {
            let _p = ctx.permit().await;
            pages.next().await
        };
        match page {
            None => return Ok(out),
            Some(Ok(p)) => out.push(p),
            Some(Err(e)) => {
                return Err(format!(
                    "{operation} in {} failed: {}",
                    ctx.region,
                    describe(&e)
                ))
            }
        }
    }
}

/// An AWS error as a person reads it: `<code>: <message>` when AWS answered, else
/// what went wrong on the way (unreachable, no answer in time) with its innermost
/// cause, plus a hint naming the fix. Never the SDK's multi-line debug dump.
pub fn describe<E>(e: &E) -> String
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    let text = match (e.code(), e.message()) {
        (Some(code), message) => {
            let message = message.unwrap_or("(no message)");
            match hint(code) {
                Some(h) => format!("{code}: {message} ({h})"),
                None => format!("{code}: {message}"),
            }
        }
        (None, _) => {
            let mut innermost: &dyn std::error::Error = e;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            let top = e.to_string();
            let (what, fix) = if top.contains("dispatch") {
                (
                    "cannot reach the endpoint",
                    "check the network, a proxy, or --endpoint-url",
                )
            } else if top.contains("timed out") || top.contains("timeout") {
                (
                    "no answer in time",
                    "the endpoint is stalled or unreachable; each call gives up after its deadline",
                )
            } else if top.contains("response") {
                (
                    "the answer could not be read",
                    "retry; report it if it persists",
                )
            } else if top.contains("construct") {
                (
                    "the request could not be built",
                    "check the region, endpoint and credentials settings",
                )
            } else if top.contains("service error") {
                (
                    "AWS refused the request without an error code",
                    "see the cause",
                )
            } else {
                ("the request failed", "see the cause")
            };
            let cause = innermost.to_string();
            if std::ptr::addr_eq(innermost, e as &dyn std::error::Error) || cause == top {
                format!("{what} ({fix})")
            } else {
                format!("{what}: {cause} ({fix})")
            }
        }
    };
    shorten(&text, 400)
}

/// What to do about an AWS error code.
fn hint(code: &str) -> Option<&'static str> {
    if code.contains("AccessDenied")
        || code == "UnauthorizedOperation"
        || code == "AuthorizationError"
    {
        Some("missing permission: grant the action to the monitor's role; examples/iam-policy.json lists them all")
    } else if code.contains("Throttl")
        || code == "RequestLimitExceeded"
        || code == "SlowDown"
        || code == "TooManyRequestsException"
    {
        Some("throttled even after retries: lower [aws] concurrency or sweep less often")
    } else if [
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "InvalidAccessKeyId",
    ]
    .contains(&code)
    {
        Some("the credentials were refused: check the profile or role, and the clock")
    } else if code == "OptInRequired" {
        Some("the region is not enabled for this account: drop it from regions")
    } else {
        None
    }
}

fn shorten(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() <= max {
        return one_line;
    }
    let mut end = max;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

/// An SDK timestamp as RFC 3339, as AWS Config writes them.
pub fn time(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

/// `[{key, value}]` as AWS Config writes tags, and the same as a map for the item row.
pub fn tag_pairs<'a>(
    pairs: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> (Value, BTreeMap<String, String>) {
    let map: BTreeMap<String, String> = pairs
        .filter_map(|(k, v)| Some((k?.to_owned(), v.unwrap_or_default().to_owned())))
        .collect();
    let list = map
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    (list, map)
}

/// Builds a normalised observation in AWS Config's item shape.
pub struct ItemDoc<'a> {
    pub resource_type: &'static str,
    pub account: &'a str,
    pub region: &'a str,
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub arn: String,
    pub configuration: Value,
    pub supplementary: Value,
    pub relationships: Vec<Value>,
    pub tags: BTreeMap<String, String>,
}

impl ItemDoc<'_> {
    pub fn observe(self) -> Result<Observation, String> {
        let mut doc = json!({
            "configuration": self.configuration,
            "supplementaryConfiguration": self.supplementary,
        });
        if !self.relationships.is_empty() {
            doc["relationships"] = Value::Array(self.relationships);
        }
        // An unreadable field (a broken policy) stays raw; storage decides.
        let (ephemeral, unreadable) = normalize_lenient(self.resource_type, &mut doc);
        Ok(Observation {
            key: ItemKey {
                account: self.account.to_owned(),
                region: self.region.to_owned(),
                resource_type: self.resource_type.to_owned(),
                resource_id: self.id.to_owned(),
            },
            arn: Some(self.arn),
            name: self.name.map(str::to_owned),
            tags: self.tags,
            config: doc,
            ephemeral: Value::Object(ephemeral),
            observed_at: Utc::now(),
            unreadable: unreadable.iter().map(|e| e.to_string()).collect(),
        })
    }
}

/// A relationship entry as AWS Config writes it.
pub fn relationship(resource_type: &str, id: Option<&str>, name: &str) -> Option<Value> {
    Some(json!({
        "resourceType": resource_type,
        "resourceId": id?,
        "relationshipName": name,
    }))
}

/// Sweeps the given listers across the target's accounts and regions.
pub struct AwsSweep {
    pub target: AwsTarget,
    pub listers: Vec<Box<dyn AwsListerDyn>>,
}

/// Listings run at once across the whole sweep; each one is further bounded per
/// (account, region, service) by [`Context::permit`].
const LISTINGS_IN_FLIGHT: usize = 8;

struct Job<'a> {
    lister: &'a dyn AwsListerDyn,
    ctx: Context,
    scope_region: String,
    reach: Reach,
}

/// One account ready to sweep: its id and a configuration per region.
struct Prepared {
    account: String,
    regions: Vec<(String, SdkConfig)>,
}

type Limiters = Mutex<HashMap<(String, String, &'static str), Arc<Semaphore>>>;

impl AwsSweep {
    /// Every API watcher (`target.only` narrows it; `config` adds the AWS Config API
    /// source for `target.config_types`).
    pub fn new(target: AwsTarget) -> Result<AwsSweep, String> {
        for s in &target.only {
            if !SERVICES.contains(&s.as_str()) {
                return Err(format!(
                    "unknown service {s:?} in --only; use one or more of {}",
                    SERVICES.join(", ")
                ));
            }
        }
        let wants_config = target.only.iter().any(|s| s == "config");
        if wants_config && target.config_types.is_empty() {
            return Err(
                "the AWS Config API source needs resource types: set [aws] config_types = [\"AWS::S3::Bucket\", ...] in the config file"
                    .into(),
            );
        }
        let all = all_listers(&target);
        let wanted = |s: &str| {
            if target.only.is_empty() {
                s != "config"
            } else {
                target.only.iter().any(|o| o == s)
            }
        };
        let listers = all.into_iter().filter(|l| wanted(l.service())).collect();
        Ok(AwsSweep { target, listers })
    }

    /// The accounts to sweep: the configured ones, or the base credentials' own.
    fn accounts(&self) -> Vec<AwsAccount> {
        if self.target.accounts.is_empty() {
            vec![AwsAccount::default()]
        } else {
            self.target.accounts.clone()
        }
    }

    async fn prepare(&self, base: &SdkConfig, account: &AwsAccount) -> Result<Prepared, String> {
        let config = account_config(base, account).await;
        let id = accounts::caller_account(&config).await.map_err(|e| {
            format!(
                "cannot identify the account{} (sts:GetCallerIdentity): {e}; check {}",
                account
                    .role_arn
                    .as_deref()
                    .map(|r| format!(" behind {r}"))
                    .unwrap_or_default(),
                if account.role_arn.is_some() {
                    "the base credentials, the role's trust policy and the external id"
                } else {
                    "the credentials and --endpoint-url"
                }
            )
        })?;
        if let Some(expected) = &account.id {
            if expected != &id {
                return Err(format!(
                    "credentials for account {expected} landed in account {id}; fix role_arn for [accounts.\"{expected}\"]"
                ));
            }
        }
        let names = configured_regions(&self.target, &account.regions).await;
        let names = if names.iter().any(|r| r == "all") {
            accounts::enabled_regions(&config).await?
        } else {
            names
        };
        Ok(Prepared {
            account: id,
            regions: names
                .into_iter()
                .map(|r| {
                    let c = in_region(&config, &r);
                    (r, c)
                })
                .collect(),
        })
    }

    /// The listings of one prepared account.
    fn jobs<'a>(&'a self, p: &Prepared, limiters: &Limiters, out: &mut Vec<Job<'a>>) {
        let Some((first_region, first_config)) = p.regions.first().cloned() else {
            return;
        };
        let limiter = |region: &str, service: &'static str| {
            let mut m = limiters.lock().unwrap_or_else(|e| e.into_inner());
            m.entry((p.account.clone(), region.to_owned(), service))
                .or_insert_with(|| Arc::new(Semaphore::new(self.target.concurrency.max(1))))
                .clone()
        };
        for lister in &self.listers {
            let reach = lister.reach();
            let places: Vec<(String, SdkConfig)> = match reach {
                Reach::Regional => p.regions.clone(),
                Reach::Global | Reach::EveryRegion | Reach::Aggregated => {
                    vec![(first_region.clone(), first_config.clone())]
                }
            };
            for (region, config) in places {
                let scope_region = match reach {
                    Reach::Global => "global".to_owned(),
                    _ => region.clone(),
                };
                out.push(Job {
                    lister: lister.as_ref(),
                    ctx: Context {
                        limiter: limiter(&scope_region, lister.service()),
                        concurrency: self.target.concurrency,
                        config,
                        account: p.account.clone(),
                        region,
                    },
                    scope_region,
                    reach,
                });
            }
        }
    }

    async fn run(
        &self,
        c: &mut dyn Collector,
        progress: &dyn Progress,
    ) -> Result<(), CollectError> {
        let home = configured_regions(&self.target, &[])
            .await
            .into_iter()
            .next()
            .filter(|r| r != "all")
            .unwrap_or_else(|| "us-east-1".into());
        let base = sdk_config(&self.target, &home).await;
        let limiters = Limiters::default();
        let mut jobs = Vec::new();
        for account in self.accounts() {
            let entering = format!(
                "entering account {} (sts:GetCallerIdentity{}, enabled regions)",
                account.id.as_deref().unwrap_or("of the base credentials"),
                if account.role_arn.is_some() {
                    ", sts:AssumeRole"
                } else {
                    ""
                }
            );
            match reporting(progress, &entering, self.prepare(&base, &account)).await {
                Ok(p) => self.jobs(&p, &limiters, &mut jobs),
                Err(message) => {
                    // Nothing of this account is vouched for: no deletions anywhere in it.
                    tracing::warn!(%message, "account skipped");
                    let origin = format!(
                        "aws:{}",
                        account
                            .id
                            .as_deref()
                            .or(account.role_arn.as_deref())
                            .unwrap_or("current credentials")
                    );
                    c.begin_listing(Listing {
                        origin: origin.clone(),
                        cause: Cause::Sweep,
                        observed_at: Utc::now(),
                    })?;
                    c.error(SourceError {
                        origin,
                        item: None,
                        scope: None,
                        message,
                    });
                    c.end_listing(Coverage::Nothing)?;
                }
            }
        }
        progress.begin(jobs.len() as u64);
        let mut pending = jobs.iter();
        let mut running = FuturesUnordered::new();
        for job in pending.by_ref().take(LISTINGS_IN_FLIGHT) {
            running.push(run_job(job));
        }
        let mut in_flight: Vec<String> = jobs
            .iter()
            .take(LISTINGS_IN_FLIGHT)
            .map(origin_of)
            .collect();
        let mut quiet_since = std::time::Instant::now();
        loop {
            let next = tokio::select! {
                done = running.next() => done,
                _ = tokio::time::sleep(crate::WAITING_EVERY) => {
                    progress.waiting(&in_flight.join(", "), quiet_since.elapsed().as_secs());
                    continue;
                }
            };
            let Some((job, started, outcome)) = next else {
                break;
            };
            quiet_since = std::time::Instant::now();
            let done = origin_of(job);
            in_flight.retain(|o| *o != done);
            if let Some(next) = pending.next() {
                in_flight.push(origin_of(next));
                running.push(run_job(next));
            }
            // Storage is fed one whole listing at a time, in completion order; the
            // listing's time is when it started, so it never outranks a newer one.
            record(c, job, started, outcome)?;
            progress.file(&origin_of(job));
        }
        progress.finish();
        Ok(())
    }
}

/// Awaits `fut`, telling `progress` what is still running every [`crate::WAITING_EVERY`]
/// of silence.
async fn reporting<F: std::future::Future>(
    progress: &dyn Progress,
    what: &str,
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tokio::time::sleep(crate::WAITING_EVERY) => {
                progress.waiting(what, started.elapsed().as_secs());
            }
        }
    }
}

/// Runs one listing, noting when it started (its futures are polled as soon as pushed).
async fn run_job<'j, 'a>(job: &'j Job<'a>) -> (&'j Job<'a>, DateTime<Utc>, Result<Listed, String>) {
    let started = Utc::now();
    let outcome = job.lister.list(&job.ctx).await;
    (job, started, outcome)
}

fn origin_of(job: &Job<'_>) -> String {
    format!(
        "aws:{}/{}/{}",
        job.ctx.account,
        job.scope_region,
        job.lister.resource_types().join(",")
    )
}

fn record(
    c: &mut dyn Collector,
    job: &Job<'_>,
    started: DateTime<Utc>,
    outcome: Result<Listed, String>,
) -> Result<(), CollectError> {
    let origin = origin_of(job);
    let account = &job.ctx.account;
    let scope = |region: &str, t: &str| Scope {
        account: account.clone(),
        region: region.to_owned(),
        resource_type: t.to_owned(),
    };
    c.begin_listing(Listing {
        origin: origin.clone(),
        cause: Cause::Sweep,
        observed_at: started,
    })?;
    let types = job.lister.resource_types();
    let listed = match outcome {
        Ok(listed) => listed,
        Err(message) => {
            // A listing that failed after retries vouches for nothing: every item of
            // these scopes keeps its last revision.
            tracing::warn!(%origin, %message, "listing failed");
            for t in &types {
                c.error(SourceError {
                    origin: origin.clone(),
                    item: None,
                    scope: Some(scope(&job.scope_region, t)),
                    message: message.clone(),
                });
            }
            return c.end_listing(Coverage::Nothing);
        }
    };
    for p in listed.problems {
        // A problem without a region taints the type everywhere this listing reaches
        // (no scope = the whole listing).
        let s = match (job.reach, p.region) {
            (Reach::EveryRegion | Reach::Aggregated, None) => None,
            (Reach::EveryRegion | Reach::Aggregated, Some(r)) => Some(scope(&r, &p.resource_type)),
            _ => Some(scope(&job.scope_region, &p.resource_type)),
        };
        c.error(SourceError {
            origin: origin.clone(),
            item: p.item,
            scope: s,
            message: p.message,
        });
    }
    let seen: BTreeSet<Scope> = listed.items.iter().map(|o| o.key.scope()).collect();
    for o in listed.items {
        c.observe(o)?;
    }
    match (job.reach, types.as_slice()) {
        // An aggregator vouches only for the scopes it answered for.
        (Reach::Aggregated, _) => c.end_listing(Coverage::Scopes(seen.into_iter().collect())),
        // ListBuckets answers for every region at once.
        (Reach::EveryRegion, [t]) => c.end_listing(Coverage::EveryRegion {
            account: account.clone(),
            resource_type: t.clone(),
        }),
        _ => c.end_listing(Coverage::Scopes(
            types.iter().map(|t| scope(&job.scope_region, t)).collect(),
        )),
    }
}

impl Watcher for AwsSweep {
    fn describe(&self) -> String {
        let mut services: Vec<&str> = self.listers.iter().map(|l| l.service()).collect();
        services.dedup();
        format!(
            "AWS APIs ({}; {} account(s); {})",
            services.join(", "),
            self.accounts().len(),
            if self.target.regions.is_empty() {
                "the SDK's default region".to_owned()
            } else {
                self.target.regions.join(", ")
            }
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::error::metadata::{ErrorMetadata, ProvideErrorMetadata};

    #[derive(Debug)]
    struct Answered(ErrorMetadata);
    impl std::fmt::Display for Answered {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "service error")
        }
    }
    impl std::error::Error for Answered {}
    impl ProvideErrorMetadata for Answered {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }

    #[derive(Debug)]
    struct Unreachable(std::io::Error, ErrorMetadata);
    impl std::fmt::Display for Unreachable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "dispatch failure")
        }
    }
    impl std::error::Error for Unreachable {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl ProvideErrorMetadata for Unreachable {
        fn meta(&self) -> &ErrorMetadata {
            &self.1
        }
    }

    #[test]
    fn errors_read_as_code_message_and_the_fix() {
        let denied = Answered(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("User: arn:aws:sts::1:assumed-role/guardrail is not authorized to perform: iam:GetRole")
                .build(),
        );
        let d = describe(&denied);
        assert!(
            d.starts_with(
                "AccessDenied: User: arn:aws:sts::1:assumed-role/guardrail is not authorized"
            ),
            "{d}"
        );
        assert!(
            d.contains("missing permission") && d.contains("iam-policy.json"),
            "{d}"
        );
        let throttled = Answered(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        );
        assert!(describe(&throttled).contains("lower [aws] concurrency"));
        let other = Answered(
            ErrorMetadata::builder()
                .code("NoSuchEntity")
                .message("gone")
                .build(),
        );
        assert_eq!(describe(&other), "NoSuchEntity: gone");
        let down = Unreachable(
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            ),
            ErrorMetadata::builder().build(),
        );
        let d = describe(&down);
        assert_eq!(
            d,
            "cannot reach the endpoint: Connection refused (os error 111) (check the network, a proxy, or --endpoint-url)"
        );
        let long = Answered(
            ErrorMetadata::builder()
                .code("X")
                .message("m\n".repeat(1000))
                .build(),
        );
        let d = describe(&long);
        assert!(d.len() < 420 && !d.contains('\n'), "{}", d.len());
    }
}
