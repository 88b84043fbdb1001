//! Fuzzes the registry's YAML configuration parser: no panic on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = registry_server::Config::parse(&text);
});
