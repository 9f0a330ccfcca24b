//! Getting into AWS: the target (accounts, regions, endpoint), the SDK configuration
//! per account and region (retries, timeouts, assumed roles), and AWS errors as a
//! person reads them.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

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
    /// Attempts per call, standard retry (jittered exponential backoff, capped).
    pub max_attempts: u32,
    /// Calls in flight at once per (account, region, service).
    pub concurrency: usize,
    /// New calls a second per (account, region, service) at most; infinite: no cap
    /// until AWS throttles (the pace then adapts on its own: `pace`).
    pub max_calls_per_second: f64,
    /// Which services' listers run (`iam`, `s3`, `ec2`, `config`); empty = the API
    /// watchers (everything but `config`).
    pub only: Vec<String>,
    /// AWS Config API source: resource types to read, and an optional aggregator.
    pub config_types: Vec<String>,
    pub config_aggregator: Option<String>,
    /// Overall deadline of one API call, retries included.
    pub call_timeout_seconds: u64,
    /// Sweep every active account of the organisation (discovered at each sweep).
    pub organization: Option<Organization>,
}

/// `[aws] organization`: the accounts come from `organizations:ListAccounts` (run
/// with the base credentials, in the management or a delegated administrator
/// account), each entered through the same role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Organization {
    pub role_name: String,
    pub external_id: Option<String>,
    /// Only accounts under one of these OUs (ids, at any depth); empty = all.
    pub include_ous: Vec<String>,
    /// Never accounts under these OUs, or these account ids.
    pub exclude_ous: Vec<String>,
    pub exclude_accounts: Vec<String>,
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
            max_calls_per_second: f64::INFINITY,
            only: Vec::new(),
            config_types: Vec::new(),
            config_aggregator: None,
            call_timeout_seconds: 60,
            organization: None,
        }
    }
}

/// Services a lister can belong to, for `--only`.
pub const SERVICES: &[&str] = &[
    "iam",
    "s3",
    "ec2",
    "sqs",
    "kms",
    "cloudtrail",
    "sns",
    "lambda",
    "secretsmanager",
    "ecr",
    "config",
];

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
        // Standard retry: exponential backoff with full jitter, and the SDK's retry
        // quota (a token bucket that stops retrying while throttling persists and refills
        // on successes). Not adaptive: its client-side rate limiter, shared by every
        // client of a service in the process, dropped to a trickle after a few throttles
        // (a 0.6 s sweep took 38 s at 20% throttled answers; standard: 0.8 s).
        .retry_config(
            RetryConfig::standard()
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
pub(super) fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build()
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
