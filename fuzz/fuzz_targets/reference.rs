//! Fuzzes image reference parsing: no panic, and a parsed reference prints to a string that parses back to it.
#![no_main]

use layerstore::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = text.parse::<Reference>() {
        let printed = reference.to_string();
        let again: Reference = printed.parse().expect("a printed reference parses");
        assert_eq!(again, reference, "{text:?} printed as {printed:?}");
    }
});
