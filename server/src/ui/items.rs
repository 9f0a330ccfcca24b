//! Item search, and one item: its document, revisions, diffs and findings.

use super::*;

pub struct ItemView {
    pub id: i64,
    pub label: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub arn: String,
    pub version: i64,
    pub active: bool,
    pub observed: String,
}

fn item_view(i: &ItemRow) -> ItemView {
    ItemView {
        id: i.id,
        label: i.name.clone().unwrap_or_else(|| i.resource_id.clone()),
        account: i.account.clone(),
        region: i.region.clone(),
        resource_type: i.resource_type.clone(),
        resource_id: i.resource_id.clone(),
        arn: i.arn.clone().unwrap_or_default(),
        version: i.version,
        active: i.active,
        observed: when(&i.observed_at),
    }
}

#[derive(Template)]
#[template(path = "items.html")]
struct ItemsTemplate {
    l: Layout,
    q: String,
    tag: String,
    resource_type: String,
    account: String,
    rows: Vec<ItemView>,
    next: Option<String>,
}

pub async fn items(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<ItemParams>,
) -> Page {
    let q = p.to_query();
    let page = db(&state, move |s| s.items_page(&q)).await?;
    let next = page.next_cursor.map(|c| {
        let mut n = p.clone();
        n.cursor = Some(c);
        format!(
            "/items?{}",
            serde_urlencoded::to_string(&n).unwrap_or_default()
        )
    });
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(render(
        StatusCode::OK,
        &ItemsTemplate {
            l: layout(&auth),
            q: s(&p.q),
            tag: s(&p.tag),
            resource_type: s(&p.resource_type),
            account: s(&p.account),
            rows: page.rows.iter().map(item_view).collect(),
            next,
        },
    ))
}

pub struct RevView {
    pub version: i64,
    pub change: String,
    pub cause: String,
    pub observed: String,
    pub origin: String,
    /// Who made the change, when known.
    pub by: String,
}

pub struct TagView {
    pub key: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemTemplate {
    l: Layout,
    item: ItemView,
    tags: Vec<TagView>,
    revisions: Vec<RevView>,
    older: Option<String>,
    from: i64,
    to: i64,
    diff: Vec<DiffView>,
    diff_error: Option<String>,
    old_doc: String,
    new_doc: String,
    findings: Vec<FindingView>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ItemPageParams {
    pub before: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

pub async fn item(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
    Query(p): Query<ItemPageParams>,
) -> Page {
    let tag = state.settings.owner_tag.clone();
    let (before, from, to) = (p.before, p.from, p.to);
    // One trip to the blocking pool for the whole page.
    let (item, revs, findings, diff) = db(&state, move |s| {
        let item = s
            .item(id)?
            .ok_or_else(|| StorageError::NotFound(format!("no item {id}")))?;
        let revs = s.revisions_page(id, before, 20)?;
        let findings = s.findings_page(&FindingQuery {
            item_id: Some(id),
            owner_tag: tag,
            limit: 100,
            ..Default::default()
        })?;
        // A bad version range is shown on the page, not an error for the whole page.
        let diff = crate::usecase::diff_versions(s, &item, from, to);
        Ok((item, revs, findings, diff))
    })
    .await?;
    let (from, to, diff, diff_error, old_doc, new_doc) = match diff {
        Ok((from, to, old, new, changes)) => (
            from,
            to,
            diff_views(&changes),
            None,
            serde_json::to_string_pretty(&old).unwrap_or_default(),
            serde_json::to_string_pretty(&new).unwrap_or_default(),
        ),
        Err(e) => {
            if let AppError::Internal(m) = &e {
                tracing::error!(error = %m, item = id, "item diff failed");
            }
            (
                p.from.unwrap_or(item.version - 1),
                p.to.unwrap_or(item.version),
                Vec::new(),
                Some(e.message()),
                String::new(),
                String::new(),
            )
        }
    };
    let older = revs
        .last()
        .filter(|r| r.version > 1)
        .map(|r| format!("/items/{id}?before={}", r.version));
    let tags = match item.tags_json() {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| TagView {
                key: k,
                value: v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(render(
        StatusCode::OK,
        &ItemTemplate {
            l: layout(&auth),
            item: item_view(&item),
            tags,
            revisions: revs
                .iter()
                .map(|r| RevView {
                    version: r.version,
                    change: r.change.to_string(),
                    cause: r.cause.clone(),
                    observed: when(&r.observed_at),
                    origin: r.origin.clone(),
                    by: guardrail_storage::actor_of(r.actor.as_deref())
                        .map(|a| a.label())
                        .unwrap_or_default(),
                })
                .collect(),
            older,
            from,
            to,
            diff,
            diff_error,
            old_doc,
            new_doc,
            findings: findings
                .rows
                .iter()
                .map(|(f, i)| finding_view(f, i))
                .collect(),
        },
    ))
}
