//! List responses written a chunk at a time (issue 14): the list's envelope, then its items,
//! encoded only as the connection takes them. A list of 100,000 hosts never holds its whole body,
//! a copy of each host or a JSON tree of each row in memory at once (kube-apiserver streams its
//! JSON lists the same way), so a list costs a chunk of memory, not the size of the inventory.

use std::ops::Range;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use serde::Serialize;

use super::status::{encode_bytes, EncodeError};

/// A list's `metadata`: its resourceVersion, and the `continue` token and remaining count of a
/// page that is not the last.
pub(crate) fn list_meta(
    resource_version: u64,
    continue_token: Option<&str>,
    remaining: Option<u64>,
) -> serde_json::Value {
    let mut metadata = serde_json::json!({ "resourceVersion": resource_version.to_string() });
    if let Some(c) = continue_token {
        metadata["continue"] = c.into();
    }
    if let Some(r) = remaining {
        metadata["remainingItemCount"] = r.into();
    }
    metadata
}

/// Items are encoded until a chunk holds this much (then it is sent).
const CHUNK_BYTES: usize = 64 * 1024;

/// Encodes one item of a list into the buffer (appends its JSON).
pub(crate) trait ItemEncoder<T>: Send + 'static {
    /// Appends `item`'s JSON to `buf`.
    fn encode(&mut self, item: &T, buf: &mut Vec<u8>) -> Result<(), EncodeError>;
}

impl<T, F> ItemEncoder<T> for F
where
    F: FnMut(&T, &mut Vec<u8>) -> Result<(), EncodeError> + Send + 'static,
{
    fn encode(&mut self, item: &T, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        self(item, buf)
    }
}

/// A `200 OK` JSON list: `head` (an object: the list without its items) with `field` added
/// last, holding `items[range]` as `encoder` writes them. Fails only when `head` does not encode
/// as a JSON object; an item that fails to encode later ends the body early (and is logged),
/// which the client sees as a truncated response.
pub(crate) fn respond<T, H, E>(
    head: &H,
    field: &str,
    items: Arc<Vec<T>>,
    range: Range<usize>,
    encoder: E,
) -> Result<Response, EncodeError>
where
    T: Send + Sync + 'static,
    H: Serialize + ?Sized,
    E: ItemEncoder<T>,
{
    let mut first = Vec::with_capacity(CHUNK_BYTES + 4096);
    first.extend(open_object(
        encode_bytes(|| "the list".into(), head)?,
        field,
    )?);
    let end = range.end.min(items.len());
    let start = range.start.min(end);
    let chunks = Chunks {
        items,
        next: start,
        end,
        start,
        encoder,
        first: Some(first),
        done: false,
    };
    let mut resp = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// `{...}` as `{...,"field":[` (or `{"field":[` for `{}`).
fn open_object(mut head: Vec<u8>, field: &str) -> Result<Vec<u8>, EncodeError> {
    if head.first() != Some(&b'{') || head.last() != Some(&b'}') {
        return Err(EncodeError {
            what: "the list".into(),
            source: <serde_json::Error as serde::ser::Error>::custom(
                "a list's envelope must be a JSON object",
            ),
        });
    }
    head.pop();
    if head.len() > 1 {
        head.push(b',');
    }
    head.extend(encode_bytes(|| "the list".into(), field)?);
    head.extend_from_slice(b":[");
    Ok(head)
}

/// The body's chunks: the envelope with the first items, then about [`CHUNK_BYTES`] of items
/// each, the last one closing the list.
struct Chunks<T, E> {
    items: Arc<Vec<T>>,
    start: usize,
    next: usize,
    end: usize,
    encoder: E,
    first: Option<Vec<u8>>,
    done: bool,
}

impl<T, E: ItemEncoder<T>> Iterator for Chunks<T, E> {
    type Item = Result<Bytes, EncodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = self
            .first
            .take()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES + 4096));
        while self.next < self.end && buf.len() < CHUNK_BYTES {
            let Some(item) = self.items.get(self.next) else {
                break;
            };
            if self.next > self.start {
                buf.push(b',');
            }
            if let Err(e) = self.encoder.encode(item, &mut buf) {
                tracing::error!(error = %e, "a list response could not be encoded; it ends here");
                self.done = true;
                return Some(Err(e));
            }
            self.next += 1;
        }
        if self.next >= self.end {
            buf.extend_from_slice(b"]}");
            self.done = true;
        }
        Some(Ok(Bytes::from(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::{json, Value};

    async fn body(resp: Response) -> (usize, Value) {
        let mut body = resp.into_body();
        let (mut frames, mut bytes) = (0, Vec::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("frame");
            if let Some(data) = frame.data_ref() {
                frames += 1;
                bytes.extend_from_slice(data);
            }
        }
        (frames, serde_json::from_slice(&bytes).expect("valid JSON"))
    }

    fn text(n: &u32, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_bytes(|| "item".into(), &json!({"n": n, "pad": "x".repeat(1000)}))
            .map(|b| buf.extend(b))
    }

    #[tokio::test]
    async fn a_list_is_its_envelope_and_its_items_in_chunks() {
        let items: Arc<Vec<u32>> = Arc::new((0..300).collect());
        let head = json!({"kind": "ThingList", "metadata": {"resourceVersion": "7"}});
        let resp = respond(&head, "items", items.clone(), 10..210, text).unwrap();
        let (frames, v) = body(resp).await;
        assert_eq!(v["kind"], "ThingList");
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        let got: Vec<u64> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["n"].as_u64().unwrap())
            .collect();
        assert_eq!(got, (10..210).collect::<Vec<u64>>());
        // 200 items of about 1 KB: several chunks, not one body.
        assert!(frames >= 3, "{frames} frames");

        // Empty ranges and envelopes.
        let (_, v) = body(respond(&json!({}), "rows", items.clone(), 5..5, text).unwrap()).await;
        assert_eq!(v, json!({"rows": []}));
        let (_, v) = body(respond(&head, "items", items.clone(), 290..400, text).unwrap()).await;
        assert_eq!(v["items"].as_array().unwrap().len(), 10);
        assert!(respond(&json!([1]), "items", items, 0..1, text).is_err());
    }

    #[tokio::test]
    async fn an_item_that_fails_to_encode_ends_the_body_with_an_error() {
        let items: Arc<Vec<u32>> = Arc::new((0..500).collect());
        let failing = |n: &u32, buf: &mut Vec<u8>| {
            if *n == 400 {
                return Err(EncodeError {
                    what: "item 400".into(),
                    source: <serde_json::Error as serde::ser::Error>::custom("broken"),
                });
            }
            text(n, buf)
        };
        let resp = respond(&json!({}), "items", items, 0..500, failing).unwrap();
        let mut body = resp.into_body();
        let mut saw_error = false;
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                saw_error = true;
                break;
            }
        }
        assert!(
            saw_error,
            "the body must end in an error, not a valid short list"
        );
    }
}
