//! The marketplace web (see issue 4).
