//! The account-wide S3 Block Public Access settings (one item per account).

use std::collections::BTreeMap;

use aws_sdk_s3control::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3control::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3control::error::{BoxError, ProvideErrorMetadata};
use serde_json::json;

use super::{describe, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct AccountPublicAccessBlock;

/// S3 Control puts the account id in front of the host (`111111111111.s3-control…`),
/// also in front of an overridden endpoint. Emulators and loopback endpoints have no
/// such names (and resolving one would leave the machine), so with an endpoint
/// override the request goes to the endpoint's own host, as S3 goes path-style.
#[derive(Debug)]
struct EndpointHostAsGiven {
    authority: String,
}

impl Intercept for EndpointHostAsGiven {
    fn name(&self) -> &'static str {
        "EndpointHostAsGiven"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = context.request().uri().to_owned();
        if let Some(fixed) = without_host_prefix(&uri, &self.authority) {
            context.request_mut().set_uri(fixed)?;
        }
        Ok(())
    }
}

/// `scheme://<prefix>.<authority>/path` → `scheme://<authority>/path`.
fn without_host_prefix(uri: &str, authority: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let prefix = host.strip_suffix(authority)?.strip_suffix('.')?;
    (!prefix.is_empty()).then(|| format!("{scheme}://{authority}{path}"))
}

/// An S3 Control client that keeps an overridden endpoint's host.
pub fn control_client(
    config: &aws_config::SdkConfig,
    observer: Option<super::pace::Observer>,
) -> aws_sdk_s3control::Client {
    let mut b = aws_sdk_s3control::config::Builder::from(config);
    if let Some(o) = observer {
        b = b.interceptor(o);
    }
    if let Some(url) = config.endpoint_url() {
        let authority = url
            .split_once("://")
            .map_or(url, |(_, r)| r)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        b = b.interceptor(EndpointHostAsGiven { authority });
    }
    aws_sdk_s3control::Client::from_conf(b.build())
}

impl AwsLister for AccountPublicAccessBlock {
    fn service(&self) -> &'static str {
        "s3"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::S3::AccountPublicAccessBlock".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Global
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = control_client(&ctx.config, Some(ctx.observer()));
        let out = {
            let _p = ctx.permit().await;
            client
                .get_public_access_block()
                .account_id(&ctx.account)
                .send()
                .await
        };
        let settings = match out {
            Ok(o) => o.public_access_block_configuration().map(|p| {
                json!({
                    "blockPublicAcls": p.block_public_acls().unwrap_or(false),
                    "ignorePublicAcls": p.ignore_public_acls().unwrap_or(false),
                    "blockPublicPolicy": p.block_public_policy().unwrap_or(false),
                    "restrictPublicBuckets": p.restrict_public_buckets().unwrap_or(false),
                })
            }),
            // Never configured: every setting off, which is worth recording (and auditing).
            Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => None,
            Err(e) => {
                return Err(format!(
                    "s3:GetAccountPublicAccessBlock failed: {}",
                    describe(&e)
                ))
            }
        };
        let configuration = settings.unwrap_or_else(|| {
            json!({"blockPublicAcls": false, "ignorePublicAcls": false,
                   "blockPublicPolicy": false, "restrictPublicBuckets": false})
        });
        let item = ItemDoc {
            resource_type: "AWS::S3::AccountPublicAccessBlock",
            account: &ctx.account,
            region: "global",
            id: &ctx.account,
            name: Some(&ctx.account),
            arn: format!("arn:aws:s3::{}:account", ctx.account),
            configuration,
            supplementary: json!({}),
            relationships: Vec::new(),
            tags: BTreeMap::new(),
        }
        .observe()?;
        Ok(Listed {
            items: vec![item],
            problems: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::without_host_prefix;

    #[test]
    fn account_prefix_is_removed_from_the_overridden_host_only() {
        assert_eq!(
            without_host_prefix(
                "http://111111111111.127.0.0.1:5000/v20180820/configuration/publicAccessBlock",
                "127.0.0.1:5000"
            )
            .as_deref(),
            Some("http://127.0.0.1:5000/v20180820/configuration/publicAccessBlock")
        );
        assert_eq!(
            without_host_prefix("http://127.0.0.1:5000/v20180820/x", "127.0.0.1:5000"),
            None
        );
        assert_eq!(
            without_host_prefix("https://1.s3-control.amazonaws.com/x", "127.0.0.1:5000"),
            None
        );
    }
}
