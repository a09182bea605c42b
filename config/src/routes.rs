//! The one routing rule: a repository goes where the longest configured prefix that it starts
//! with points; an empty prefix is the default. The shim routes requests with it, the
//! configuration resolves visibility with it, and the CLI names a reference's backend with it.
//! It lives here, in the bottom crate, because the configuration itself needs it; the registry
//! crate re-exports it.

/// Prefixes and what each routes to, longest first. Pure: no I/O, no knowledge of backends.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<(String, T)>,
}

impl<T> RouteTable<T> {
    /// A table of `(prefix, target)` pairs (a prefix listed twice: the first wins).
    pub fn new(routes: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut routes: Vec<(String, T)> = routes.into_iter().collect();
        // A stable sort: of two equal prefixes (refused by validation anyway), the first wins.
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Self { routes }
    }

    /// What `repository` routes to, with the prefix that matched; `None` when no prefix does.
    pub fn route(&self, repository: &str) -> Option<(&str, &T)> {
        self.routes
            .iter()
            .find(|(prefix, _)| repository.starts_with(prefix.as_str()))
            .map(|(p, t)| (p.as_str(), t))
    }

    /// What the empty prefix (the default route) points at.
    pub fn default_route(&self) -> Option<&T> {
        self.routes
            .iter()
            .find(|(p, _)| p.is_empty())
            .map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::RouteTable;

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        for order in [
            vec![("acme/", 1), ("acme/private/", 2), ("", 3)],
            vec![("", 3), ("acme/private/", 2), ("acme/", 1)],
        ] {
            let table = RouteTable::new(order.into_iter().map(|(p, t)| (p.to_owned(), t)));
            assert_eq!(table.route("acme/x"), Some(("acme/", &1)));
            assert_eq!(table.route("acme/private/x"), Some(("acme/private/", &2)));
            assert_eq!(table.route("other/x"), Some(("", &3)));
            assert_eq!(table.default_route(), Some(&3));
        }
        let table = RouteTable::new([("acme/".to_owned(), 1)]);
        assert_eq!(table.route("other/x"), None);
        assert_eq!(table.default_route(), None);
    }
}
