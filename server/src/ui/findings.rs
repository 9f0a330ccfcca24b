//! The findings list with its filters, one finding with its history and the change
//! that opened it, and the justify / unjustify forms.

use super::*;

/// The filter form's current values, as strings for the inputs.
pub struct Filters {
    pub state: String,
    pub min_score: String,
    pub severity: String,
    pub account: String,
    pub resource_type: String,
    pub rule: String,
    pub owner: String,
    pub q: String,
    pub sort: String,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsTemplate {
    l: Layout,
    f: Filters,
    rows: Vec<FindingView>,
    next: Option<String>,
}

pub async fn findings(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<FindingParams>,
) -> Page {
    let q = p.to_query(&state.settings.owner_tag)?;
    let page = db(&state, move |s| s.findings_page(&q)).await?;
    let next = page.next_cursor.map(|c| {
        let mut n = p.clone();
        n.cursor = Some(c);
        format!(
            "/findings?{}",
            serde_urlencoded::to_string(&n).unwrap_or_default()
        )
    });
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(render(
        StatusCode::OK,
        &FindingsTemplate {
            l: layout(&auth),
            f: Filters {
                state: p.state.clone().unwrap_or_else(|| "open".into()),
                min_score: s(&p.min_score),
                severity: s(&p.severity),
                account: s(&p.account),
                resource_type: s(&p.resource_type),
                rule: s(&p.rule),
                owner: s(&p.owner),
                q: s(&p.q),
                sort: p.sort.clone().unwrap_or_else(|| "score".into()),
            },
            rows: page.rows.iter().map(|(f, i)| finding_view(f, i)).collect(),
            next,
        },
    ))
}

pub struct EventView {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "finding.html")]
struct FindingTemplate {
    l: Layout,
    f: FindingView,
    detail: String,
    remediation: String,
    fingerprint: String,
    rule_score: i64,
    justification: Option<String>,
    opening: Option<String>,
    /// Who made the change that opened it (principal, session, source IP, call).
    changed_by: Option<String>,
    diff: Vec<DiffView>,
    events: Vec<EventView>,
    can_justify: bool,
    can_unjustify: bool,
    /// A justify form that was refused: why, and what was typed (kept, not lost).
    form_error: Option<String>,
    typed_reason: String,
    typed_until: String,
}

pub async fn finding(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
) -> Page {
    finding_page(&state, &auth, id, StatusCode::OK, None).await
}

/// The finding page; `refused` re-shows a justify form that could not be applied,
/// with the reason and what was typed.
async fn finding_page(
    state: &AppState,
    auth: &Auth,
    id: i64,
    status: StatusCode,
    refused: Option<(String, JustifyForm)>,
) -> Page {
    let d = crate::usecase::finding_detail(state, id).await?;
    let f = &d.finding;
    let triager = auth.principal.role >= Role::Triager;
    let justification = f.justification.as_ref().map(|j| {
        format!(
            "{j} — by {}{}",
            f.justified_by.as_deref().unwrap_or("?"),
            f.justified_until
                .map(|u| format!(", until {}", when(&u)))
                .unwrap_or_default()
        )
    });
    let (form_error, typed) = match refused {
        Some((e, form)) => (Some(e), form),
        None => (None, JustifyForm::default()),
    };
    Ok(render(
        status,
        &FindingTemplate {
            l: layout(auth),
            f: finding_view(f, &d.item),
            detail: f.detail.clone(),
            remediation: f.remediation.clone(),
            fingerprint: f.fingerprint.clone(),
            rule_score: f.rule_score,
            justification,
            changed_by: d.changed_by.as_ref().map(|a| {
                let call = a
                    .event_name
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                format!("{}{call}", a.label())
            }),
            opening: d
                .opening
                .as_ref()
                .map(|(from, to, _)| format!("v{from} → v{to}")),
            diff: d
                .opening
                .as_ref()
                .map(|(_, _, e)| diff_views(e))
                .unwrap_or_default(),
            events: d
                .events
                .iter()
                .map(|e| EventView {
                    at: when(&e.at),
                    event: e.event.to_string(),
                    actor: e.actor.clone().unwrap_or_default(),
                    detail: e.detail.clone(),
                })
                .collect(),
            can_justify: triager
                && matches!(f.state, FindingState::Open | FindingState::Suppressed),
            can_unjustify: triager && f.state == FindingState::Justified,
            form_error,
            typed_reason: typed.reason,
            typed_until: typed.until,
        },
    ))
}

#[derive(Deserialize, Default, Clone)]
pub struct JustifyForm {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub until: String,
}

pub async fn justify(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
    Form(form): Form<JustifyForm>,
) -> Page {
    let outcome = match crate::usecase::parse_until(Some(&form.until)) {
        Ok(until) => crate::usecase::do_justify(&state, &auth, id, form.reason.clone(), until)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/findings/{id}")).into_response()),
        // A refusal the person can fix: the page again, with why and what they typed.
        Err(AppError::BadRequest(why)) => {
            finding_page(
                &state,
                &auth,
                id,
                StatusCode::BAD_REQUEST,
                Some((why, form)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn unjustify(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
) -> Page {
    crate::usecase::do_unjustify(&state, &auth, id).await?;
    Ok(Redirect::to(&format!("/findings/{id}")).into_response())
}
