//! Privilege escalation paths, as data: `auditors/privilege_escalation.json` lists
//! each known path (the actions it needs, the resources each must reach, a one-line
//! explanation and a public reference), and [`escalation_paths`] says which of them a
//! policy grants and through which statements. Adding a path is one entry; the tests
//! below check every entry both ways (granted on every resource: found; one action
//! missing, or the actions limited to one named resource: not found).
//!
//! Resources are ARN templates with `{account}`: a step is granted when the policy
//! allows its action on every template, so a grant limited to one role (PassRole on
//! `role/app`) is not "any role", while `role/*` or `*` is.

use std::sync::OnceLock;

use serde::Deserialize;

use super::policy::Policy;

const CATALOGUE: &str = include_str!("../../privilege_escalation.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub action: String,
    /// ARN templates (`{account}` is the policy owner's account); all must be reached.
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPath {
    pub id: String,
    pub score: i64,
    pub steps: Vec<Step>,
    /// What the holder can do, completing "the holder …".
    pub explanation: String,
    pub reference: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    paths: Vec<EscalationPath>,
}

/// The catalogue compiled into the binary, or why it cannot be read (a packaging
/// error, surfaced as a rule error rather than as "no paths").
pub fn catalogue() -> Result<&'static [EscalationPath], String> {
    static PARSED: OnceLock<Result<Vec<EscalationPath>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            serde_json::from_str::<Catalogue>(CATALOGUE)
                .map(|c| c.paths)
                .map_err(|e| format!("privilege_escalation.json is malformed: {e}"))
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// One path a policy grants.
#[derive(Debug, Clone)]
pub struct Grant {
    pub path: &'static EscalationPath,
    /// The Allow statements (indexes) that grant its steps.
    pub statements: Vec<usize>,
}

/// Every catalogued path `policy` grants to an identity of `account`.
pub fn escalation_paths(policy: &Policy, account: &str) -> Result<Vec<Grant>, String> {
    let mut out = Vec::new();
    for path in catalogue()? {
        let mut statements = Vec::new();
        // A step whose action no Allow names fails without building its resources
        // (most policies grant none of a path's first action).
        let granted = path.steps.iter().all(|step| {
            policy.may_allow_action(&step.action)
                && step.resources.iter().all(|template| {
                    let resource = template.replace("{account}", account);
                    let by = policy.granting_statements(&step.action, &resource);
                    statements.extend(by.iter().copied());
                    !by.is_empty()
                })
        });
        if granted {
            statements.sort_unstable();
            statements.dedup();
            out.push(Grant { path, statements });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCOUNT: &str = "111111111111";

    fn grants(doc: serde_json::Value) -> Vec<&'static str> {
        let policy = Policy::parse(&doc).unwrap();
        escalation_paths(&policy, ACCOUNT)
            .unwrap()
            .iter()
            .map(|g| g.path.id.as_str())
            .collect()
    }

    fn allow(actions: &[&str], resource: &str) -> serde_json::Value {
        json!({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})
    }

    #[test]
    fn the_catalogue_reads_and_every_entry_is_complete() {
        let paths = catalogue().unwrap();
        assert!(paths.len() >= 30, "{}", paths.len());
        let mut ids: Vec<&str> = paths.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "ids are unique");
        for p in paths {
            assert!(!p.steps.is_empty(), "{}", p.id);
            assert!(p.reference.starts_with("https://"), "{}", p.id);
            assert!((1..=10).contains(&p.score), "{}", p.id);
            for s in &p.steps {
                assert!(
                    s.action.contains(':') && !s.action.contains('*'),
                    "{}",
                    p.id
                );
                assert!(!s.resources.is_empty(), "{}", p.id);
            }
        }
    }

    #[test]
    fn every_path_is_found_when_granted_and_only_then() {
        for p in catalogue().unwrap() {
            let actions: Vec<&str> = p.steps.iter().map(|s| s.action.as_str()).collect();
            assert!(
                grants(allow(&actions, "*")).contains(&p.id.as_str()),
                "{} not found when all its actions are allowed on *",
                p.id
            );
            // The actions on one named resource that no template is: not "any".
            let one = format!("arn:aws:iam::{ACCOUNT}:role/app");
            assert!(
                !grants(allow(&actions, &one)).contains(&p.id.as_str()),
                "{} found on a single unrelated resource",
                p.id
            );
            if actions.len() > 1 {
                for missing in 0..actions.len() {
                    let mut fewer = actions.clone();
                    fewer.remove(missing);
                    assert!(
                        !grants(allow(&fewer, "*")).contains(&p.id.as_str()),
                        "{} found without {}",
                        p.id,
                        actions[missing]
                    );
                }
            }
        }
    }

    #[test]
    fn lambda_paths_match_function_arns_as_aws_writes_them() {
        // arn:aws:lambda:region:account:function:name (a colon before the name).
        let all_functions = "arn:aws:lambda:*:111111111111:function:*";
        assert!(grants(allow(&["lambda:UpdateFunctionCode"], all_functions))
            .contains(&"lambda-update-function-code"));
        let any_role = json!({"Statement": [
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::111111111111:role/*"},
            {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": all_functions}
        ]});
        assert!(grants(any_role).contains(&"passrole-lambda-invoke"));
        // One named function is not "any function".
        let one = "arn:aws:lambda:us-east-1:111111111111:function:billing";
        assert!(!grants(allow(&["lambda:UpdateFunctionCode"], one))
            .contains(&"lambda-update-function-code"));
    }

    #[test]
    fn passrole_scoped_to_one_role_is_not_any_role() {
        let scoped = json!({"Statement": [
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::111111111111:role/lambda-app",
             "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
            {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}
        ]});
        assert!(!grants(scoped).contains(&"passrole-lambda-invoke"));
        let any_role = json!({"Statement": [
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::111111111111:role/*"},
            {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}
        ]});
        let policy = Policy::parse(&any_role).unwrap();
        let found = escalation_paths(&policy, ACCOUNT).unwrap();
        let lambda = found
            .iter()
            .find(|g| g.path.id == "passrole-lambda-invoke")
            .expect("passrole-lambda-invoke");
        assert_eq!(lambda.statements, vec![0, 1], "both statements grant it");
    }

    #[test]
    fn wildcards_and_case_reach_the_actions_and_a_deny_removes_them() {
        assert!(grants(allow(&["IAM:createaccesskey"], "*")).contains(&"iam-create-access-key"));
        assert!(grants(allow(&["iam:Put*Policy"], "*")).contains(&"iam-put-role-policy"));
        assert!(grants(allow(&["iam:**"], "*")).contains(&"iam-attach-user-policy"));
        // Access keys for itself only (the documented self-service pattern).
        let own = allow(
            &["iam:CreateAccessKey"],
            "arn:aws:iam::111111111111:user/${aws:username}",
        );
        assert!(!grants(own).contains(&"iam-create-access-key"));
        let denied = json!({"Statement": [
            {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["iam:Create*", "iam:Attach*", "iam:Put*", "iam:Update*", "iam:AddUserToGroup", "iam:SetDefaultPolicyVersion", "iam:PassRole"], "Resource": "*"}
        ]});
        assert_eq!(grants(denied), Vec::<&str>::new());
        // A NotResource of everything grants nothing.
        let nothing =
            json!({"Statement": {"Effect": "Allow", "Action": "iam:*", "NotResource": "*"}});
        assert_eq!(grants(nothing), Vec::<&str>::new());
    }
}
