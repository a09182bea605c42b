//! What the shim knows of one backend's token service, for the token relay ([`crate::token`]):
//! the realm the backend last named in a `Bearer` challenge, or, for [`NO_REALM_MEMORY`], that
//! its `GET /v2/` named none (so a flood of token requests for a backend without a token service
//! does not become a flood of requests to it).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a backend's answer that it names no token service is remembered.
pub const NO_REALM_MEMORY: Duration = Duration::from_secs(60);

/// One backend's token service, as far as the shim knows it.
#[derive(Debug, Default)]
pub struct RealmMemory(Mutex<Known>);

#[derive(Debug, Default)]
enum Known {
    #[default]
    Unknown,
    Named(String),
    NoneUntil(Instant),
}

impl RealmMemory {
    /// Remembers the token service the backend named in a `Bearer` challenge.
    pub fn learn(&self, realm: &str) {
        let mut known = self.0.lock().expect("token realm lock");
        if !matches!(&*known, Known::Named(r) if r == realm) {
            *known = Known::Named(realm.to_owned());
        }
    }

    /// Remembers, for [`NO_REALM_MEMORY`], that the backend's `GET /v2/` named no token service
    /// (a realm it named in a challenge is kept).
    pub fn learn_none(&self) {
        let mut known = self.0.lock().expect("token realm lock");
        if !matches!(&*known, Known::Named(_)) {
            *known = Known::NoneUntil(Instant::now() + NO_REALM_MEMORY);
        }
    }

    /// Whether the backend said lately that it names no token service.
    pub fn lately_none(&self) -> bool {
        matches!(*self.0.lock().expect("token realm lock"),
            Known::NoneUntil(until) if Instant::now() < until)
    }

    /// The token service the backend last named, if it has.
    pub fn get(&self) -> Option<String> {
        match &*self.0.lock().expect("token realm lock") {
            Known::Named(realm) => Some(realm.clone()),
            Known::Unknown | Known::NoneUntil(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_realm_outlasts_a_later_answer_of_none() {
        let memory = RealmMemory::default();
        assert!(memory.get().is_none() && !memory.lately_none());
        memory.learn_none();
        assert!(memory.lately_none() && memory.get().is_none());
        memory.learn("https://auth.example/token");
        memory.learn_none();
        assert_eq!(memory.get().as_deref(), Some("https://auth.example/token"));
        assert!(!memory.lately_none());
    }
}
