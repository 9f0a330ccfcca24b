//! The sweep: every lister across the target's accounts and regions, at most
//! `LISTINGS_IN_FLIGHT` listings at once and each call under its (account, region,
//! service) limit; each listing reported to the collector with its coverage.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use guardrail_model::{Cause, CollectError, Collector, Coverage, Listing, Scope, SourceError};

use crate::{Progress, Watcher};

use super::sdk::{account_config, configured_regions, in_region, sdk_config};
use super::*;

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

type Limiters = Mutex<HashMap<(String, String, &'static str), Arc<lister::CallLimit>>>;

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

    /// The accounts this sweep enters: the organisation's, discovered now, or the
    /// configured ones.
    async fn swept_accounts(&self, base: &SdkConfig) -> Result<Vec<AwsAccount>, String> {
        let Some(org) = &self.target.organization else {
            return Ok(self.accounts());
        };
        let found = super::organization::discover(base, org, &self.target.accounts).await?;
        for why in &found.skipped {
            tracing::info!(%why, "organisation account not swept");
        }
        tracing::info!(
            accounts = found.accounts.len(),
            skipped = found.skipped.len(),
            "organisation accounts discovered"
        );
        Ok(found.accounts)
    }

    /// The accounts a sweep of this target would enter, resolved now (the
    /// organisation's are listed): what a scheduler splits into one job per account.
    pub fn discover_accounts(&self) -> Result<Vec<AwsAccount>, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the AWS runtime: {e}"))?;
        rt.block_on(async {
            let base = self.base_config().await;
            self.swept_accounts(&base).await
        })
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
                .or_insert_with(|| {
                    Arc::new(lister::CallLimit::new(
                        self.target.concurrency,
                        self.target.max_calls_per_second,
                    ))
                })
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
                        limit: limiter(&scope_region, lister.service()),
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
        let base = self.base_config().await;
        let limiters = Limiters::default();
        let mut jobs = Vec::new();
        let accounts = match self.swept_accounts(&base).await {
            Ok(a) => a,
            Err(message) => {
                // No account list, so nothing is vouched for: no deletions anywhere.
                return unvouched(c, "aws:organization".into(), message);
            }
        };
        for account in accounts {
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
                    unvouched(c, origin, message)?;
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
        report_pace(&limiters);
        Ok(())
    }
}

/// Says where AWS throttled this sweep and how far the pace fell, so a slow sweep is
/// explained (a warning when some pace slowed down; a debug line otherwise).
fn report_pace(limiters: &Limiters) {
    let m = limiters.lock().unwrap_or_else(|e| e.into_inner());
    let mut keys: Vec<_> = m.keys().collect();
    keys.sort();
    for key in keys {
        let (account, region, service) = key;
        let r = m[key].report();
        if r.throttles == 0 {
            continue;
        }
        match r.lowest_rate {
            Some(lowest) => tracing::warn!(
                account = %account,
                region = %region,
                service,
                calls = r.calls,
                throttles = r.throttles,
                slowdowns = r.slowdowns,
                lowest_calls_per_second = format!("{lowest:.1}"),
                waited_seconds = format!("{:.1}", r.waited.as_secs_f64()),
                "AWS throttled this sweep's calls, so they were slowed down (raise the service quota, or sweep this account less often, if it persists)"
            ),
            None => tracing::debug!(
                account = %account,
                region = %region,
                service,
                calls = r.calls,
                throttles = r.throttles,
                "AWS throttled a few calls; the retries handled them"
            ),
        }
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
        actor: None,
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

/// Records an error that vouches for nothing (an account not entered, no account
/// list): a listing covering nothing, so nothing anywhere is inferred deleted.
fn unvouched(c: &mut dyn Collector, origin: String, message: String) -> Result<(), CollectError> {
    c.begin_listing(Listing {
        origin: origin.clone(),
        cause: Cause::Sweep,
        observed_at: Utc::now(),
        actor: None,
    })?;
    c.error(SourceError {
        origin,
        item: None,
        scope: None,
        message,
    });
    c.end_listing(Coverage::Nothing)
}

impl Watcher for AwsSweep {
    fn describe(&self) -> String {
        let mut services: Vec<&str> = self.listers.iter().map(|l| l.service()).collect();
        services.dedup();
        format!(
            "AWS APIs ({}; {} account(s); {})",
            services.join(", "),
            // Stable while an organisation's accounts come and go: this names the source.
            if self.target.organization.is_some() {
                "the organisation's".to_owned()
            } else {
                self.accounts().len().to_string()
            },
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

/// Each watched account's SDK configuration for event-driven refreshes: entered once
/// (assumed role, account id checked), reused for every event of that account.
pub struct EventContexts {
    accounts: HashMap<String, SdkConfig>,
    concurrency: usize,
    max_calls_per_second: f64,
}

impl EventContexts {
    /// The ids of the accounts entered (events from any other are ignored).
    pub fn accounts(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.accounts.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A lister context for one account and region, or `None` for an account not
    /// entered.
    pub fn context(&self, account: &str, region: &str) -> Option<Context> {
        let config = self.accounts.get(account)?;
        Some(Context {
            config: in_region(config, region),
            account: account.to_owned(),
            region: region.to_owned(),
            limit: Arc::new(lister::CallLimit::new(
                self.concurrency,
                self.max_calls_per_second,
            )),
            concurrency: self.concurrency,
        })
    }
}

impl AwsSweep {
    /// The SDK configuration of the base credentials, in the home region: the first
    /// configured region, or us-east-1 (where global services answer) when the target
    /// names all regions or none.
    async fn base_config(&self) -> aws_config::SdkConfig {
        let home = configured_regions(&self.target, &[])
            .await
            .into_iter()
            .next()
            .filter(|r| r != "all")
            .unwrap_or_else(|| "us-east-1".into());
        sdk_config(&self.target, &home).await
    }

    /// Enters every account of the target for event-driven refreshes; an account that
    /// cannot be entered is reported (its events will be ignored, loudly).
    pub async fn event_contexts(&self) -> (EventContexts, Vec<String>) {
        let base = self.base_config().await;
        let mut accounts = HashMap::new();
        let mut problems = Vec::new();
        let swept = self.swept_accounts(&base).await.unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        });
        for account in swept {
            match self.prepare(&base, &account).await {
                Ok(p) => {
                    let config = account_config(&base, &account).await;
                    accounts.insert(p.account, config);
                }
                Err(e) => problems.push(e),
            }
        }
        (
            EventContexts {
                accounts,
                concurrency: self.target.concurrency,
                max_calls_per_second: self.target.max_calls_per_second,
            },
            problems,
        )
    }
}
