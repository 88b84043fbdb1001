//! Build information for `lade version`: the git commit, the build date and the compiler, found without network
//! access (`git` and `$RUSTC` when present; `unknown` otherwise). `LADE_GIT_COMMIT` overrides the commit (for builds
//! from a source tarball) and `SOURCE_DATE_EPOCH` the date, for reproducible builds.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (Howard Hinnant's days-to-civil algorithm).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rest = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn main() {
    println!("cargo:rerun-if-env-changed=LADE_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit (HEAD moving, or the branch it names) reruns this script.
    for path in ["HEAD", "packed-refs"] {
        if let Some(file) = output("git", &["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    if let Some(reference) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(file) = output("git", &["rev-parse", "--git-path", &reference]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    let commit = std::env::var("LADE_GIT_COMMIT")
        .ok()
        .or_else(|| output("git", &["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LADE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=LADE_BUILD_DATE={}", rfc3339(epoch));
    println!("cargo:rustc-env=LADE_RUSTC_VERSION={rustc}");
    println!(
        "cargo:rustc-env=LADE_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
}
