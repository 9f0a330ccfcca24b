//! Table definitions shared by both backends: every column uses a type both
//! SQLite and PostgreSQL map the same way (JSON is canonical text; see DESIGN §6).

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
diesel::allow_tables_to_appear_in_same_query!(sweeps, items, revisions, sweep_errors);
