//! Validation of repository names and tags, as the distribution spec defines them.
//!
//! A name is `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` and at most 255 characters;
//! a tag is `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. Both are checked by hand rather than with a regex engine.

/// The longest repository name accepted.
pub const MAX_NAME_LEN: usize = 255;

/// Is `name` a valid repository name?
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(is_valid_component)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or any number of `-`.
fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && is_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        match &component[sep_start..i] {
            "." | "_" | "__" => {}
            sep if sep.bytes().all(|b| b == b'-') => {}
            _ => return false,
        }
    }
}

/// Is `tag` a valid tag?
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= 128
        && (first.is_ascii_alphanumeric() || first == b'_')
        && rest
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g-h/i---j",
            "0/1/2",
            "conformance-x/y",
        ] {
            assert!(is_valid_name(good), "{good} rejected");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "a.-b", ".a", "a.", "a-", "../a",
            "a/../b", "a:b", "a b",
        ] {
            assert!(!is_valid_name(bad), "{bad} accepted");
        }
        assert!(is_valid_name(&"a".repeat(255)));
        assert!(!is_valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags() {
        for good in ["latest", "_x", "v1.2.3-rc_1", "A"] {
            assert!(is_valid_tag(good), "{good} rejected");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", "sha256:abc"] {
            assert!(!is_valid_tag(bad), "{bad} accepted");
        }
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
