//! Who is asking, as the handlers see it once the middleware (`auth`) has decided:
//! a value type with no behaviour, so pages, the API and the use cases can name the
//! caller without depending on the middleware.

use guardrail_storage::Principal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Token,
    Session,
    Proxy,
}

/// The authenticated caller, in the request's extensions for handlers.
#[derive(Debug, Clone)]
pub struct Auth {
    pub principal: Principal,
    pub via: Via,
    /// The CSRF token of the caller's session (none for bearer tokens).
    pub csrf: Option<String>,
}
