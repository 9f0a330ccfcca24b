//! Lambda functions of one region with their resource policy, in AWS Config's item
//! shape: `configuration` is the function's configuration in camelCase
//! (`functionName`, `functionArn`, `runtime`, `role`, `vpcConfig`, `kmsKeyArn`, ...),
//! `supplementaryConfiguration.Policy` the resource policy of `$LATEST` (the statement
//! a function URL with AuthType NONE adds is among it); the id is the function name,
//! as AWS Config records it.
//!
//! Environment variables are left out: their values are often secrets, and a history
//! store keeps every value forever.
//!
//! Calls: `lambda:ListFunctions` (paged), then per function `lambda:GetPolicy` (a
//! function without a policy answers ResourceNotFoundException: no policy) and
//! `lambda:ListTags`. A function deleted in between is gone; any other failure is a
//! problem of that function only.

use std::collections::HashMap;

use aws_sdk_lambda::types::FunctionConfiguration;
use serde_json::{json, Value};

use super::{
    all_pages, detail, detail_or_absent, each_element, relationship, AwsLister, Context, ItemDoc,
    ItemOutcome, Listed, Reach,
};

pub struct Functions;

const RESOURCE_TYPE: &str = "AWS::Lambda::Function";
const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

fn configuration(f: &FunctionConfiguration, name: &str) -> Value {
    json!({
        "functionName": name, "functionArn": f.function_arn(),
        "runtime": f.runtime().map(|x| x.as_str()), "role": f.role(), "handler": f.handler(),
        "codeSize": f.code_size(), "codeSha256": f.code_sha256(),
        "description": f.description(), "timeout": f.timeout(), "memorySize": f.memory_size(),
        "version": f.version(),
        "vpcConfig": f.vpc_config().map(|v| json!({
            "subnetIds": v.subnet_ids(), "securityGroupIds": v.security_group_ids(),
        })),
        "tracingConfig": f.tracing_config().map(|t| json!({"mode": t.mode().map(|m| m.as_str())})),
        "kmsKeyArn": f.kms_key_arn(),
        "packageType": f.package_type().map(|x| x.as_str()),
        "architectures": f.architectures().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "layers": f.layers().iter().map(|l| l.arn()).collect::<Vec<_>>(),
        "deadLetterConfig": f.dead_letter_config().map(|d| json!({"targetArn": d.target_arn()})),
    })
}

async fn function(
    client: &aws_sdk_lambda::Client,
    ctx: &Context,
    f: &FunctionConfiguration,
    name: &str,
) -> ItemOutcome {
    let policy = match detail_or_absent(
        ctx,
        "lambda:GetPolicy",
        &[],
        NOT_FOUND,
        client.get_policy().function_name(name).send(),
    )
    .await
    {
        Ok(p) => p.and_then(|p| p.policy().map(str::to_owned)),
        Err(o) => return o,
    };
    let arn = f.function_arn().map(str::to_owned).unwrap_or_else(|| {
        format!("arn:aws:lambda:{}:{}:function:{name}", ctx.region, ctx.account)
    });
    let tags = match detail(
        ctx,
        "lambda:ListTags",
        NOT_FOUND,
        client.list_tags().resource(&arn).send(),
    )
    .await
    {
        Ok(t) => t
            .tags()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        Err(o) => return o,
    };
    let mut supplementary = json!({});
    if let Some(p) = policy {
        supplementary["Policy"] = Value::String(p);
    }
    let relationships = f
        .role()
        .and_then(|r| relationship("AWS::IAM::Role", r.rsplit('/').next(), "Is associated with Role"))
        .into_iter()
        .collect();
    ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id: name,
        name: Some(name),
        arn,
        configuration: configuration(f, name),
        supplementary,
        relationships,
        tags,
    }
    .outcome()
}

impl AwsLister for Functions {
    fn service(&self) -> &'static str {
        "lambda"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_lambda, ctx);
        let pages = client.list_functions().max_items(50).into_paginator().send();
        let by_name: HashMap<String, FunctionConfiguration> =
            all_pages(ctx, "lambda:ListFunctions", pages)
                .await?
                .into_iter()
                .flat_map(|p| p.functions.unwrap_or_default())
                .filter_map(|f| Some((f.function_name()?.to_owned(), f)))
                .collect();
        let client = &client;
        Ok(each_element(ctx, RESOURCE_TYPE, &by_name, |name, f| function(client, ctx, f, name)).await)
    }
}
