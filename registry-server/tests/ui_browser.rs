//! The web page in a real headless Chromium, driven over WebDriver (Debian's `chromium` and `chromium-driver`):
//! open the repository list, search, follow a repository to an image and an index, and check what a person sees.
//! A screenshot of each page is kept in `target/ui-screenshots/`. Without chromedriver the test skips, saying so,
//! except under `CI=true`, where it fails.

mod common;
mod ui_content;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::TestServer;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use ui_content::{populate, HOSTILE_LABEL};

/// The key WebDriver puts element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the screenshots go: the workspace's target directory (or `CARGO_TARGET_DIR`).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: Client,
}

impl Driver {
    fn start(program: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
struct Browser<'a> {
    driver: &'a Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl<'a> Browser<'a> {
    fn open(driver: &'a Driver, chromium: &Path) -> Browser<'a> {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.to_str().unwrap(), "args": args},
        }}});
        let response: Value = driver
            .http
            .post(format!("{}/session", driver.base))
            .json(&capabilities)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {response}"))
            .to_string();
        Browser {
            driver,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.base, self.session);
        let mut request = self.driver.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().unwrap().json().unwrap();
        if response["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", response["value"]);
        }
        response["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn find(&self, using: &str, value: &str) -> String {
        let found = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": using, "value": value})),
        );
        found[ELEMENT].as_str().unwrap().to_string()
    }

    fn find_all_text(&self, css: &str) -> Vec<String> {
        let found = self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| self.text(e[ELEMENT].as_str().unwrap()))
            .collect()
    }

    fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .as_str()
        .unwrap()
        .to_string()
    }

    fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn type_into(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Waits until the document has loaded (a click on a link returns before the next page has).
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.script(script) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .http
            .delete(format!("{}/session/{}", self.driver.base, self.session))
            .send();
    }
}

#[test]
fn a_person_browses_the_registry() {
    let chromedriver = find_program(&["/usr/bin/chromedriver"]);
    let chromium = find_program(&["/usr/bin/chromium"]);
    let (Some(chromedriver), Some(chromium)) = (chromedriver, chromium) else {
        assert!(
            !in_ci(),
            "chromium and chromium-driver are required under CI=true (scripts/install-deps.sh installs them)"
        );
        eprintln!(
            "SKIP: chromium or chromedriver missing (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let server = TestServer::start();
    let content = populate(&server);
    let driver = Driver::start(&chromedriver);
    let browser = Browser::open(&driver, &chromium);
    let loaded = "return document.readyState === 'complete'";

    // The repository list.
    browser.go(&server.url("/"));
    assert_eq!(
        browser.script("return document.title"),
        json!("Repositories · lade registry")
    );
    let all = browser.find_all_text("a.repository");
    assert_eq!(
        all,
        ["library/web", "multi/app", "tools/builder", "tools/linter"]
    );
    browser.screenshot("01-repositories");

    // Search by typing into the form and submitting it.
    let input = browser.find("css selector", "input[name=q]");
    browser.type_into(&input, "tools");
    let submit = browser.find("css selector", "form.search button[type=submit]");
    browser.click(&submit);
    browser.wait_for(
        "the search results",
        "return location.search === '?q=tools' && document.readyState === 'complete'",
    );
    assert_eq!(
        browser.find_all_text("a.repository"),
        ["tools/builder", "tools/linter"]
    );
    browser.screenshot("02-search");

    // Follow a repository to its tags.
    browser.go(&server.url("/ui"));
    let link = browser.find("link text", "library/web");
    browser.click(&link);
    browser.wait_for(
        "the repository page",
        "return location.pathname === '/ui/repo' && document.readyState === 'complete'",
    );
    assert_eq!(browser.find_all_text("a.tag"), ["1.0", "latest"]);
    let rows = browser.find_all_text("#tags tbody tr");
    assert!(
        rows[0].contains("linux/amd64") && rows[0].contains("2026-11-30 12:34:56 UTC"),
        "{rows:?}"
    );
    browser.screenshot("03-repository");

    // And to an image.
    let tag = browser.find("link text", "1.0");
    browser.click(&tag);
    browser.wait_for(
        "the image page",
        "return location.pathname === '/ui/image' && document.readyState === 'complete'",
    );
    assert!(browser.url().contains("ref=1.0"));
    let heading = browser.text(&browser.find("css selector", "h1"));
    assert_eq!(heading, "library/web:1.0");
    let pull = browser.text(&browser.find("css selector", ".cmd"));
    assert_eq!(
        pull,
        format!(
            "docker pull {}/library/web:1.0",
            server.base.trim_start_matches("http://")
        )
    );
    assert_eq!(
        browser.text(&browser.find("css selector", "#digest")),
        content.web_digest.to_string()
    );
    assert_eq!(
        browser.text(&browser.find("css selector", "#entrypoint")),
        "[\"/bin/web\"]"
    );
    assert_eq!(
        browser.text(&browser.find("css selector", "#cmd")),
        "[\"--port\",\"8080\"]"
    );
    // The hostile label shows as text and never ran.
    let labels = browser.text(&browser.find("css selector", "#labels"));
    assert!(labels.contains(HOSTILE_LABEL), "{labels}");
    assert_eq!(
        browser.script("return document.title"),
        json!("library/web:1.0 · lade registry")
    );
    assert_eq!(browser.script("return document.scripts.length"), json!(1));
    assert_eq!(browser.find_all_text("#layers tbody tr").len(), 2);
    assert_eq!(browser.find_all_text("#history tbody tr").len(), 3);
    let referrers = browser.find_all_text("#referrers tbody tr");
    assert_eq!(referrers.len(), 1);
    assert!(
        referrers[0].contains("application/spdx+json"),
        "{referrers:?}"
    );
    browser.screenshot("04-image");

    // The copy button puts the pull line on the clipboard.
    for permission in ["clipboard-read", "clipboard-write"] {
        browser.call(
            reqwest::Method::POST,
            "/permissions",
            Some(json!({"descriptor": {"name": permission}, "state": "granted"})),
        );
    }
    browser.click(&browser.find("css selector", "button[data-copy]"));
    browser.wait_for(
        "the copy",
        "return document.querySelector('button[data-copy]').textContent === 'copied'",
    );
    let copied = browser.call(
        reqwest::Method::POST,
        "/execute/async",
        Some(json!({"script": "navigator.clipboard.readText().then(arguments[0])", "args": []})),
    );
    assert_eq!(copied, json!(pull));

    // The SBOM, followed from the referrers table.
    let sbom = browser.find("css selector", "#referrers tbody a");
    browser.click(&sbom);
    browser.wait_for(
        "the referrer page",
        &format!(
            "return location.search.includes('{}') && document.readyState === 'complete'",
            content.sbom_digest.hex()
        ),
    );
    assert!(browser
        .text(&browser.find("css selector", "main"))
        .contains("An artifact"));
    assert_eq!(
        browser.script("return document.title.includes('pwned')"),
        json!(false)
    );
    browser.screenshot("05-referrer");

    // A multi-platform index and one of its platforms.
    browser.go(&server.url("/ui/repo?name=multi%2Fapp"));
    browser.wait_for("the index repository", loaded);
    browser.click(&browser.find("link text", "2.1"));
    browser.wait_for(
        "the index page",
        "return location.pathname === '/ui/image' && document.readyState === 'complete'",
    );
    let platforms = browser.find_all_text("#manifests tbody tr");
    assert_eq!(platforms.len(), 2);
    assert!(platforms[1].contains("linux/arm64/v8"), "{platforms:?}");
    browser.screenshot("06-index");
    browser.click(&browser.find("css selector", "#manifests tbody tr:nth-child(2) a"));
    browser.wait_for(
        "the platform image",
        "return document.querySelector('#config') !== null",
    );
    assert!(browser
        .text(&browser.find("css selector", "#config"))
        .contains("linux/arm64"));
    browser.screenshot("07-platform-image");
}
