//! The budget report's picture, rendered by a real browser: headless
//! Chromium takes a screenshot of the SVG, and the screenshot must show the
//! picture (several colours, a fair share of it drawn, the outcome colours
//! and the deadline's red), not a blank or broken page.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it when it is missing);
//! without it the test says why and passes, as it cannot run. `CHROMIUM`
//! names another binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant as StdInstant};

use tokio::time;
use tokio_ctx::{BudgetReport, Context};

const MS: Duration = Duration::from_millis(1);

/// A request with a stage of every common ending: completed, clipped,
/// its own deadline, the request's deadline, refused, and lost a race.
async fn report() -> BudgetReport {
    let (request, _) = Context::background()
        .named("request")
        .child_with_timeout(Duration::from_secs(1));
    let (request, report) = request.with_budget_report();
    request
        .named("connect")
        .with_timeout(300 * MS, |_ctx| time::sleep(100 * MS))
        .await
        .unwrap();
    let _ = request
        .named("first chunk")
        .with_timeout(100 * MS, |_ctx| time::sleep(Duration::from_secs(1)))
        .await;
    let _ = request
        .named("mirrors")
        .race([30u32, 80].map(|ms| move |_ctx| time::sleep(ms * MS)))
        .await;
    let _ = request
        .named("report query")
        .min_budget(Duration::from_secs(2))
        .run(async {})
        .await;
    let _ = request
        .named("the rest")
        .with_timeout(Duration::from_secs(5), |_ctx| {
            time::sleep(Duration::from_secs(5))
        })
        .await;
    report
}

/// The pixel size the picture declares.
fn size(svg: &str) -> (u32, u32) {
    let attr = |name: &str| -> u32 {
        let start = svg.find(&format!(" {name}=\"")).expect("a size attribute") + name.len() + 3;
        let end = start + svg[start..].find('"').unwrap();
        svg[start..end].parse::<f64>().unwrap().ceil() as u32
    };
    (attr("width"), attr("height"))
}

/// Waits for `child` at most `limit`, killing it after that.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Result<(), String> {
    let start = StdInstant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("chromium exited with {status}")),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("chromium took more than {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Takes a screenshot of `page` at `size` into `png`; `None` when Chromium
/// is not there.
fn screenshot(
    page: &Path,
    size: (u32, u32),
    png: &Path,
    profile: &Path,
) -> Option<Result<(), String>> {
    let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
    let child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => Some(wait_bounded(&mut child, Duration::from_secs(60))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// A fresh directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("tokio-ctx-picture-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let value = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(value >> 16) as u8, (value >> 8) as u8, value as u8]
}

#[test]
fn chromium_draws_the_picture() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let svg = runtime.block_on(report()).svg();
    let size = size(&svg);

    let dir = TempDir::new();
    let page = dir.0.join("budget.svg");
    let png_path = dir.0.join("budget.png");
    std::fs::write(&page, &svg).unwrap();
    let profile = dir.0.join("profile");
    match screenshot(&page, size, &png_path, &profile) {
        None => {
            println!(
                "SKIPPED: no `chromium` on PATH (install Debian's `chromium`, or set CHROMIUM)"
            );
            return;
        }
        Some(Err(e)) => panic!("chromium could not take the screenshot: {e}"),
        Some(Ok(())) => {}
    }

    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), size, "the window's size");
    let channels = frame.color_type.samples();
    assert!(channels >= 3, "{:?}", frame.color_type);
    let pixels: Vec<[u8; 3]> = pixels[..frame.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();

    let mut colours = pixels.clone();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 10, "{} colours: blank", colours.len());
    let background = [255, 255, 255];
    let drawn = pixels.iter().filter(|p| **p != background).count();
    let share = drawn as f64 / pixels.len() as f64;
    assert!(
        share > 0.03,
        "only {:.1}% of the picture is drawn",
        share * 100.0
    );
    assert!(
        share < 0.9,
        "{:.1}% is not background: the page is not the picture",
        share * 100.0
    );

    // The solid bars keep their exact colour inside; the deadline's line is
    // two pixels wide.
    for (what, colour) in [
        ("a completed stage", "#2e8b57"),
        ("a stage past its own deadline", "#e08a1e"),
        ("a stage cut by the request's deadline", "#c8102e"),
        ("a lost race", "#8a97a6"),
        ("a refused stage", "#4a4a4a"),
    ] {
        let count = pixels.iter().filter(|p| **p == rgb(colour)).count();
        assert!(count > 20, "{what} ({colour}) is not drawn: {count} pixels");
    }
}
