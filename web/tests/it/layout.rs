//! The marketplace's layout in a real browser (headless Chromium over WebDriver) at desktop
//! widths (1280 and 1920 px) and a phone's (375 px): every page family is photographed to
//! `target/web-screenshots/`, never scrolls sideways, has one `h1` and labelled controls, and
//! axe-core (npm's, run in the page) finds no serious or critical violation. Then the controls:
//! the version selector, an API's version tabs (by mouse and by keyboard), expand-all, a field
//! opened with Enter, and a field's anchor scrolling to it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    browser::screenshot_dir,
    harness::Env,
    webdriver::{Browser, ENTER},
};

/// WebDriver's `ArrowRight` key.
const ARROW_RIGHT: &str = "\u{E014}";

/// Runs axe-core in the page; its serious and critical violations (id, help, first nodes).
async fn axe_violations(browser: &Browser, axe: &str) -> Value {
    let script = format!(
        "{axe}\n;var done = arguments[arguments.length - 1];
         (window.axe || axe).run(document, {{resultTypes: ['violations']}}).then(function (r) {{
           done(r.violations.filter(function (v) {{
             return v.impact === 'serious' || v.impact === 'critical';
           }}).map(function (v) {{
             return {{id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map(function (n) {{
               return n.target.join(' '); }})}};
           }}));
         }}).catch(function (e) {{ done({{error: String(e)}}); }});"
    );
    browser.execute_async(&script, json!([])).await
}

#[tokio::test]
#[allow(
    clippy::print_stdout,
    reason = "a test reports where it wrote its screenshots"
)]
async fn pages_lay_out_at_phone_and_desktop_widths_and_pass_axe() {
    let axe_path = std::env::var("TESTKIT_AXE_JS")
        .expect("TESTKIT_AXE_JS names axe.min.js (scripts/test.sh downloads it)");
    let axe = std::fs::read_to_string(&axe_path).expect("axe.min.js is readable");
    let env = Env::start().await;
    env.push_kubernetes().await;
    env.index_all().await;
    let object = env.latest_object_crd().await;
    let package = "/packages/crossplane-contrib/provider-kubernetes";
    let docs = format!("/docs/{object}");
    let pages = [
        ("home", "/".to_owned()),
        ("package", package.to_owned()),
        ("version", format!("{package}/versions/v0.18.0")),
        ("api", docs.clone()),
        (
            "api-in-version",
            format!("{package}/versions/v1.2.1/apis/kubernetes.crossplane.io/Object"),
        ),
        ("diff", format!("{package}/diff")),
        ("search", "/search?q=Object".to_owned()),
        ("status", "/status".to_owned()),
    ];
    let dir = screenshot_dir();
    let browser = Browser::start().await;
    for (width, height, mobile) in [(1280, 900, false), (375, 812, true), (1920, 1080, false)] {
        browser.viewport(width, height, mobile).await;
        for (name, path) in &pages {
            browser.goto(&format!("{}{path}", env.web)).await;
            let facts = browser
                .execute(
                    "return {
                       scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                       h1: document.querySelectorAll('h1').length,
                       unlabelled: Array.prototype.filter.call(
                         document.querySelectorAll('input, select, textarea'), function (e) {
                           return e.type !== 'hidden' && !(e.labels && e.labels.length)
                             && !e.getAttribute('aria-label');
                         }).length
                     };",
                    json!([]),
                )
                .await;
            assert!(
                facts["scroll"].as_u64() <= facts["inner"].as_u64(),
                "{name} scrolls sideways at {width} px: {facts}"
            );
            assert_eq!(facts["h1"], 1, "{name} at {width} px: {facts}");
            assert_eq!(facts["unlabelled"], 0, "{name}: unlabelled controls");
            let png = browser.screenshot().await;
            assert!(png.starts_with(b"\x89PNG"), "{name}");
            let file = dir.join(format!("{name}-{width}.png"));
            std::fs::write(&file, png).unwrap();
            println!("screenshot: {}", file.display());
            if width == 1280 {
                let violations = axe_violations(&browser, &axe).await;
                assert_eq!(violations, json!([]), "axe on {name} ({path})");
            }
        }
    }
    browser.viewport(1280, 900, false).await;

    // Typeahead: typing into the home page's search box offers the JSON API's hits.
    browser.goto(&format!("{}/", env.web)).await;
    let q = browser.find("css selector", ".hero input[name=q]").await;
    browser.type_text(&q, "ProviderConf").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let offered = loop {
        let offered = browser
            .execute(
                "var l = document.getElementById(document.querySelector('.hero input[name=q]')
                   .getAttribute('list'));
                 return l ? Array.prototype.map.call(l.options, function (o) { return o.value; }) : [];",
                json!([]),
            )
            .await;
        if offered.as_array().is_some_and(|a| !a.is_empty())
            || tokio::time::Instant::now() > deadline
        {
            break offered;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        offered
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ProviderConfig.kubernetes.crossplane.io"),
        "{offered}"
    );

    // The version selector goes to the version chosen.
    browser.goto(&format!("{}{package}", env.web)).await;
    let option = browser
        .find("css selector", "#version-select option[value='v0.18.0']")
        .await;
    browser.click(&option).await;
    wait_for_url(&browser, "/versions/v0.18.0").await;

    // An API's version tabs: the storage version's schema shows first; a click shows another's.
    browser.goto(&format!("{}{docs}", env.web)).await;
    let shown = async || {
        browser
            .execute(
                "return Array.prototype.filter.call(document.querySelectorAll('[role=tabpanel]'),
                   function (p) { return !p.hidden; }).map(function (p) { return p.id; });",
                json!([]),
            )
            .await
    };
    assert_eq!(
        shown().await,
        json!(["v1alpha2"]),
        "the storage version first"
    );
    let tab = browser.find("css selector", "#tab-v1alpha1").await;
    browser.click(&tab).await;
    assert_eq!(shown().await, json!(["v1alpha1"]));
    // The keyboard moves along the tabs (and wraps).
    browser.type_text(&tab, ARROW_RIGHT).await;
    assert_eq!(shown().await, json!(["v1alpha2"]));
    let focused = browser
        .execute("return document.activeElement.id;", json!([]))
        .await;
    assert_eq!(focused, "tab-v1alpha2");

    // Expand all opens every field of every version.
    let closed = async || {
        browser
            .execute(
                "return Array.prototype.filter.call(document.querySelectorAll('details'),
                   function (d) { return !d.open; }).length;",
                json!([]),
            )
            .await
    };
    assert_ne!(closed().await, 0, "some fields start closed");
    let expand = browser
        .find("css selector", "button[data-expand=all]")
        .await;
    browser.click(&expand).await;
    assert_eq!(closed().await, 0);
    let collapse = browser
        .find("css selector", "button[data-expand=none]")
        .await;
    browser.click(&collapse).await;
    assert_ne!(closed().await, 0);
    // The field tree works from the keyboard: Enter on a focused field (spec, closed by
    // collapse-all) opens it.
    let field = browser
        .find("css selector", "details[id='v1alpha2.spec'] > summary")
        .await;
    browser.type_text(&field, ENTER).await;
    let open = browser
        .execute(
            "return document.getElementById('v1alpha2.spec').open;",
            json!([]),
        )
        .await;
    assert_eq!(open, json!(true), "Enter opened the field");

    // The API list beside an API's page within a version filters as one types.
    browser
        .goto(&format!(
            "{}{package}/versions/v1.2.1/apis/kubernetes.crossplane.io/Object",
            env.web
        ))
        .await;
    let filter = browser.find("css selector", "#api-filter").await;
    browser.type_text(&filter, "usage").await;
    let visible = browser
        .execute(
            "return Array.prototype.filter.call(document.querySelectorAll('#api-nav-list [data-filter-text]'),
               function (li) { return !li.hidden; }).map(function (li) { return li.textContent.trim(); });",
            json!([]),
        )
        .await;
    assert_eq!(
        visible,
        json!(["ProviderConfigUsage", "ProviderConfigUsage"])
    );

    // A field's anchor opens its tab and tree, and scrolls to it.
    let field = "v1alpha1.spec.providerConfigRef.policy.resolve";
    browser.goto(&format!("{}{docs}#{field}", env.web)).await;
    let at = browser
        .execute(
            "var r = document.getElementById(arguments[0]).getBoundingClientRect();
             return {top: r.top, height: window.innerHeight, y: window.scrollY};",
            json!([field]),
        )
        .await;
    let top = at["top"].as_f64().unwrap();
    assert!(
        top > -1.0 && top < at["height"].as_f64().unwrap() && at["y"].as_f64().unwrap() > 0.0,
        "{field} is in view: {at}"
    );
    assert_eq!(
        shown().await,
        json!(["v1alpha1"]),
        "its version's tab is shown"
    );
    browser.quit().await;
}

/// Waits until the browser's URL ends with `suffix`.
async fn wait_for_url(browser: &Browser, suffix: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = browser.url().await;
        if url.ends_with(suffix) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the URL never ended with {suffix}: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
