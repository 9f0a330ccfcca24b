//! The lister seam: [`AwsLister`] lists one scope (account, region, type) completely
//! or says why not; [`Context`] carries the SDK configuration and the per-(account,
//! region, service) call limits (calls in flight, and their pace: `super::pace`);
//! [`client!`] makes a service client whose attempts the pace hears of; [`all_pages`] pages a call under that limit; and
//! [`ItemDoc`] builds an item in AWS Config's shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::Utc;
use guardrail_model::{ItemKey, Observation};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::pace::{Observer, PaceReport, Pacer};

use super::sdk::describe;
use crate::normalize::normalize_lenient;

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

/// The limits of one (account, region, service), shared by every listing there: how
/// many calls are in flight at once, and how fast new ones start.
#[derive(Debug)]
pub struct CallLimit {
    in_flight: Semaphore,
    pace: Arc<Pacer>,
}

impl CallLimit {
    /// `concurrency` calls at once; `max_rate` calls a second at most (infinite: no
    /// cap until AWS throttles).
    pub fn new(concurrency: usize, max_rate: f64) -> CallLimit {
        CallLimit {
            in_flight: Semaphore::new(concurrency.max(1)),
            pace: Arc::new(Pacer::new(max_rate)),
        }
    }

    /// What the pace did so far: calls, throttles, slowdowns, the lowest rate.
    pub fn report(&self) -> PaceReport {
        self.pace.report()
    }
}

/// Everything a lister needs for one listing.
pub struct Context {
    pub config: SdkConfig,
    pub account: String,
    pub region: String,
    /// Bounds and paces the calls of this (account, region, service).
    pub(super) limit: Arc<CallLimit>,
    pub(super) concurrency: usize,
}

impl Context {
    /// Taken around every call so one service in one region never sees more than the
    /// configured number of requests at once, whatever else the sweep is doing, and
    /// new calls start no faster than the pace allows.
    pub async fn permit(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed, so acquire cannot fail.
        let permit = loop {
            if let Ok(p) = self.limit.in_flight.acquire().await {
                break p;
            }
        };
        self.limit.pace.acquire().await;
        permit
    }

    /// The interceptor a client of this context carries (see [`client!`]), so every
    /// attempt's answer, retries included, reaches the pace.
    pub fn observer(&self) -> Observer {
        self.limit.pace.observer()
    }

    /// The concurrency allowed, for fan-out over detail calls.
    pub fn fan_out(&self) -> usize {
        self.concurrency.max(1)
    }

    /// A context for one account and region with no endpoint behind it, for tests of
    /// what a lister makes of an answer.
    #[cfg(test)]
    pub(crate) fn for_tests(account: &str, region: &str) -> Context {
        Context {
            config: SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
            account: account.to_owned(),
            region: region.to_owned(),
            limit: Arc::new(CallLimit::new(1, f64::INFINITY)),
            concurrency: 1,
        }
    }
}

/// A client of an SDK crate for a [`Context`]: `client!(aws_sdk_iam, ctx)`. Its every
/// attempt tells the context's pace how AWS answered.
macro_rules! client {
    ($sdk:ident, $ctx:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from(&$ctx.config)
                .interceptor($ctx.observer())
                .build(),
        )
    };
}
pub(crate) use client;

/// What one listing produced: the items it could read in full, and problems with
/// single items (which leave their scope incomplete, so nothing there is deleted).
#[derive(Default)]
pub struct Listed {
    pub items: Vec<Observation>,
    pub problems: Vec<Problem>,
}

/// What reading one listed item's detail came to.
pub enum ItemOutcome {
    Item(Box<Observation>),
    /// Deleted between the listing and its detail calls: not a problem, not an item.
    Gone,
    Failed(String),
}

/// Reads the detail of every listed id with `read`, up to the context's fan-out at
/// once, and turns the outcomes into a listing: a failure is a problem of that item
/// only (in this region), the others are stored.
pub async fn each_item<'a, F, Fut>(
    ctx: &'a Context,
    resource_type: &str,
    ids: Vec<String>,
    read: F,
) -> Listed
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ItemOutcome> + 'a,
{
    use futures::stream::{self, StreamExt};
    let outcomes: Vec<(String, ItemOutcome)> = stream::iter(ids)
        .map(|id| {
            let f = read(id.clone());
            async move { (id, f.await) }
        })
        .buffer_unordered(ctx.fan_out())
        .collect()
        .await;
    listed_of(ctx, resource_type, outcomes)
}

/// [`each_item`] over the elements a listing call answered, by id: `read(id, element)`
/// reads each one's detail.
pub async fn each_element<'a, T, F, Fut>(
    ctx: &'a Context,
    resource_type: &str,
    elements: &'a std::collections::HashMap<String, T>,
    read: F,
) -> Listed
where
    F: Fn(&'a str, &'a T) -> Fut,
    Fut: std::future::Future<Output = ItemOutcome> + 'a,
{
    use futures::stream::{self, StreamExt};
    let outcomes: Vec<(String, ItemOutcome)> = stream::iter(elements.iter())
        .map(|(id, e)| {
            let f = read(id, e);
            async move { (id.clone(), f.await) }
        })
        .buffer_unordered(ctx.fan_out())
        .collect()
        .await;
    listed_of(ctx, resource_type, outcomes)
}

/// A listing of per-item outcomes: a failure is a problem of that item only (in this
/// region), the others are stored.
fn listed_of(ctx: &Context, resource_type: &str, outcomes: Vec<(String, ItemOutcome)>) -> Listed {
    let mut listed = Listed::default();
    for (id, o) in outcomes {
        match o {
            ItemOutcome::Item(o) => listed.items.push(*o),
            ItemOutcome::Gone => {}
            ItemOutcome::Failed(message) => listed.problems.push(Problem {
                resource_type: resource_type.into(),
                region: Some(ctx.region.clone()),
                item: Some(id),
                message,
            }),
        }
    }
    listed
}

/// One detail call of one item, under the (account, region, service) limit: its
/// answer; `None` when the error code is one of `absent` (the item simply has none of
/// it: no policy set); or the item's outcome when it cannot be read: gone when the code
/// is one of `gone` (deleted since the listing), failed otherwise, naming the call.
pub async fn detail_or_absent<T, E, F>(
    ctx: &Context,
    operation: &str,
    gone: &[&str],
    absent: &[&str],
    call: F,
) -> Result<Option<T>, ItemOutcome>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    let out = {
        let _p = ctx.permit().await;
        call.await
    };
    match out {
        Ok(o) => Ok(Some(o)),
        Err(e) => match e.code() {
            Some(c) if absent.contains(&c) => Ok(None),
            Some(c) if gone.contains(&c) => Err(ItemOutcome::Gone),
            _ => Err(ItemOutcome::Failed(format!(
                "{operation} failed: {}",
                describe(&e)
            ))),
        },
    }
}

/// [`detail_or_absent`] for a call every item answers.
pub async fn detail<T, E, F>(
    ctx: &Context,
    operation: &str,
    gone: &[&str],
    call: F,
) -> Result<T, ItemOutcome>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    detail_or_absent(ctx, operation, gone, &[], call)
        .await?
        .ok_or_else(|| ItemOutcome::Failed(format!("{operation} gave no answer")))
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
    /// Reads one item by id, for an event-driven refresh, with the same calls and
    /// the same item shape as a listing. `None`: this lister cannot read single items
    /// (the next sweep records the change). `id` is the item's id or, for types whose
    /// events name them otherwise (IAM principals by name), what the event names.
    async fn read_one(&self, _ctx: &Context, _resource_type: &str, _id: &str) -> Option<ReadOne> {
        None
    }
}

/// One item read by id: the item; `Ok(None)`, AWS said authoritatively that no such
/// item exists (the only answer that may record a deletion outside a sweep); or why
/// it could not be read.
pub type ReadOne = Result<Option<Observation>, String>;

impl From<ItemOutcome> for ReadOne {
    fn from(o: ItemOutcome) -> ReadOne {
        match o {
            ItemOutcome::Item(o) => Ok(Some(*o)),
            ItemOutcome::Gone => Ok(None),
            ItemOutcome::Failed(e) => Err(e),
        }
    }
}

type ListFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Listed, String>> + 'a>>;
type ReadFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Option<ReadOne>> + 'a>>;

/// Object-safe wrapper for [`AwsLister`].
pub trait AwsListerDyn {
    fn service(&self) -> &'static str;
    fn resource_types(&self) -> Vec<String>;
    fn reach(&self) -> Reach;
    fn list<'a>(&'a self, ctx: &'a Context) -> ListFuture<'a>;
    fn read_one<'a>(
        &'a self,
        ctx: &'a Context,
        resource_type: &'a str,
        id: &'a str,
    ) -> ReadFuture<'a>;
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
    fn read_one<'a>(
        &'a self,
        ctx: &'a Context,
        resource_type: &'a str,
        id: &'a str,
    ) -> ReadFuture<'a> {
        Box::pin(AwsLister::read_one(self, ctx, resource_type, id))
    }
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
    /// The observation as one listed item's outcome.
    pub fn outcome(self) -> ItemOutcome {
        match self.observe() {
            Ok(o) => ItemOutcome::Item(Box::new(o)),
            Err(e) => ItemOutcome::Failed(e),
        }
    }

    /// The observation, or why this one item cannot be one (it has no id).
    pub fn observe(self) -> Result<Observation, String> {
        if self.id.is_empty() {
            return Err(format!(
                "a {} in {}/{} has no id in the answer; it is skipped",
                self.resource_type, self.account, self.region
            ));
        }
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
