//! Watchers that read the AWS APIs directly (read-only: List/Get/Describe only).
//!
//! Each resource type is one [`AwsLister`] in its own file: it lists one scope
//! (account, region, type) completely or fails. [`AwsSweep`] runs the listers of every
//! account and region concurrently, bounded per (account, region, service), and reports
//! each listing with its coverage, so a failed call keeps the last revisions instead of
//! deleting anything. Items have the same shape as AWS Config's, so one rule serves both
//! sources.
//!
//! `sdk` sets up the SDK per account and region, `lister` is the seam every resource
//! type implements, `ec2` the skeleton the EC2 types share, and `sweep` runs them.

mod accounts;
pub mod actors;
mod ec2;
pub mod events;
mod lister;
mod organization;
mod pace;
mod s3_deliveries;
mod sdk;
mod sweep;

pub use accounts::{check_accounts, AccessCheck, AccountAccess};
pub use ec2::{Ec2, Ec2Type};
pub use lister::{
    all_pages, detail, detail_or_absent, each_element, each_item, relationship, tag_pairs, time,
    AwsLister, AwsListerDyn, Context, ItemDoc, ItemOutcome, Listed, Problem, Reach, ReadOne,
};
pub use s3_deliveries::S3Deliveries;
pub use sdk::{
    account_config, configured_regions, describe, sdk_config, AwsAccount, AwsTarget, Organization,
    SERVICES,
};
pub use sweep::{AwsSweep, EventContexts};

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

/// The resource types the AWS API listers read, with their service (the AWS Config
/// API source reads whatever types it is configured with, and is not among them).
pub fn native_types() -> Vec<(&'static str, String)> {
    all_listers(&AwsTarget::default())
        .iter()
        .filter(|l| l.service() != "config")
        .flat_map(|l| {
            let service = l.service();
            l.resource_types().into_iter().map(move |t| (service, t))
        })
        .collect()
}

listers! { target =>
    iam::Iam = Iam,
    iam_account::Account = Account,
    s3_bucket::Buckets = Buckets,
    s3_account_public_access_block::AccountPublicAccessBlock = AccountPublicAccessBlock,
    ec2_security_group::SecurityGroups = Ec2(SecurityGroups),
    ec2_instance::Instances = Ec2(Instances),
    ec2_vpc::Vpcs = Ec2(Vpcs),
    ec2_subnet::Subnets = Ec2(Subnets),
    ec2_network_acl::NetworkAcls = Ec2(NetworkAcls),
    ec2_route_table::RouteTables = Ec2(RouteTables),
    ec2_internet_gateway::InternetGateways = Ec2(InternetGateways),
    ec2_volume::Volumes = Ec2(Volumes),
    ec2_snapshot::Snapshots = Snapshots,
    ec2_image::Images = Images,
    sqs_queue::Queues = Queues,
    kms_key::Keys = Keys,
    cloudtrail_trail::Trails = Trails,
    sns_topic::Topics = Topics,
    lambda_function::Functions = Functions,
    secretsmanager_secret::Secrets = Secrets,
    ecr_repository::Repositories = Repositories,
    config_api::ConfigRecorded = ConfigRecorded::new(
        target.config_types.clone(),
        target.config_aggregator.clone(),
    ),
}
