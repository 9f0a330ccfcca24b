//! Table definitions shared by both backends: every column uses a type both
//! SQLite and PostgreSQL map the same way (JSON is canonical text: byte-identical on both backends, so hashes and diffs agree).

diesel::table! {
    sweeps (id) {
        id -> BigInt,
        source -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        status -> Text,
        items_seen -> BigInt,
        created -> BigInt,
        modified -> BigInt,
        deleted -> BigInt,
        unchanged -> BigInt,
        ephemeral_updates -> BigInt,
        stale -> BigInt,
        errors -> BigInt,
        owner -> Text,
        heartbeat_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    items (id) {
        id -> BigInt,
        account -> Text,
        region -> Text,
        resource_type -> Text,
        resource_id -> Text,
        arn -> Nullable<Text>,
        name -> Nullable<Text>,
        tags -> Text,
        active -> Bool,
        version -> BigInt,
        config_hash -> Text,
        observed_at -> Timestamp,
        ephemeral -> Text,
        ephemeral_hash -> Text,
        first_seen_at -> Timestamp,
        audited_version -> Nullable<BigInt>,
        audited_rules -> Nullable<Text>,
        audited_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    revisions (id) {
        id -> BigInt,
        item_id -> BigInt,
        version -> BigInt,
        change -> Text,
        cause -> Text,
        hash -> Text,
        document -> Text,
        ephemeral -> Text,
        observed_at -> Timestamp,
        recorded_at -> Timestamp,
        sweep_id -> Nullable<BigInt>,
        origin -> Text,
        actor -> Nullable<Text>,
        actor_arn -> Nullable<Text>,
        actor_lookups -> Integer,
    }
}

diesel::table! {
    sweep_errors (id) {
        id -> BigInt,
        sweep_id -> BigInt,
        account -> Nullable<Text>,
        region -> Nullable<Text>,
        resource_type -> Nullable<Text>,
        origin -> Text,
        item -> Nullable<Text>,
        message -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(revisions -> items (item_id));
diesel::joinable!(sweep_errors -> sweeps (sweep_id));

diesel::table! {
    findings (id) {
        id -> BigInt,
        fingerprint -> Text,
        item_id -> BigInt,
        rule_id -> Text,
        finding_key -> Text,
        kind -> Text,
        state -> Text,
        score -> BigInt,
        rule_score -> BigInt,
        severity -> Text,
        title -> Text,
        detail -> Text,
        remediation -> Text,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
        opened_at -> Timestamp,
        fixed_at -> Nullable<Timestamp>,
        first_revision_id -> Nullable<BigInt>,
        last_revision_id -> Nullable<BigInt>,
        reopen_count -> BigInt,
        justified_by -> Nullable<Text>,
        justification -> Nullable<Text>,
        justified_at -> Nullable<Timestamp>,
        justified_until -> Nullable<Timestamp>,
        suppressed_by -> Nullable<Text>,
        account -> Text,
        resource_type -> Text,
        controls -> Text,
    }
}

diesel::table! {
    finding_events (id) {
        id -> BigInt,
        finding_id -> BigInt,
        at -> Timestamp,
        event -> Text,
        actor -> Nullable<Text>,
        detail -> Text,
        revision_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    rule_errors (id) {
        id -> BigInt,
        rule_id -> Text,
        item_id -> Nullable<BigInt>,
        revision_id -> Nullable<BigInt>,
        message -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        route -> Text,
        channel -> Text,
        dedup_key -> Text,
        event -> Text,
        finding_id -> Nullable<BigInt>,
        payload -> Text,
        created_at -> Timestamp,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        leased_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        gave_up_at -> Nullable<Timestamp>,
        digest_window -> Nullable<Timestamp>,
        requeued_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notify_cursors (name) {
        name -> Text,
        last_event_id -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        name -> Text,
        role -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        principal -> Text,
        role -> Text,
        token_id -> Nullable<BigInt>,
        csrf_token -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    rule_health (rule_id) {
        rule_id -> Text,
        status -> Text,
        message -> Text,
        evaluations -> BigInt,
        errors -> BigInt,
        exhausted -> BigInt,
        skipped -> BigInt,
        checked_at -> Timestamp,
    }
}

diesel::table! {
    sweep_jobs (job) {
        job -> Text,
        source -> Text,
        account -> Text,
        role_arn -> Nullable<Text>,
        definition -> Text,
        interval_ms -> BigInt,
        due_at -> Timestamp,
        leased_by -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        runs -> BigInt,
        takeovers -> BigInt,
        last_status -> Nullable<Text>,
        last_message -> Nullable<Text>,
    }
}

diesel::table! {
    worker_leases (name) {
        name -> Text,
        holder -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
    }
}

diesel::joinable!(findings -> items (item_id));
diesel::joinable!(finding_events -> findings (finding_id));
diesel::joinable!(rule_errors -> items (item_id));
diesel::allow_tables_to_appear_in_same_query!(
    sweeps,
    items,
    revisions,
    sweep_errors,
    findings,
    finding_events,
    rule_errors,
    outbox,
    notify_cursors,
    api_tokens,
    sessions,
    rule_health
);
