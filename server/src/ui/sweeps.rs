//! Sweeps with the errors each recorded, and rule errors.

use super::*;

pub struct ErrorView {
    pub source: String,
    pub scope: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "sweeps.html")]
struct SweepsTemplate {
    l: Layout,
    /// (name, what, every, next due) of each scheduled source.
    schedule: Vec<(String, String, String, String)>,
    health: Vec<SweepView>,
    sweeps: Vec<SweepView>,
    errors: Vec<ErrorView>,
    older: Option<String>,
}

pub async fn sweeps(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<PageParams>,
) -> Page {
    let (health, sweeps, errors) = db(&state, move |s| {
        let health = s.sweep_health()?;
        let mut errors = Vec::new();
        for h in health.iter().filter(|h| h.errors > 0) {
            for e in s.sweep_errors_page(h.last.id, None, 20)? {
                errors.push((h.source.clone(), e));
            }
        }
        Ok((health, s.sweeps_page(p.before, 50)?, errors))
    })
    .await?;
    let older = sweeps
        .last()
        .filter(|_| sweeps.len() == 50)
        .map(|s| format!("/sweeps?before={}", s.id));
    Ok(render(
        StatusCode::OK,
        &SweepsTemplate {
            l: layout(&auth),
            schedule: state
                .metrics
                .schedule()
                .into_iter()
                .map(|s| {
                    let next = s.next_due.map_or("not scheduled".into(), |t| {
                        if let Some(worker) = &s.leased_by {
                            format!("running on {worker}")
                        } else if t <= Utc::now() {
                            "now".to_owned()
                        } else {
                            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                        }
                    });
                    (s.name, s.what, format!("{}s", s.interval_seconds), next)
                })
                .collect(),
            health: health.iter().map(|h| sweep_view(&h.last)).collect(),
            sweeps: sweeps.iter().map(sweep_view).collect(),
            errors: errors
                .into_iter()
                .map(|(source, e)| ErrorView {
                    source,
                    scope: [e.account, e.region, e.resource_type]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" / "),
                    message: e.message,
                })
                .collect(),
            older,
        },
    ))
}

pub struct RuleErrorView {
    pub at: String,
    pub rule_id: String,
    pub item_id: Option<i64>,
    pub message: String,
}

#[derive(Template)]
#[template(path = "rule_errors.html")]
struct RuleErrorsTemplate {
    l: Layout,
    rows: Vec<RuleErrorView>,
    older: Option<String>,
}

pub async fn rule_errors(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<PageParams>,
) -> Page {
    let rows = db(&state, move |s| s.rule_errors_page(p.before, 50)).await?;
    let older = rows
        .last()
        .filter(|_| rows.len() == 50)
        .map(|r| format!("/rule-errors?before={}", r.id));
    Ok(render(
        StatusCode::OK,
        &RuleErrorsTemplate {
            l: layout(&auth),
            rows: rows
                .into_iter()
                .map(|r| RuleErrorView {
                    at: when(&r.at),
                    rule_id: r.rule_id,
                    item_id: r.item_id,
                    message: r.message,
                })
                .collect(),
            older,
        },
    ))
}
