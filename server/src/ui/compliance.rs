//! A compliance framework's controls: status, pass/fail counts and failing resources.
//! A control no rule implements reads "not covered", never "pass".

use super::*;
use crate::usecase::{compliance_view, ComplianceParams};

#[derive(Template)]
#[template(path = "compliance.html")]
struct ComplianceTemplate {
    l: Layout,
    view: crate::ComplianceView,
    fail: usize,
    pass: usize,
    not_covered: usize,
    nothing: usize,
    errors: usize,
}

pub async fn compliance(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<ComplianceParams>,
) -> Page {
    let view = compliance_view(&state, p.framework).await?;
    let count = |status: &str| view.controls.iter().filter(|c| c.status == status).count();
    let (fail, pass, not_covered, nothing, errors) = (
        count("fail"),
        count("pass"),
        count("not covered"),
        count("nothing to judge"),
        count("rule errors"),
    );
    Ok(render(
        StatusCode::OK,
        &ComplianceTemplate {
            l: layout(&auth),
            view,
            fail,
            pass,
            not_covered,
            nothing,
            errors,
        },
    ))
}
