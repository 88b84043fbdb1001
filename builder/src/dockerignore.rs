//! `.dockerignore` semantics, ported from moby/patternmatcher and moby/patternmatcher/ignorefile: Go
//! `filepath.Match` patterns plus `**`, `!` exceptions evaluated in order, a path excluded when it or one of its
//! parent directories matches. Also used for `COPY --exclude`.

use regex::Regex;

use crate::glob;

/// Why a pattern list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `!` with no pattern after it.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// A pattern that does not compile.
    #[error(transparent)]
    Bad(#[from] glob::BadPattern),
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// `dir/**`: the cleaned pattern without its trailing `**`.
    Prefix(String),
    /// `**/name`: the pattern without its leading `**`.
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

/// Which patterns a directory matched, so that its children need not re-check them.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns; later ones override earlier ones, `!` ones re-include.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

impl PatternMatcher {
    /// Compiles patterns: whitespace trimmed, empty ones skipped, each cleaned like Go's `filepath.Clean`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut compiled = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err(PatternError::LoneExclamation);
                }
                p.remove(0);
            }
            glob::matches(&p, ".")?;
            let kind = compile(&p).ok_or_else(|| glob::BadPattern(p.clone()))?;
            compiled.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(PatternMatcher { patterns: compiled })
    }

    /// Whether there are any `!` patterns (then an excluded directory may still have included children).
    pub fn exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `file` (slash-separated, relative) is matched, by itself or through a parent directory.
    pub fn matches_or_parent_matches(&self, file: &str) -> bool {
        self.matches_using_parent_results(file, &MatchInfo::default())
            .0
    }

    /// Like [`Self::matches_or_parent_matches`], reusing the result of the parent directory when walking a tree
    /// (pass the default `MatchInfo` for a top-level entry).
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let have_parent =
            parent.parent_matched.len() == self.patterns.len() && !self.patterns.is_empty();
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = have_parent && parent.parent_matched[i];
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(file);
                if !hit && !have_parent {
                    if let Some((parent_path, _)) = file.rsplit_once('/') {
                        let dirs: Vec<&str> = parent_path.split('/').collect();
                        hit = (1..=dirs.len()).any(|n| pattern.matches(&dirs[..n].join("/")));
                    }
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether `file` itself matches, without looking at its parents.
    #[cfg(test)]
    fn matches_exact(&self, file: &str) -> bool {
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches(file) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// Translates a cleaned pattern as patternmatcher's `compile` does; `None` when the regex is invalid.
fn compile(pattern: &str) -> Option<Kind> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut detected = Detected::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let first = i == 0;
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        re.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    i += 1;
                    re.push('\\');
                    re.push(next);
                    detected = Detected::Regex;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => {
                re.push(ch);
                detected = Detected::Regex;
            }
            _ => re.push(ch),
        }
    }
    Some(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).ok()?)
        }
    })
}

/// Go's `path.Clean`: the shortest equivalent slash path (`.` for empty).
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The patterns of a `.dockerignore` file, as moby's `ignorefile.ReadAll`: a UTF-8 BOM dropped, `#` comment lines
/// and blank lines skipped, each pattern trimmed and cleaned, a leading `/` removed, `!` kept in front.
pub fn parse_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        patterns.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(file: &str, patterns: &[&str]) -> Result<bool, PatternError> {
        let pm = PatternMatcher::new(patterns)?;
        let file = clean(file);
        Ok(file != "." && pm.matches_or_parent_matches(&file))
    }

    #[test]
    fn single_cases_from_patternmatcher() {
        assert!(matches("fileutils.go", &["*"]).unwrap());
        assert!(matches("fileutils.go", &["*.go"]).unwrap());
        assert!(matches("fileutils.go", &["!fileutils.go", "*.go"]).unwrap());
        assert!(!matches("docs/README.md", &["docs", "!docs/README.md"]).unwrap());
        assert!(!matches("docs/README.md", &["docs/", "!docs/README.md"]).unwrap());
        assert!(!matches("docs/README.md", &["docs/*", "!docs/README.md"]).unwrap());
        assert!(!matches("fileutils.go", &["*.go", "!fileutils.go"]).unwrap());
        assert!(!matches(".", &["*.go"]).unwrap());
        assert_eq!(
            matches("fileutils.go", &["!"]),
            Err(PatternError::LoneExclamation)
        );
        assert!(!matches("/any/path/there", &[]).unwrap());
        assert!(matches("/any/path/there", &["["]).is_err());
        // Valid for filepath.Match, but not a valid regex: refused when compiled (moby fails at match time).
        assert!(PatternMatcher::new(&["[Local-Only]/"]).is_err());
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Want {
        Fail,
        Exact,
        Inexact,
    }
    use Want::*;

    const TESTS: &[(&str, &str, Want)] = &[
        ("**", "file", Exact),
        ("**", "file/", Exact),
        ("**/", "file", Exact),
        ("**/", "file/", Exact),
        ("**", "/", Exact),
        ("**/", "/", Exact),
        ("**", "dir/file", Exact),
        ("**/", "dir/file", Exact),
        ("**", "dir/file/", Exact),
        ("**/", "dir/file/", Exact),
        ("**/**", "dir/file", Exact),
        ("**/**", "dir/file/", Exact),
        ("dir/**", "dir/file", Exact),
        ("dir/**", "dir/file/", Exact),
        ("dir/**", "dir/dir2/file", Exact),
        ("dir/**", "dir/dir2/file/", Exact),
        ("**/dir", "dir", Exact),
        ("**/dir", "dir/file", Inexact),
        ("**/dir2/*", "dir/dir2/file", Exact),
        ("**/dir2/*", "dir/dir2/file/", Inexact),
        ("**/dir2/**", "dir/dir2/dir3/file", Exact),
        ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
        ("**file", "file", Exact),
        ("**file", "dir/file", Exact),
        ("**/file", "dir/file", Exact),
        ("**file", "dir/dir/file", Exact),
        ("**/file", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file.txt", Exact),
        ("**/file*txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt*", "dir/dir/file.txt", Exact),
        ("**/**/*.txt", "dir/dir/file.txt", Exact),
        ("**/**/*.txt2", "dir/dir/file.txt", Fail),
        ("**/*.txt", "file.txt", Exact),
        ("**/**/*.txt", "file.txt", Exact),
        ("a**/*.txt", "a/file.txt", Exact),
        ("a**/*.txt", "a/dir/file.txt", Exact),
        ("a**/*.txt", "a/dir/dir/file.txt", Exact),
        ("a/*.txt", "a/dir/file.txt", Fail),
        ("a/*.txt", "a/file.txt", Exact),
        ("a/*.txt**", "a/file.txt", Exact),
        ("a[b-d]e", "ae", Fail),
        ("a[b-d]e", "ace", Exact),
        ("a[b-d]e", "aae", Fail),
        ("a[^b-d]e", "aze", Exact),
        (".*", ".foo", Exact),
        (".*", "foo", Fail),
        ("abc.def", "abcdef", Fail),
        ("abc.def", "abc.def", Exact),
        ("abc.def", "abcZdef", Fail),
        ("abc?def", "abcZdef", Exact),
        ("abc?def", "abcdef", Fail),
        ("**/foo/bar", "foo/bar", Exact),
        ("**/foo/bar", "dir/foo/bar", Exact),
        ("**/foo/bar", "dir/dir2/foo/bar", Exact),
        ("abc/**", "abc", Fail),
        ("abc/**", "abc/def", Exact),
        ("abc/**", "abc/def/ghi", Exact),
        ("**/.foo", ".foo", Exact),
        ("**/.foo", "bar.foo", Fail),
        ("a(b)c/def", "a(b)c/def", Exact),
        ("a(b)c/def", "a(b)c/xyz", Fail),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
        ),
        ("a\\\\", "a\\", Exact),
        ("a\\*b", "a*b", Exact),
    ];

    const MULTI: &[(&[&str], &str, Want)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", Fail),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            Exact,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Fail,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Fail,
        ),
    ];

    /// Walks the parents of `text` first, as a tree walk does.
    fn using_parent_results(pm: &PatternMatcher, text: &str) -> bool {
        let mut info = MatchInfo::default();
        if let Some((parent, _)) = text.rsplit_once('/') {
            let dirs: Vec<&str> = parent.split('/').collect();
            for n in 1..=dirs.len() {
                info = pm
                    .matches_using_parent_results(&dirs[..n].join("/"), &info)
                    .1;
            }
        }
        pm.matches_using_parent_results(text, &info).0
    }

    #[test]
    fn match_table_from_patternmatcher() {
        for &(pattern, text, want) in TESTS {
            let pm = PatternMatcher::new(&[pattern]).unwrap();
            let desc = format!("pattern={pattern:?} text={text:?}");
            assert_eq!(pm.matches_exact(text), want == Exact, "exact {desc}");
            assert_eq!(
                pm.matches_or_parent_matches(text),
                want != Fail,
                "or-parent {desc}"
            );
            assert_eq!(
                using_parent_results(&pm, text),
                want != Fail,
                "parent results {desc}"
            );
            assert_eq!(
                pm.matches_using_parent_results(text, &MatchInfo::default())
                    .0,
                want != Fail,
                "no context {desc}"
            );
        }
        for &(patterns, text, want) in MULTI {
            let pm = PatternMatcher::new(patterns).unwrap();
            let desc = format!("patterns={patterns:?} text={text:?}");
            assert_eq!(
                pm.matches_or_parent_matches(text),
                want != Fail,
                "or-parent {desc}"
            );
            assert_eq!(
                using_parent_results(&pm, text),
                want != Fail,
                "parent results {desc}"
            );
        }
    }

    #[test]
    fn go_match_table_through_the_matcher() {
        // patternmatcher's TestMatch: Go's filepath.Match cases through `Matches` (parent dirs count).
        let cases: &[(&str, &str, bool, bool)] = &[
            ("abc", "abc", true, false),
            ("*", "abc", true, false),
            ("a*", "ab/c", true, false),
            ("a*/b", "a/c/b", false, false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
            ("ab[^e-g]", "abc", true, false),
            ("a\\*b", "ab", false, false),
            ("a?b", "a☺b", true, false),
            ("a???b", "a☺b", false, false),
            ("[a-ζ]*", "α", true, false),
            ("*[a-ζ]", "A", false, false),
            ("a?b", "a/b", false, false),
            ("[\\]a]", "]", true, false),
            ("[x\\-]", "z", false, false),
            ("[]a]", "]", false, true),
            ("[-]", "-", false, true),
            ("\\", "a", false, true),
            ("[a-b-c]", "a", false, true),
            ("[^bc", "a", false, true),
            ("a[", "ab", false, true),
            ("*x", "xxx", true, false),
        ];
        for &(pattern, name, want, bad) in cases {
            let got = matches(name, &[pattern]);
            if bad {
                assert!(got.is_err(), "{pattern:?} {name:?}: {got:?}");
            } else {
                assert_eq!(got, Ok(want), "{pattern:?} {name:?}");
            }
        }
    }

    #[test]
    fn compile_kinds() {
        let regex = |p: &str| match compile(&clean(p)).unwrap() {
            Kind::Regex(re) => re.as_str().to_string(),
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(regex("*"), "^[^/]*$");
        assert_eq!(regex("file*"), "^file[^/]*$");
        assert_eq!(regex("a*/b"), "^a[^/]*/b$");
        assert_eq!(regex("**/**"), "^(.*/)?.*$");
        assert_eq!(regex("**/dir2/*"), "^(.*/)?dir2/[^/]*$");
        assert_eq!(regex("**/dir2/**"), "^(.*/)?dir2/.*$");
        assert_eq!(regex("**/**/*.txt"), r"^(.*/)?(.*/)?[^/]*\.txt$");
        assert_eq!(regex(".*"), r"^\.[^/]*$");
        assert_eq!(regex("abc?def"), "^abc[^/]def$");
        for p in ["**", "**/dir", "**file", "**/foo/bar"] {
            assert!(matches!(compile(&clean(p)), Some(Kind::Suffix(_))), "{p}");
        }
        assert!(matches!(compile("dir/**"), Some(Kind::Prefix(_))));
        for p in ["abc.def", "a(b)c/def", "a.|)$(}+{bc"] {
            assert!(matches!(compile(p), Some(Kind::Exact)), "{p}");
        }
        let pm = PatternMatcher::new(&["docs", "  !docs/README.md  ", ""]).unwrap();
        assert_eq!(pm.patterns.len(), 2);
        assert!(pm.exclusions());
    }

    #[test]
    fn ignore_files_parse_like_moby() {
        let text = "\u{feff}# comment\n\n  /node_modules/  \n!  /keep.txt\n./build//out\n!\n/\n";
        assert_eq!(
            parse_ignore_file(text),
            ["node_modules", "!keep.txt", "build/out", "!", "/"]
        );
        assert_eq!(clean("a/../../b/./c/"), "../b/c");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean(""), ".");
    }
}
