//! The dashboard: open findings, the newest and the worst, counts by owner and
//! account, sweep health and broken rules.

use super::*;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    l: Layout,
    open: i64,
    new_since: i64,
    newest: Vec<FindingView>,
    top: Vec<FindingView>,
    by_severity: Vec<Kv>,
    by_owner: Vec<Kv>,
    by_account: Vec<Kv>,
    owner_tag: String,
    health: Vec<SweepView>,
    counts_as_of: String,
    /// Rules not judging as they should: shown as a banner, never silent.
    broken_rules: Vec<guardrail_storage::RuleHealthRow>,
}

fn kvs(v: &[guardrail_storage::Count]) -> Vec<Kv> {
    v.iter()
        .map(|c| Kv {
            key: c.key.clone().unwrap_or_else(|| "(none)".into()),
            count: c.count,
        })
        .collect()
}

pub async fn dashboard(State(state): State<AppState>, Extension(auth): Extension<Auth>) -> Page {
    let tag = state.settings.owner_tag.clone();
    let since = Utc::now() - Duration::hours(24);
    let counts = crate::summary::counts(&state).await?;
    let (new_since, top, newest, health, broken_rules) = db(&state, move |s| {
        let base = FindingQuery {
            states: vec![FindingState::Open],
            owner_tag: tag,
            limit: 10,
            ..Default::default()
        };
        let top = s.findings_page(&base)?;
        let newest = s.findings_page(&FindingQuery {
            sort: FindingSort::FirstSeen,
            ..base
        })?;
        Ok((
            s.new_findings_since(since)?,
            top,
            newest,
            s.sweep_health()?,
            s.unhealthy_rules()?,
        ))
    })
    .await?;
    let since_naive = since.naive_utc();
    let c = &counts.counts;
    Ok(render(
        StatusCode::OK,
        &DashboardTemplate {
            l: layout(&auth),
            open: c.open,
            new_since,
            newest: newest
                .rows
                .iter()
                .filter(|(f, _)| f.first_seen_at >= since_naive)
                .map(|(f, i)| finding_view(f, i))
                .collect(),
            top: top.rows.iter().map(|(f, i)| finding_view(f, i)).collect(),
            by_severity: kvs(&c.by_severity),
            by_owner: kvs(&c.by_owner),
            by_account: kvs(&c.by_account),
            owner_tag: state.settings.owner_tag.clone(),
            health: health.iter().map(|h| sweep_view(&h.last)).collect(),
            counts_as_of: counts.as_of.format("%H:%M:%S UTC").to_string(),
            broken_rules,
        },
    ))
}
