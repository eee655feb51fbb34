//! [`SharedList`]: an immutable list shared by reference, serialized as the plain list.

use std::borrow::Borrow;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An immutable list shared by reference (`Arc`): copies cost a pointer, so thousands of objects
/// that hold an equal list can hold one allocation (hosts of one build list the same plugins;
/// workloads of one kind get the same link graph). Reads as a slice; build one from a `Vec` with
/// `.into()` or by collecting. Serialized, deserialized and described (JSON schema) exactly as a
/// `Vec<T>`, so it changes no published shape.
#[derive(Debug, Eq)]
pub struct SharedList<T>(Arc<[T]>);

impl<T> SharedList<T> {
    /// Whether both share one allocation (equal lists compare by pointer first).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// How many holders share this list.
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Whether the list is empty (for `skip_serializing_if`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// Derived `Clone`/`Default` would ask for `T: Clone`/`T: Default`, which sharing does not need.
impl<T> Clone for SharedList<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for SharedList<T> {
    fn default() -> Self {
        Self(Arc::from([]))
    }
}

impl<T: PartialEq> PartialEq for SharedList<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || self.0[..] == other.0[..]
    }
}

// By content, as `[T]` hashes (so a set of lists can be looked up by a slice).
impl<T: std::hash::Hash> std::hash::Hash for SharedList<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0[..].hash(state);
    }
}

impl<T> std::ops::Deref for SharedList<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> Borrow<[T]> for SharedList<T> {
    fn borrow(&self) -> &[T] {
        &self.0
    }
}

impl<T> From<Vec<T>> for SharedList<T> {
    fn from(list: Vec<T>) -> Self {
        Self(list.into())
    }
}

impl<T> FromIterator<T> for SharedList<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a, T> IntoIterator for &'a SharedList<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Serialize> Serialize for SharedList<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0[..].serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SharedList<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(Self::from)
    }
}

impl<T: JsonSchema> JsonSchema for SharedList<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        Vec::<T>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Vec::<T>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        Vec::<T>::inline_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_lists_read_write_and_describe_as_vecs() {
        let list: SharedList<String> = vec!["a".to_string(), "b".to_string()].into();
        let copy = list.clone();
        assert!(copy.ptr_eq(&list) && list.holders() == 2);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            serde_json::to_string(&vec!["a", "b"]).unwrap()
        );
        let back: SharedList<String> = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(back == list && !back.ptr_eq(&list));
        assert_ne!(back, SharedList::from(vec!["a".to_string()]));
        assert!(SharedList::<String>::default().is_empty());
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(SharedList<String>)).unwrap(),
            serde_json::to_value(schemars::schema_for!(Vec<String>)).unwrap()
        );
    }
}
