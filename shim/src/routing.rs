//! Which backend a repository belongs to: the configuration's [`RouteTable`] (the longest
//! configured prefix that matches wins) over the backends built from it.

use std::{collections::HashMap, sync::Arc};

use shimmer_config::Config;
use shimmer_registry::{RegistryError, RouteTable};

use crate::backend::Backend;

/// The route table, built once at start.
#[derive(Debug)]
pub struct Routes {
    routes: RouteTable<Arc<Backend>>,
    backends: HashMap<String, Arc<Backend>>,
    /// The backend answering `GET /v2/` and `_catalog`.
    ping: Option<Arc<Backend>>,
}

impl Routes {
    pub fn from_config(config: &Config) -> Result<Self, RegistryError> {
        let mut backends = HashMap::new();
        for b in &config.backends {
            backends.insert(b.name.clone(), Backend::from_config(b)?);
        }
        let routes = RouteTable::new(
            config
                .routes
                .iter()
                .map(|r| (r.prefix.clone(), backends[&r.backend].clone())),
        );
        let ping = match &config.server.ping_backend {
            Some(name) => Some(backends[name].clone()),
            None => routes.default_route().cloned(),
        };
        Ok(Self {
            routes,
            backends,
            ping,
        })
    }

    /// The backend a shim repository name routes to, if any.
    pub fn route(&self, name: &str) -> Option<&Arc<Backend>> {
        self.routes.route(name).map(|(_, b)| b)
    }

    pub fn ping_backend(&self) -> Option<&Arc<Backend>> {
        self.ping.as_ref()
    }

    pub fn backend(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.get(name)
    }

    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.backends.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_unrouted_names_have_none() {
        let config = Config::from_toml(
            r#"
            [[backend]]
            name = "a"
            url = "http://127.0.0.1:1"
            [[backend]]
            name = "b"
            url = "http://127.0.0.1:2"
            [[route]]
            prefix = "acme/"
            backend = "a"
            [[route]]
            prefix = "acme/private/"
            backend = "b"
            "#,
        )
        .unwrap();
        let routes = Routes::from_config(&config).unwrap();
        assert_eq!(routes.route("acme/x").unwrap().name, "a");
        assert_eq!(routes.route("acme/private/x").unwrap().name, "b");
        assert!(routes.route("other/x").is_none());
        assert!(routes.ping_backend().is_none());
    }

    #[test]
    fn empty_prefix_is_the_default_and_the_ping_backend() {
        let config = Config::from_toml(
            r#"
            [[backend]]
            name = "a"
            url = "http://127.0.0.1:1"
            [[route]]
            prefix = ""
            backend = "a"
            "#,
        )
        .unwrap();
        let routes = Routes::from_config(&config).unwrap();
        assert_eq!(routes.route("anything/at/all").unwrap().name, "a");
        assert_eq!(routes.ping_backend().unwrap().name, "a");
    }
}
