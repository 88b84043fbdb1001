//! Decoding the JSON (exec) form of instruction arguments exactly as BuildKit does.
//!
//! BuildKit hands the arguments to Go's `json.Decoder`, which reads the *first* JSON value and ignores whatever
//! follows it. A syntactically invalid value means "not JSON form" (the arguments are then taken as shell form);
//! a valid array holding anything but strings is an error. Strings are decoded like Go: `\uXXXX` escapes with
//! surrogate pairs, and a lone surrogate becomes U+FFFD.

/// What the arguments of an instruction are, seen as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonArray {
    /// A valid JSON array of strings: exec form.
    Strings(Vec<String>),
    /// A valid JSON array holding something other than a string: BuildKit rejects the instruction.
    NotAllStrings,
    /// Not a JSON array at all (or invalid JSON): shell form.
    NotJson,
}

/// Go's `encoding/json` nesting limit.
const MAX_DEPTH: usize = 10_000;

/// Decodes `text` (after leading whitespace) as a JSON array, ignoring anything after the array's closing bracket.
pub fn decode_json_array(text: &str) -> JsonArray {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return JsonArray::NotJson;
    }
    let mut reader = Reader {
        bytes: text.as_bytes(),
        pos: 1,
    };
    let mut strings = Vec::new();
    let mut all_strings = true;
    reader.skip_whitespace();
    if reader.peek() == Some(b']') {
        return JsonArray::Strings(strings);
    }
    loop {
        reader.skip_whitespace();
        if reader.peek() == Some(b'"') {
            match reader.string() {
                Some(value) => strings.push(value),
                None => return JsonArray::NotJson,
            }
        } else {
            all_strings = false;
            if reader.skip_value().is_none() {
                return JsonArray::NotJson;
            }
        }
        reader.skip_whitespace();
        match reader.next() {
            Some(b',') => continue,
            Some(b']') => break,
            _ => return JsonArray::NotJson,
        }
    }
    if all_strings {
        JsonArray::Strings(strings)
    } else {
        JsonArray::NotAllStrings
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(text, 16).ok()
    }

    /// Decodes a string starting at its opening quote.
    fn string(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let byte = self.next()?;
            match byte {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                0..=0x1f => return None,
                b'\\' => {
                    let escaped = self.next()?;
                    let simple = match escaped {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let decoded = self.unicode_escape()?;
                            let mut buffer = [0u8; 4];
                            out.extend_from_slice(decoded.encode_utf8(&mut buffer).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    out.push(simple);
                }
                _ => out.push(byte),
            }
        }
    }

    /// Decodes the code point of a `\u` escape (the `\u` already read), combining surrogate pairs like Go.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xE000).contains(&first) {
            return Some(char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        if (0xD800..0xDC00).contains(&first) && self.bytes[self.pos..].starts_with(b"\\u") {
            let saved = self.pos;
            self.pos += 2;
            if let Some(second) = self.hex4() {
                if (0xDC00..0xE000).contains(&second) {
                    let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    return char::from_u32(combined);
                }
            }
            self.pos = saved;
        }
        Some(char::REPLACEMENT_CHARACTER)
    }

    /// Skips any JSON value (validating it), without recursion.
    fn skip_value(&mut self) -> Option<()> {
        // Each entry is the closing bracket expected for an open container.
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'[' => {
                    self.pos += 1;
                    open.push(b']');
                    if open.len() > MAX_DEPTH {
                        return None;
                    }
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        open.pop();
                    } else {
                        continue;
                    }
                }
                b'{' => {
                    self.pos += 1;
                    open.push(b'}');
                    if open.len() > MAX_DEPTH {
                        return None;
                    }
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        open.pop();
                    } else {
                        self.object_key()?;
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => self.number()?,
            }
            // A value is complete: close containers or move to the next element.
            loop {
                let Some(&closing) = open.last() else {
                    return Some(());
                };
                self.skip_whitespace();
                match self.next()? {
                    b',' => {
                        if closing == b'}' {
                            self.skip_whitespace();
                            self.object_key()?;
                        }
                        break;
                    }
                    byte if byte == closing => {
                        open.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Reads `"key" :` inside an object.
    fn object_key(&mut self) -> Option<()> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.string()?;
        self.skip_whitespace();
        (self.next()? == b':').then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> JsonArray {
        JsonArray::Strings(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn decodes_string_arrays_and_ignores_trailing_text() {
        assert_eq!(decode_json_array(r#"["a", "b"]"#), strings(&["a", "b"]));
        assert_eq!(decode_json_array(r#"  [ ] "#), strings(&[]));
        assert_eq!(decode_json_array(r#"["a"] trailing"#), strings(&["a"]));
        assert_eq!(
            decode_json_array(r#"["\u00e9\n\"\/", "\ud83d\ude00", "\ud800x"]"#),
            strings(&["é\n\"/", "😀", "\u{fffd}x"])
        );
    }

    #[test]
    fn non_string_elements_are_reported() {
        assert_eq!(decode_json_array("[1]"), JsonArray::NotAllStrings);
        assert_eq!(
            decode_json_array(r#"["a", ["b"]]"#),
            JsonArray::NotAllStrings
        );
        assert_eq!(
            decode_json_array(r#"["a", {"k": [1, null, true]}, -1.5e3]"#),
            JsonArray::NotAllStrings
        );
    }

    #[test]
    fn invalid_json_is_shell_form() {
        for text in [
            "['a']",
            r#"["a""#,
            r#"["a",]"#,
            r#"["a" "b"]"#,
            "[01]",
            r#"["\x"]"#,
            "[\"a\tb\"]",
            "echo [1]",
            r#"["a", {"k" 1}]"#,
        ] {
            assert_eq!(decode_json_array(text), JsonArray::NotJson, "{text}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("[{}{}]", "[".repeat(50_000), "]".repeat(50_000));
        assert_eq!(decode_json_array(&deep), JsonArray::NotJson);
    }
}
