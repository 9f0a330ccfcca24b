//! The wildcard matching IAM uses (`*` any run, `?` one character), shared by the
//! policy analyser, audit settings and notification routes.

/// IAM wildcard matching: `*` any run, `?` one character. Case-insensitive when
/// `fold_case` (actions are; resources are not). wildmatch implements exactly these
/// two wildcards and nothing else (no classes, no escapes), as IAM does.
pub fn wildcard_match(pattern: &str, value: &str, fold_case: bool) -> bool {
    if fold_case {
        wildmatch::WildMatch::new_case_insensitive(pattern).matches(value)
    } else {
        wildmatch::WildMatch::new(pattern).matches(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("s3:*", "s3:GetObject", true));
        assert!(wildcard_match("S3:get*", "s3:GetObject", true));
        assert!(!wildcard_match("S3:get*", "s3:GetObject", false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("1111*", "111111111111", false));
        assert!(wildcard_match("iam:?etRole", "iam:GetRole", true));
        assert!(!wildcard_match("iam:?etRole", "iam:etRole", true));
        assert!(
            wildcard_match("arn:aws:s3:::b/[x]", "arn:aws:s3:::b/[x]", false),
            "no classes"
        );
        assert!(!wildcard_match(
            "arn:aws:s3:::b/[x]",
            "arn:aws:s3:::b/x",
            false
        ));
    }
}
