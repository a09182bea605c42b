//! A small client of the W3C WebDriver protocol (over HTTP, with reqwest) driving headless
//! Chromium through Debian's `chromedriver`, so tests can type, click and look like a person.

use std::{process::Stdio, time::Duration};

use base64::Engine;
use serde_json::{Value, json};
use testkit::http::Sent;

/// The key WebDriver calls `Enter`.
pub const ENTER: &str = "\u{E007}";

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session; both end when this is dropped.
pub struct Browser {
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session with
    /// the flags of `shared/specs/real-clients.md` (no sandbox, no background networking).
    pub async fn start() -> Browser {
        let port = testkit::free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) runs");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let root = format!("http://127.0.0.1:{port}");
        let probe = http.clone();
        let status = format!("{root}/status");
        testkit::wait_until("chromedriver is ready", Duration::from_secs(30), || {
            let probe = probe.clone();
            let status = status.clone();
            async move {
                match probe.get(&status).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["value"]["ready"] == true),
                    Err(_) => false,
                }
            }
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let args = testkit::chromium::HEADLESS_FLAGS
            .iter()
            .chain(&["--window-size=1280,900"])
            .map(|s| s.to_string())
            .chain([format!("--user-data-dir={}", profile.path().display())])
            .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let r: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .sent()
            .await
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Browser {
            _driver: driver,
            _profile: profile,
            base: format!("{root}/session/{id}"),
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.sent().await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching `selector` (`css selector`, `link text`, ...), polled for
    /// until it shows up (the page may still be loading).
    pub async fn find(&self, using: &str, selector: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": using, "value": selector}))
                .sent()
                .await;
            let ok = r.status().is_success();
            let v: Value = r.json().await.unwrap();
            if ok && let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no element {using} {selector:?} on {}: {v}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_text(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The rendered (visible) text of an element.
    pub async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Polls until the page's visible text contains `needle`; returns that text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let body = self.find("css selector", "body").await;
            let text = self.text(&body).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{needle:?} not on {}:\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        let body = json!({"script": script, "args": args});
        self.call(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with its result when done.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        let body = json!({"script": script, "args": args});
        self.call(reqwest::Method::POST, "/execute/async", Some(body))
            .await
    }

    /// Lays pages out at `width` x `height` CSS pixels, as a phone (`mobile`) or a desktop
    /// browser does (through the DevTools protocol: a window cannot be made narrower than
    /// Chromium's minimum, a viewport can).
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        let body = json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}});
        self.call(reqwest::Method::POST, "/goog/cdp/execute", Some(body))
            .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }

    /// Ends the session (the browser exits); chromedriver stops when dropped.
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
