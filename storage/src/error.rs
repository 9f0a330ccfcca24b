#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH (the default backend) or postgres://USER@HOST:PORT/DATABASE")]
    BadUrl(String),
    #[error("cannot open database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot bring the schema of {url} up to date: {reason}")]
    Migration { url: String, reason: String },
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available: {0} (is the database still reachable?)")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    /// The caller's input is wrong (a bad role, cursor or duplicate name); the
    /// message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
