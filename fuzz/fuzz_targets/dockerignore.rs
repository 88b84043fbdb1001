//! Fuzzes `.dockerignore` parsing and matching: no panic, and matching a path while walking down the tree (reusing
//! the parent's results, as the context walk does) agrees with matching it on its own.
#![no_main]

use builder::dockerignore::{parse_ignore_file, MatchInfo, PatternMatcher};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (patterns, paths) = text.split_once("\n\n").unwrap_or((&text, "a/b/c\nx.txt\nsrc/main.rs"));
    let Ok(matcher) = PatternMatcher::new(&parse_ignore_file(patterns)) else {
        return;
    };
    for path in paths.lines().filter(|p| !p.is_empty() && !p.starts_with('/')) {
        let mut info = MatchInfo::default();
        let mut walked = false;
        let parts: Vec<&str> = path.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            continue;
        }
        for depth in 1..=parts.len() {
            (walked, info) = matcher.matches_using_parent_results(&parts[..depth].join("/"), &info);
        }
        assert_eq!(walked, matcher.matches_or_parent_matches(path), "path {path:?}");
    }
});
