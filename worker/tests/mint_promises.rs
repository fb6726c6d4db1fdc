//! The worker binary checks the mint's `/v1/info` at its first answer: a mint that does not
//! advertise NUT-20 stops it with exit code 2 and one line naming the NUT; against the dev mint
//! as it is, it starts and stays up. PostgreSQL is unreachable in both: the mint decides.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openpleb_devkit::scenario::check::refuses_to_start_aside;
use openpleb_devkit::{DevMint, DevMintOptions};

/// The worker binary against `mint`, with no database to reach, its logs (level `log`, to
/// stdout) into `stdout`.
fn worker(mint: &str, wallets: &std::path::Path, log: &str, stdout: Stdio) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openpleb-worker"));
    openpleb_devkit::worker_env(&mut cmd, "postgres://127.0.0.1:1/none", mint, wallets)
        .env("RUST_LOG", log)
        .env("LOG_FORMAT", "json")
        .stdout(stdout)
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test]
async fn a_mint_without_nut20_stops_the_worker() {
    let mint = DevMint::start_with(DevMintOptions {
        without_nuts: vec![20],
        ..DevMintOptions::default()
    })
    .await
    .expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let stderr = refuses_to_start_aside(worker(&mint.url, dir.path(), "off", Stdio::null()))
        .await
        .expect("refused");
    let says = openpleb_devkit::mint::lacks_nut20(&mint.url);
    assert!(stderr.contains(&says), "{stderr}");
    mint.stop().await.expect("stop mint");
}

/// The positive control: the same start against the dev mint as it is.
#[tokio::test]
async fn the_worker_starts_against_a_mint_with_what_it_needs() {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("worker.log");
    let file = std::fs::File::create(&log).expect("log");
    let mut child = worker(&mint.url, dir.path(), "info", Stdio::from(file))
        .spawn()
        .expect("spawn openpleb-worker");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("the mint offers what this process relies on") {
            assert!(text.contains(r#""quote_websockets":true"#), "{text}");
            break;
        }
        let exited = child.try_wait().expect("try_wait");
        assert!(exited.is_none(), "the worker exited: {exited:?}\n{text}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no check of the mint: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let exited = child.try_wait().expect("try_wait");
    let _ = child.kill();
    let _ = child.wait();
    assert!(exited.is_none(), "the worker exited: {exited:?}");
    mint.stop().await.expect("stop mint");
}
