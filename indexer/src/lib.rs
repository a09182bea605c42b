//! The indexer (see issue 3).
