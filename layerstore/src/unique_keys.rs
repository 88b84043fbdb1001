//! A check that a JSON document has no object with the same key twice.
//!
//! JSON parsers disagree on such documents (first wins, last wins, error), so a manifest with two `config` or two
//! `mediaType` members can mean one image to one reader and another image to the next: every manifest is checked
//! before it is parsed.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Fails, naming the key and where it is, when an object of `bytes` has a key twice (or `bytes` is not JSON).
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Unique>(bytes).map(|_| ())
}

/// Any JSON value, whose objects have been checked for repeated keys.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<Unique>()?;
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        assert!(check_unique_keys(br#"{"a":1,"b":[{"a":1},{"a":2}],"c":{"d":null}}"#).is_ok());
        let err = check_unique_keys(br#"{"config":{},"config":{}}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate key \"config\""),
            "{err}"
        );
        let err = check_unique_keys(br#"{"layers":[{"digest":"x","digest":"y"}]}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate key \"digest\""),
            "{err}"
        );
        // Escapes are compared decoded: "\u0061" is "a".
        assert!(check_unique_keys(br#"{"a":1,"\u0061":2}"#).is_err());
        assert!(check_unique_keys(b"[1,").is_err());
    }
}
