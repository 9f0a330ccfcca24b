//! API tokens and browser sessions.
//!
//! Secrets are never stored: a token (`grd_` + 256 random bits in hex) and a session
//! id are kept as their SHA-256, and looked up by that hash, so a leaked database
//! yields nothing that authenticates. Sessions live in the database rather than in
//! memory so several servers share them and revoking a token logs its sessions out.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::query::utc_serde;
use crate::schema::{api_tokens, sessions};
use crate::{with_conn, write_tx, StorageError, Store};

/// What a principal may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also justifies and unjustifies findings.
    Triager,
    /// Also manages API tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Triager, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Triager => "triager",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, StorageError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "triager" => Ok(Role::Triager),
            "admin" => Ok(Role::Admin),
            _ => Err(StorageError::Invalid(format!(
                "unknown role {s:?}: use viewer, triager or admin"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The prefix that makes a guardrail token recognisable (e.g. to secret scanners).
pub const TOKEN_PREFIX: &str = "grd_";

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub token_hash: String,
    #[serde(with = "utc_serde")]
    pub created_at: NaiveDateTime,
    #[serde(with = "utc_serde::option")]
    pub last_used_at: Option<NaiveDateTime>,
    #[serde(with = "utc_serde::option")]
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub principal: String,
    pub role: String,
    pub token_id: Option<i64>,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Who is asking, and with which role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The API token this principal authenticated with (none for proxy users).
    pub token_id: Option<i64>,
}

/// `bytes` random bytes from the operating system, in hex.
pub fn random_hex(bytes: usize) -> Result<String, StorageError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| {
        StorageError::Invalid(format!("the operating system's random source failed: {e}"))
    })?;
    Ok(hex::encode(buf))
}

/// SHA-256 of a secret, in hex: what is stored and looked up instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn check_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "token name {name:?}: use 1-64 letters, digits, '.', '_', '@' or '-'"
        )))
    }
}

/// Writing `last_used_at` on every request would make each API read a write; once a
/// minute is precise enough to see which tokens are in use.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

impl Store {
    /// Creates a token and returns its row and the plaintext, which exists only here.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(TokenRow, String), StorageError> {
        check_name(name)?;
        let secret = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
        let hash = hash_secret(&secret);
        let now = now.naive_utc();
        let name_owned = name.to_owned();
        let row = write_tx!(self, conn => {
            let taken: i64 = api_tokens::table
                .filter(api_tokens::name.eq(&name_owned))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(StorageError::Invalid(format!(
                    "a token named {name_owned:?} already exists: choose another name, or revoke it first (revoked names stay taken so logs stay unambiguous)"
                )));
            }
            diesel::insert_into(api_tokens::table)
                .values((
                    api_tokens::name.eq(&name_owned),
                    api_tokens::role.eq(role.as_str()),
                    api_tokens::token_hash.eq(&hash),
                    api_tokens::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok(api_tokens::table
                .filter(api_tokens::name.eq(&name_owned))
                .select(TokenRow::as_select())
                .first(conn)?)
        })?;
        Ok((row, secret))
    }

    /// The principal a token belongs to, if the token exists and is not revoked.
    pub fn verify_token(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>, StorageError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = hash_secret(secret);
        let row: Option<TokenRow> = with_conn!(self, conn => {
            api_tokens::table
                .filter(api_tokens::token_hash.eq(&hash))
                .filter(api_tokens::revoked_at.is_null())
                .select(TokenRow::as_select())
                .first(conn)
                .optional()?
        });
        let Some(row) = row else { return Ok(None) };
        let role = Role::parse(&row.role).map_err(|_| {
            StorageError::Corrupt(format!("token {} has role {:?}", row.name, row.role))
        })?;
        let now = now.naive_utc();
        let stale = row
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_GRANULARITY_SECS);
        if stale {
            write_tx!(self, conn => {
                diesel::update(api_tokens::table.find(row.id))
                    .set(api_tokens::last_used_at.eq(Some(now)))
                    .execute(conn)?;
                Ok(())
            })?;
        }
        Ok(Some(Principal {
            name: row.name,
            role,
            token_id: Some(row.id),
        }))
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            api_tokens::table
                .order(api_tokens::id)
                .select(TokenRow::as_select())
                .load(conn)?
        }))
    }

    /// Revokes a token by name and ends its sessions. False if no live token has that name.
    pub fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
        let now = now.naive_utc();
        let name = name.to_owned();
        write_tx!(self, conn => {
            let id: Option<i64> = api_tokens::table
                .filter(api_tokens::name.eq(&name))
                .filter(api_tokens::revoked_at.is_null())
                .select(api_tokens::id)
                .first(conn)
                .optional()?;
            let Some(id) = id else { return Ok(false) };
            diesel::update(api_tokens::table.find(id))
                .set(api_tokens::revoked_at.eq(Some(now)))
                .execute(conn)?;
            diesel::delete(sessions::table.filter(sessions::token_id.eq(Some(id)))).execute(conn)?;
            Ok(true)
        })
    }

    /// Starts a browser session; returns (session id, CSRF token), both plaintext.
    pub fn create_session(
        &self,
        principal: &Principal,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(String, String), StorageError> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let id_hash = hash_secret(&id);
        let created = now.naive_utc();
        let expires = (now + ttl).naive_utc();
        write_tx!(self, conn => {
            // Expired sessions are purged here rather than by a timer: logins are rare
            // and this keeps the table small without another background task.
            diesel::delete(sessions::table.filter(sessions::expires_at.lt(created))).execute(conn)?;
            diesel::insert_into(sessions::table)
                .values((
                    sessions::id_hash.eq(&id_hash),
                    sessions::principal.eq(&principal.name),
                    sessions::role.eq(principal.role.as_str()),
                    sessions::token_id.eq(principal.token_id),
                    sessions::csrf_token.eq(&csrf),
                    sessions::created_at.eq(created),
                    sessions::expires_at.eq(expires),
                ))
                .execute(conn)?;
            Ok(())
        })?;
        Ok((id, csrf))
    }

    /// A live session: not expired, and its token (if any) not revoked.
    pub fn session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Principal, SessionRow)>, StorageError> {
        let id_hash = hash_secret(id);
        let now = now.naive_utc();
        let row: Option<SessionRow> = with_conn!(self, conn => {
            sessions::table
                .filter(sessions::id_hash.eq(&id_hash))
                .filter(sessions::expires_at.gt(now))
                .select(SessionRow::as_select())
                .first(conn)
                .optional()?
        });
        let Some(row) = row else { return Ok(None) };
        if let Some(token_id) = row.token_id {
            let live: i64 = with_conn!(self, conn => {
                api_tokens::table
                    .filter(api_tokens::id.eq(token_id))
                    .filter(api_tokens::revoked_at.is_null())
                    .count()
                    .get_result(conn)?
            });
            if live == 0 {
                return Ok(None);
            }
        }
        let role = Role::parse(&row.role).map_err(|_| {
            StorageError::Corrupt(format!(
                "session of {} has role {:?}",
                row.principal, row.role
            ))
        })?;
        Ok(Some((
            Principal {
                name: row.principal.clone(),
                role,
                token_id: row.token_id,
            },
            row,
        )))
    }

    pub fn delete_session(&self, id: &str) -> Result<(), StorageError> {
        let id_hash = hash_secret(id);
        write_tx!(self, conn => {
            diesel::delete(sessions::table.filter(sessions::id_hash.eq(&id_hash))).execute(conn)?;
            Ok(())
        })
    }
}
