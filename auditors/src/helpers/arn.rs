//! ARN parsing: `arn:partition:service:region:account:resource`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

pub fn parse(text: &str) -> Option<Arn> {
    let mut parts = text.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let partition = parts.next()?.to_owned();
    let service = parts.next()?.to_owned();
    let region = parts.next()?.to_owned();
    let account = parts.next()?.to_owned();
    let resource = parts.next()?.to_owned();
    if partition.is_empty() || service.is_empty() {
        return None;
    }
    Some(Arn {
        partition,
        service,
        region,
        account,
        resource,
    })
}

/// The account a principal string names: a 12-digit id, or the account field of an
/// ARN. `None` for `*`, service names, and unique ids (AIDA…, AROA…) that AWS leaves
/// behind when a principal is deleted.
pub fn principal_account(principal: &str) -> Option<String> {
    let p = principal.trim();
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return Some(p.to_owned());
    }
    let arn = parse(p)?;
    (arn.account.len() == 12 && arn.account.bytes().all(|b| b.is_ascii_digit()))
        .then_some(arn.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arns_with_colons_in_the_resource() {
        let a = parse("arn:aws:iam::123456789012:role/path/name").unwrap();
        assert_eq!(
            (a.service.as_str(), a.account.as_str(), a.resource.as_str()),
            ("iam", "123456789012", "role/path/name")
        );
        let a = parse("arn:aws:logs:us-east-1:123456789012:log-group:/aws/x:*").unwrap();
        assert_eq!(a.resource, "log-group:/aws/x:*");
        let a = parse("arn:aws:s3:::bucket/key").unwrap();
        assert_eq!((a.region.as_str(), a.account.as_str()), ("", ""));
        assert!(parse("not-an-arn").is_none());
        assert!(parse("arn:aws").is_none());
    }

    #[test]
    fn principal_accounts() {
        assert_eq!(
            principal_account("123456789012").as_deref(),
            Some("123456789012")
        );
        assert_eq!(
            principal_account("arn:aws:iam::999999999999:root").as_deref(),
            Some("999999999999")
        );
        assert_eq!(
            principal_account("arn:aws:sts::111111111111:assumed-role/r/s").as_deref(),
            Some("111111111111")
        );
        assert_eq!(principal_account("*"), None);
        assert_eq!(principal_account("AROAEXAMPLEID"), None);
        assert_eq!(principal_account("ec2.amazonaws.com"), None);
        assert_eq!(principal_account("arn:aws:iam::*:root"), None);
    }
}
