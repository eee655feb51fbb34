//! Reading Kubernetes-style manifests: JSON, multi-document YAML, and `kind: List` expansion.
//! Shared by the inventory file loader and `wasmgate check`.

use serde_json::Value;

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not valid YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
}

/// Parses every object in `text`: a JSON document, or a YAML stream of documents; `List`
/// objects (`kind: List` or any `*List` with `items`) are expanded; empty documents are skipped.
pub fn parse_objects(text: &str) -> Result<Vec<Value>, ManifestError> {
    let trimmed = text.trim_start();
    let docs: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text)? {
            Value::Array(items) => items,
            v => vec![v],
        }
    } else {
        serde_saphyr::from_str_multiple::<Value, _>(text)
            .map_err(|e| ManifestError::Yaml(e.to_string()))?
    };
    let mut out = Vec::new();
    for doc in docs {
        expand(doc, &mut out);
    }
    Ok(out)
}

fn expand(doc: Value, out: &mut Vec<Value>) {
    match doc {
        Value::Null => {}
        Value::Object(ref map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"))
                && map.get("items").is_some_and(Value::is_array) =>
        {
            if let Some(Value::Array(items)) = map.get("items") {
                for item in items {
                    expand(item.clone(), out);
                }
            }
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_and_lists() {
        let objs = parse_objects(
            "apiVersion: v1\nkind: List\nitems:\n- kind: Host\n  hostId: a\n- kind: Host\n  hostId: b\n---\n---\nkind: Host\nhostId: c\n",
        )
        .unwrap();
        let ids: Vec<_> = objs.iter().map(|o| o["hostId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn json_and_errors() {
        assert_eq!(parse_objects(r#"{"kind":"Host"}"#).unwrap().len(), 1);
        assert!(matches!(
            parse_objects("{nope"),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            parse_objects("a: [1,\n"),
            Err(ManifestError::Yaml(_))
        ));
    }
}
