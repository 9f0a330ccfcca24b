//! The wildcard matching IAM uses (`*` any run, `?` one character), shared by the
//! policy analyser, audit settings and notification routes.

/// IAM wildcard matching: `*` any run, `?` one character. Case-insensitive when
/// `fold_case` (actions are; resources are not).
pub fn wildcard_match(pattern: &str, value: &str, fold_case: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if fold_case {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    let (mut pi, mut vi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
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
    }
}
