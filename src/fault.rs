//! Fault injection for the reliability tests.
//!
//! Every place where cairn writes, syncs, renames or reads stored content first calls
//! [`check`] with the name of the site (`pack.write`, `index.flush`, `restore.rename`, …; the
//! list is in `docs/reliability.md`). In a build with the `fail` crate's `failpoints` feature —
//! which only the test build enables, through the dev-dependencies — the `FAILPOINTS`
//! environment variable can make a call fail with an I/O error, for example
//! `FAILPOINTS='pack.fsync=2*off->return'` fails the third fsync of a pack. In every other
//! build [`check`] does nothing and compiles away.

/// Fails with an injected I/O error (`EIO`) when the fail point `site` is configured to.
#[inline(always)]
pub fn check(site: &'static str) -> std::io::Result<()> {
    let _ = site;
    fail::fail_point!(site, |_| Err(injected(site)));
    Ok(())
}

#[allow(dead_code)] // used only when the failpoints feature is on
fn injected(site: &str) -> std::io::Error {
    let real = std::io::Error::from_raw_os_error(libc::EIO);
    std::io::Error::new(real.kind(), format!("{real} (injected at {site})"))
}

/// Sets fail points up from `FAILPOINTS` for the life of the returned guard (a no-op in
/// builds without fault injection).
pub fn setup() -> impl Drop {
    fail::FailScenario::setup()
}
