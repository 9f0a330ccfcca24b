//! AWS Config delivery files read from the S3 bucket AWS delivers them to: one more
//! [`DeliveryStore`], so snapshots and history replay exactly as from a directory.

use std::io::{Cursor, Read};

use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};

use super::s3_bucket::s3_conf;
use super::{describe, sdk_config, AwsTarget};
use crate::config_deliveries::{
    decompressing, parse_delivery_name, DeliveryKind, DeliveryObject, DeliveryStore,
};

/// `s3://bucket/prefix` deliveries. The store is synchronous (the file source streams
/// with blocking readers), so it owns a small runtime for its calls.
pub struct S3Deliveries {
    bucket: String,
    prefix: String,
    client: Client,
    rt: tokio::runtime::Runtime,
}

/// Splits `s3://bucket/prefix` into its parts.
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url} is not an s3:// URL; write s3://bucket/prefix"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url} names no bucket; write s3://bucket/prefix"));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

impl S3Deliveries {
    pub fn new(url: &str, target: &AwsTarget) -> Result<S3Deliveries, String> {
        let (bucket, prefix) = parse_s3_url(url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the S3 client runtime: {e}"))?;
        let region = target
            .regions
            .first()
            .cloned()
            .unwrap_or_else(|| "us-east-1".into());
        let config = rt.block_on(sdk_config(target, &region));
        let client = Client::from_conf(s3_conf(&config, None));
        Ok(S3Deliveries {
            bucket,
            prefix,
            client,
            rt,
        })
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl DeliveryStore for S3Deliveries {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn list(&self) -> Result<Vec<DeliveryObject>, String> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        self.rt.block_on(async {
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    format!(
                        "cannot list {}: s3:ListObjectsV2 failed: {}; check the bucket name and s3:ListBucket permission",
                        self.describe(),
                        describe(&e)
                    )
                })?;
                for o in page.contents() {
                    let Some(key) = o.key() else { continue };
                    let file = key.rsplit('/').next().unwrap_or(key);
                    let modified = o
                        .last_modified()
                        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), 0));
                    let (kind, account, region, time) = match parse_delivery_name(file) {
                        Some(n) => (n.kind, n.account, n.region, n.time.or(modified)),
                        // Saved notifications and hand-made files, as in a directory.
                        None if file.ends_with(".json") || file.ends_with(".json.gz") => {
                            (DeliveryKind::Notification, None, None, modified)
                        }
                        None => continue,
                    };
                    out.push(DeliveryObject {
                        location: self.url(key),
                        kind,
                        account,
                        region,
                        time,
                    });
                }
            }
            Ok::<(), String>(())
        })?;
        Ok(out)
    }

    fn open(&self, object: &DeliveryObject) -> std::io::Result<Box<dyn Read + Send>> {
        let key = object
            .location
            .strip_prefix(&format!("s3://{}/", self.bucket))
            .unwrap_or(&object.location)
            .to_owned();
        let bytes = self.rt.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| {
                    std::io::Error::other(format!("s3:GetObject failed: {}", describe(&e)))
                })?;
            out.body
                .collect()
                .await
                .map(|b| b.into_bytes())
                .map_err(|e| std::io::Error::other(format!("reading the object failed: {e}")))
        })?;
        decompressing(Box::new(Cursor::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://logs/org/AWSLogs").unwrap(),
            ("logs".into(), "org/AWSLogs".into())
        );
        assert_eq!(
            parse_s3_url("s3://logs").unwrap(),
            ("logs".into(), "".into())
        );
        assert!(parse_s3_url("logs/x")
            .unwrap_err()
            .contains("s3://bucket/prefix"));
        assert!(parse_s3_url("s3:///x").is_err());
    }
}
