//! Fuzzes the whole front end: parse, raw dump, typing, stages, planning and stage expansion.
#![no_main]

use lade_dockerfile::{BuildOptions, Dockerfile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let Ok(dockerfile) = Dockerfile::parse(&source, "Dockerfile") else {
        return;
    };
    let _ = dockerfile.raw_json();
    let Ok(stages) = dockerfile.stages() else {
        return;
    };
    let options = BuildOptions {
        platform_args: vec![
            ("TARGETPLATFORM".to_string(), "linux/amd64".to_string()),
            ("BUILDARCH".to_string(), "amd64".to_string()),
        ],
        ..BuildOptions::default()
    };
    if let Ok(plan) = stages.plan(&options) {
        for index in 0..plan.stages.len() {
            let _ = plan.expand_stage(index, &[]);
        }
    }
});
