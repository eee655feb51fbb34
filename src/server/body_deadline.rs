//! `--request-body-timeout`: every request body must have arrived in full within the timeout of
//! its header. A total deadline, not an inactivity timeout (tower-http's `RequestBodyTimeout`
//! restarts its timer at every frame, so a body dribbled a byte at a time would never end);
//! kube-apiserver sends each body at once.
//!
//! The body is wrapped so that reading it past the deadline fails; whatever the handler then
//! answers (its extractor sees a broken body) is replaced by a `408` Status with
//! `Connection: close`, for every route alike (webhooks and the hosts API). hyper closes the
//! connection too, as the body was not read to its end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use super::routes::status_response;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body did not arrive in full within the timeout.
    #[error("the request body did not arrive within {0:?}")]
    Timeout(Duration),
    /// The connection failed while the body was read.
    #[error(transparent)]
    Body(#[from] axum::Error),
}

/// A request body that fails once its deadline has passed and no more of it is at hand.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        // What has arrived is passed on; only waiting for more is bounded.
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(BodyError::from))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.timed_out.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(BodyError::Timeout(this.timeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps every request body of `router` in the deadline `timeout`.
pub fn layer(router: Router, timeout: Duration) -> Router {
    router.layer(middleware::from_fn_with_state(timeout, enforce))
}

async fn enforce(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    // No body (GET, watches): nothing to wait for.
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let request = request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            timed_out: flag,
        })
    });
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !timed_out.load(Ordering::Acquire) {
        return response;
    }
    tracing::warn!(%method, %path, ?timeout, "closed a connection whose request body did not arrive in time");
    let mut response = status_response(
        StatusCode::REQUEST_TIMEOUT,
        "Timeout",
        BodyError::Timeout(timeout).to_string(),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn echo(body: Bytes) -> Bytes {
        body
    }

    fn app(timeout: Duration) -> Router {
        layer(Router::new().route("/", post(echo)), timeout)
    }

    /// A body stream: `chunks` sent `every` apart, then the end (or never, with `end: false`).
    fn dribble(chunks: usize, every: Duration, end: bool) -> Body {
        let stream = futures_util::stream::unfold(0usize, move |i| async move {
            if i == chunks {
                if !end {
                    std::future::pending::<()>().await;
                }
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), i + 1))
        });
        Body::from_stream(stream)
    }

    async fn call(timeout: Duration, body: Body) -> (StatusCode, Option<HeaderValue>, Bytes) {
        let request = Request::post("/").body(body).expect("request");
        let response = app(timeout).oneshot(request).await.expect("infallible");
        let status = response.status();
        let connection = response.headers().get(header::CONNECTION).cloned();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, connection, bytes)
    }

    // Real time (tokio's paused clock needs its test-util feature): generous margins.
    #[tokio::test]
    async fn a_body_in_time_passes() {
        let (status, connection, bytes) = call(
            Duration::from_secs(30),
            dribble(3, Duration::from_millis(10), true),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(connection, None);
        assert_eq!(&bytes[..], b"xxx");
    }

    #[tokio::test]
    async fn a_stalled_body_is_a_408_status() {
        let (status, connection, bytes) = call(
            Duration::from_millis(200),
            dribble(1, Duration::ZERO, false),
        )
        .await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(connection, Some(HeaderValue::from_static("close")));
        let status: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 408);
        assert_eq!(status["reason"], "Timeout");
        assert_eq!(
            status["message"],
            "the request body did not arrive within 200ms"
        );
    }

    /// The deadline is total: a body that keeps trickling past it is cut off all the same.
    #[tokio::test]
    async fn a_dribbled_body_is_cut_off_at_the_deadline() {
        let started = std::time::Instant::now();
        let (status, _, _) = call(
            Duration::from_millis(300),
            dribble(100, Duration::from_millis(100), true),
        )
        .await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        // Not after the whole 10 s of dribbling.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn no_body_no_deadline() {
        let request = Request::post("/").body(Body::empty()).expect("request");
        let response = app(Duration::from_millis(1))
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
