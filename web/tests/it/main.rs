//! Integration tests of the marketplace: real packages pushed with skopeo through a real shim to
//! a real docker-registry, indexed into a real PostgreSQL, read over HTTP and in headless
//! Chromium.

mod api;
mod browser;
mod changes;
mod details;
mod examples;
mod harness;
mod hub;
mod layout;
mod pages;
mod pulls;
mod request_id;
mod search;
mod slow_clients;
mod timeouts;
mod visibility;
mod webdriver;
