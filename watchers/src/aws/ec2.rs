//! What every EC2 lister shares: one paginated Describe call per region, each element
//! one item in AWS Config's shape, named by its `Name` tag, with an ARN built from
//! the region, account and id. A type is an [`Ec2Type`]: the call, the id, the
//! configuration; [`Ec2`] makes it an [`AwsLister`].
//!
//! An element the answer gives without an id is a problem of that one element (the
//! type stays incomplete in that region, so nothing of it is deleted there), never a
//! failure of the whole region's listing.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Tag;
use serde_json::Value;

use super::{tag_pairs, AwsLister, Context, ItemDoc, Listed, Problem, Reach, ReadOne};

/// One EC2 resource type.
#[allow(async_fn_in_trait)]
pub trait Ec2Type {
    /// One element of the Describe answer (a `Vpc`, a `SecurityGroup`...).
    type Element;
    const RESOURCE_TYPE: &'static str;
    /// The Describe operation, as IAM names it (`ec2:DescribeVpcs`).
    const OPERATION: &'static str;
    /// The resource part of the ARN before the id (`vpc` in `...:vpc/vpc-1`).
    const ARN_KIND: &'static str;

    /// Every element in the context's region, through [`super::all_pages`].
    async fn describe(
        client: &aws_sdk_ec2::Client,
        ctx: &Context,
    ) -> Result<Vec<Self::Element>, String>;
    fn id(e: &Self::Element) -> Option<&str>;
    fn tags(e: &Self::Element) -> &[Tag];
    /// AWS Config's `configuration` for the element; `tags` is its `[{key, value}]`.
    fn configuration(e: &Self::Element, id: &str, tags: Value) -> Value;

    /// Whether the element is a live resource (a terminated instance is not).
    fn exists(_e: &Self::Element) -> bool {
        true
    }
    /// The item's name; by default its `Name` tag.
    fn name(_e: &Self::Element, tags: &BTreeMap<String, String>) -> Option<String> {
        tags.get("Name").cloned()
    }
    fn arn(_e: &Self::Element, ctx: &Context, id: &str) -> String {
        format!(
            "arn:aws:ec2:{}:{}:{}/{id}",
            ctx.region,
            ctx.account,
            Self::ARN_KIND
        )
    }
    fn relationships(_e: &Self::Element) -> Vec<Value> {
        Vec::new()
    }
    /// The one element with this id (`Ok(None)`: AWS says it does not exist), for an
    /// event-driven refresh; `None` when the type is not read singly.
    async fn describe_one(
        _client: &aws_sdk_ec2::Client,
        _ctx: &Context,
        _id: &str,
    ) -> Option<Result<Option<Self::Element>, String>> {
        None
    }
}

/// The [`AwsLister`] of an [`Ec2Type`].
pub struct Ec2<T>(pub T);

/// EC2 tags in AWS Config's `[{key, value}]` form, and as a map.
fn ec2_tags(list: &[Tag]) -> (Value, BTreeMap<String, String>) {
    tag_pairs(list.iter().map(|t| (t.key(), t.value())))
}

impl<T: Ec2Type> AwsLister for Ec2<T> {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![T::RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_ec2, ctx);
        let elements = T::describe(&client, ctx).await?;
        Ok(items_of::<T>(ctx, &elements))
    }

    async fn read_one(&self, ctx: &Context, _resource_type: &str, id: &str) -> Option<ReadOne> {
        let client = super::lister::client!(aws_sdk_ec2, ctx);
        Some(match T::describe_one(&client, ctx, id).await? {
            Err(e) => Err(e),
            Ok(None) => Ok(None),
            Ok(Some(e)) if !T::exists(&e) => Ok(None),
            Ok(Some(e)) => {
                let mut listed = items_of::<T>(ctx, std::slice::from_ref(&e));
                match (listed.items.pop(), listed.problems.pop()) {
                    (Some(o), _) => Ok(Some(o)),
                    (None, Some(p)) => Err(p.message),
                    (None, None) => Ok(None),
                }
            }
        })
    }
}

/// The items of one answer, and a problem for each element that cannot be one.
fn items_of<T: Ec2Type>(ctx: &Context, elements: &[T::Element]) -> Listed {
    let mut listed = Listed::default();
    for e in elements.iter().filter(|e| T::exists(e)) {
        let problem = |item: Option<&str>, message: String| Problem {
            resource_type: T::RESOURCE_TYPE.into(),
            region: Some(ctx.region.clone()),
            item: item.map(str::to_owned),
            message,
        };
        let Some(id) = T::id(e).filter(|id| !id.is_empty()) else {
            listed.problems.push(problem(
                None,
                format!(
                    "{} in {} answered with an element without an id; it is skipped, and no {} in this region is deleted this sweep",
                    T::OPERATION,
                    ctx.region,
                    T::RESOURCE_TYPE
                ),
            ));
            continue;
        };
        let (tag_list, tags) = ec2_tags(T::tags(e));
        let name = T::name(e, &tags);
        let doc = ItemDoc {
            resource_type: T::RESOURCE_TYPE,
            account: &ctx.account,
            region: &ctx.region,
            id,
            name: name.as_deref(),
            arn: T::arn(e, ctx, id),
            configuration: T::configuration(e, id, tag_list),
            supplementary: serde_json::json!({}),
            relationships: T::relationships(e),
            tags,
        };
        match doc.observe() {
            Ok(o) => listed.items.push(o),
            Err(message) => listed.problems.push(problem(Some(id), message)),
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A type whose answer is given, not fetched.
    struct Fake;
    struct Element {
        id: Option<&'static str>,
        tags: Vec<Tag>,
    }

    impl Ec2Type for Fake {
        type Element = Element;
        const RESOURCE_TYPE: &'static str = "AWS::EC2::VPC";
        const OPERATION: &'static str = "ec2:DescribeVpcs";
        const ARN_KIND: &'static str = "vpc";
        async fn describe(
            _client: &aws_sdk_ec2::Client,
            _ctx: &Context,
        ) -> Result<Vec<Element>, String> {
            Ok(Vec::new())
        }
        fn id(e: &Element) -> Option<&str> {
            e.id
        }
        fn tags(e: &Element) -> &[Tag] {
            &e.tags
        }
        fn configuration(_e: &Element, id: &str, tags: Value) -> Value {
            serde_json::json!({"vpcId": id, "tags": tags})
        }
    }

    #[test]
    fn an_element_without_an_id_is_a_problem_of_that_element_only() {
        let ctx = Context::for_tests("111111111111", "eu-west-1");
        let named = Tag::builder().key("Name").value("main").build();
        let answer = vec![
            Element {
                id: Some("vpc-1"),
                tags: vec![named],
            },
            Element {
                id: None,
                tags: Vec::new(),
            },
            Element {
                id: Some(""),
                tags: Vec::new(),
            },
            Element {
                id: Some("vpc-2"),
                tags: Vec::new(),
            },
        ];
        let listed = items_of::<Fake>(&ctx, &answer);
        let ids: Vec<&str> = listed
            .items
            .iter()
            .map(|o| o.key.resource_id.as_str())
            .collect();
        assert_eq!(ids, ["vpc-1", "vpc-2"]);
        assert_eq!(listed.items[0].name.as_deref(), Some("main"));
        assert_eq!(
            listed.items[0].arn.as_deref(),
            Some("arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-1")
        );
        assert_eq!(listed.problems.len(), 2);
        let p = &listed.problems[0];
        assert_eq!(
            (p.resource_type.as_str(), p.region.as_deref()),
            ("AWS::EC2::VPC", Some("eu-west-1"))
        );
        assert!(p.message.contains("ec2:DescribeVpcs"), "{}", p.message);
    }
}
