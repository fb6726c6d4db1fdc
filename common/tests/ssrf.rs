//! A notification goes only where a public push service or webhook is: a URL naming a loopback,
//! private or link-local address, or a name resolving to one, is refused before anything is
//! sent. The test runs in an empty network namespace of its own (loopback down, its own
//! `/etc/hosts`), so a sender that failed to refuse would still reach nothing.

use std::process::Command;
use std::time::Duration;

use openpleb_common::notify::send::{send, Policy, SendError};

const TEST: &str = "private_addresses_and_names_resolving_to_them_are_refused";
const INSIDE: &str = "OPENPLEB_SSRF_NETNS";

fn checks() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policy = Policy {
        allow_private: false,
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
    };
    for url in [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://internal.test/hook",
        "https://metadata.test/hook",
        "http://8.8.8.8/plain-http",
    ] {
        let req = http::Request::post(url)
            .body(b"{}".to_vec())
            .expect("request");
        let got = rt.block_on(send(req, &policy));
        assert!(
            matches!(got, Err(SendError::Refused(_))),
            "{url} was not refused: {got:?}"
        );
    }
}

#[test]
fn private_addresses_and_names_resolving_to_them_are_refused() {
    if std::env::var_os(INSIDE).is_some() {
        checks();
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n10.1.2.3 internal.test\n169.254.169.254 metadata.test\n",
    )
    .expect("hosts");
    let exe = std::env::current_exe().expect("exe");
    let script = format!(
        "mount --bind '{}' /etc/hosts && exec '{}' --exact {TEST} --nocapture",
        hosts.display(),
        exe.display()
    );
    let ran = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-c", &script])
        .env(INSIDE, "1")
        .status();
    // libtest exits 101 when a test fails.
    const FAILED: i32 = 101;
    match ran.map(|s| s.code()) {
        Ok(Some(0)) => {}
        Ok(Some(FAILED)) => panic!("the checks failed inside the network namespace"),
        // No namespace here (not root, unshare or mount refused): the same checks in this
        // process; the sender refuses before it connects either way.
        _ => {
            eprintln!("no network namespace available; checking in this process");
            std::env::set_var(INSIDE, "1");
            checks();
        }
    }
}
