//! Response bodies: nothing, bytes in memory (manifests, JSON), or a range of an open blob
//! file streamed in chunks. A file that turns out shorter than promised ends the body with
//! an error, so the connection is cut and the client never takes a short blob for a whole
//! one.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

/// How much of a blob is read per chunk.
const CHUNK: u64 = 256 * 1024;

/// A response body.
#[derive(Debug)]
pub(crate) enum Body {
    /// No bytes.
    Empty,
    /// Bytes in memory (taken on first poll).
    Full(Option<Bytes>),
    /// `remaining` bytes of an open file, from its current position.
    File { file: tokio::fs::File, remaining: u64 },
}

impl Body {
    /// A body of bytes.
    pub(crate) fn bytes(b: impl Into<Bytes>) -> Body {
        Body::Full(Some(b.into()))
    }

    /// `len` bytes of `file` from its current position.
    pub(crate) fn file(file: cap_std::fs::File, len: u64) -> Body {
        Body::File { file: tokio::fs::File::from_std(file.into_std()), remaining: len }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::File { file, remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let mut buf = BytesMut::zeroed((*remaining).min(CHUNK) as usize);
                let mut rb = ReadBuf::new(&mut buf);
                ready!(Pin::new(file).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the blob file is shorter than its size",
                    ))));
                }
                buf.truncate(n);
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(buf.freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
