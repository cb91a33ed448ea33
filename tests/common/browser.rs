//! A real browser for the dashboard's tests: headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` over WebDriver), and what a test reads of a page.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::common::free_port;

/// chromedriver on a free port; killed when dropped.
pub struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: install Debian's chromium and chromium-driver (scripts/test does)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }

    pub async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("starting headless chromium through chromedriver")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn click_link(browser: &Client, text: &str) {
    browser
        .find(Locator::LinkText(text))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of the first element `css` selects.
pub async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The text of every cell of the table `id`, row by row (header excluded).
pub async fn table_rows(browser: &Client, id: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for row in browser
        .find_all(Locator::Css(&format!("#{id} tbody tr")))
        .await
        .unwrap()
    {
        let mut cells = Vec::new();
        for cell in row.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(cell.text().await.unwrap());
        }
        rows.push(cells);
    }
    rows
}

/// Where tests leave what a person looks at afterwards: `target/test-artifacts/`.
pub fn artifacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of what the browser shows as `target/test-artifacts/{name}`.
pub async fn save_screenshot(browser: &Client, name: &str) {
    let screenshot = browser.screenshot().await.unwrap();
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(name), &screenshot).unwrap();
}
