//! The browser tests' handle on headless Chromium: Debian's chromedriver, driven with
//! fantoccini (a maintained W3C WebDriver client) over plain HTTP on loopback. The
//! tests are synchronous, so `Browser` runs each command on its own small tokio
//! runtime and panics with the WebDriver error when a command fails.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::{Element, ElementRef};
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// chromedriver and one headless Chromium session; both go away on drop.
pub struct Browser {
    driver: Child,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
}

/// Paths of chromium and chromedriver, installed by scripts/setup-browser.
fn binaries() -> (String, String) {
    let out = Command::new(super::repo().join("scripts/setup-browser"))
        .output()
        .expect("run scripts/setup-browser");
    assert!(
        out.status.success(),
        "chromium is needed for the browser tests: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    (
        parts.next().unwrap_or("chromium").to_owned(),
        parts.next().unwrap_or("chromedriver").to_owned(),
    )
}

impl Browser {
    pub fn start() -> Browser {
        let (chromium, chromedriver) = binaries();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000"],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the WebDriver client");
        // Plain HTTP: chromedriver listens on loopback only, so no TLS connector.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}"));
        Browser {
            driver,
            rt,
            client: Some(client),
        }
    }

    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until drop")
    }

    /// Runs one WebDriver command; a failure panics naming what was asked.
    fn run<T>(&self, what: &str, f: impl std::future::Future<Output = Result<T, CmdError>>) -> T {
        self.rt
            .block_on(f)
            .unwrap_or_else(|e| panic!("WebDriver {what}: {e}"))
    }

    fn element(&self, id: &str) -> Element {
        Element::from_element_id(self.client().clone(), ElementRef::from(id.to_owned()))
    }

    /// The text of the first element matching `css` now, or None while there is
    /// none (or the page it was found on is being replaced): for polling.
    pub fn text_of(&self, css: &str) -> Option<String> {
        let e = self.find_all(css).into_iter().next()?;
        match self.rt.block_on(self.element(&e).text()) {
            Ok(t) => Some(t),
            Err(e) if e.is_stale_element_reference() || e.is_no_such_element() => None,
            Err(e) => panic!("WebDriver text of {css}: {e}"),
        }
    }

    pub fn goto(&self, url: &str) {
        self.run(&format!("go to {url}"), self.client().goto(url));
    }

    pub fn url(&self) -> String {
        self.run("current url", self.client().current_url())
            .to_string()
    }

    pub fn page_text(&self) -> String {
        self.text(&self.find("body"))
    }

    /// Elements matching a CSS selector (possibly none).
    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.run(
            &format!("find {css}"),
            self.client().find_all(Locator::Css(css)),
        )
        .iter()
        .map(|e| e.element_id().to_string())
        .collect()
    }

    /// The first element matching `css`, waiting up to five seconds for it.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.click_element(&e);
    }

    /// Clicks an element found earlier.
    pub fn click_element(&self, element: &str) {
        self.run("click", self.element(element).click());
    }

    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.run(
            &format!("attribute {name}"),
            self.element(element).attr(name),
        )
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.element(&self.find(css));
        self.run(&format!("clear {css}"), e.clear());
        self.run(&format!("type into {css}"), e.send_keys(text));
    }

    pub fn text(&self, element: &str) -> String {
        self.run("text", self.element(element).text())
    }

    /// Runs a script in the page and returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.run("execute", self.client().execute(script, Vec::new()))
    }

    /// Writes a PNG screenshot of the current page.
    pub fn screenshot(&self, path: &Path) {
        let bytes = self.run("screenshot", self.client().screenshot());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
