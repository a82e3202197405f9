//! DoGet of a statement's rows without copying them.
//!
//! Through tonic, each Flight message is copied twice before the socket:
//! arrow-ipc writes the body of every batch into a buffer of its own, and
//! prost copies that into the gRPC frame. In a fetch of a whole table
//! those two copies are a sixth of the server's work. [`FlightRouter`]
//! stands in front of the generated service and answers a statement's
//! DoGet itself: the gRPC frame and FlightData fields are written by hand
//! and each column's Arrow buffers go to HTTP/2 as they are (arrow-ipc's
//! [`StreamEncoder`] lays the body out without copying it). Every other
//! call, and a DoGet of anything but a statement's result, goes to the
//! generated service untouched.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::{Any, TicketStatementQuery};
use arrow_flight::{FlightData, SchemaAsIpc, Ticket};
use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamEncoder};
use datafusion::arrow::ipc::{root_as_message, MessageHeader};
use futures::StreamExt;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::Status;

use super::arrow_out::split_for_messages;
use super::service::{BatchStream, QuiverFlight};

const DO_GET: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// A DoGet request carries a ticket; one this large is not ours.
const MAX_TICKET_BYTES: usize = 1 << 20;

/// `FlightData` field numbers (arrow's Flight.proto).
const DATA_HEADER: u32 = 2;
const DATA_BODY: u32 = 1000;

/// Body pieces smaller than this (the frame's head, alignment padding,
/// short columns) are copied into one chunk rather than sent one by one.
const SMALL: usize = 1024;

/// The Flight service, with a statement's DoGet answered by [`rows`].
#[derive(Clone)]
pub struct FlightRouter {
    flight: Arc<QuiverFlight>,
    grpc: FlightServiceServer<QuiverFlight>,
    /// The largest message a client is sent (the generated service's
    /// encoding limit).
    max_message: usize,
}

impl FlightRouter {
    pub fn new(flight: Arc<QuiverFlight>, max_message: usize) -> Self {
        let grpc = FlightServiceServer::from_arc(flight.clone())
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message);
        FlightRouter {
            flight,
            grpc,
            max_message,
        }
    }
}

impl NamedService for FlightRouter {
    const NAME: &'static str = <FlightServiceServer<QuiverFlight> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for FlightRouter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // As the generated service: always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut grpc = self.grpc.clone();
        if request.uri().path() != DO_GET {
            return Box::pin(grpc.call(request));
        }
        let flight = self.flight.clone();
        let max_message = self.max_message;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let message = match Limited::new(body, MAX_TICKET_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    return Ok(Status::invalid_argument(format!(
                        "could not read the DoGet request: {e}"
                    ))
                    .into_http())
                }
            };
            let Some(ticket) = statement_ticket(&message) else {
                let request = http::Request::from_parts(parts, Body::new(Full::new(message)));
                return grpc.call(request).await;
            };
            let request = tonic::Request::from_http(http::Request::from_parts(parts, ticket));
            Ok(match flight.statement_rows(request).await {
                Ok((schema, batches)) => rows(schema, batches, max_message),
                Err(status) => status.into_http(),
            })
        })
    }
}

/// The statement ticket a DoGet request carries, if that is what it
/// carries (an uncompressed gRPC message holding a `Ticket` whose bytes
/// are an `Any` of `TicketStatementQuery`).
fn statement_ticket(message: &[u8]) -> Option<TicketStatementQuery> {
    let (&[compressed], rest) = message.split_first_chunk::<1>()?;
    let (length, payload) = rest.split_first_chunk::<4>()?;
    if compressed != 0 || u32::from_be_bytes(*length) as usize != payload.len() {
        return None;
    }
    let ticket = Ticket::decode(payload).ok()?;
    let any = Any::decode(ticket.ticket).ok()?;
    any.unpack::<TicketStatementQuery>().ok().flatten()
}

/// The response to a statement's DoGet: the schema, then each batch cut
/// into messages of about [`super::arrow_out::MESSAGE_BYTES`], then the
/// gRPC status as trailers (an error ends the stream there, as tonic
/// would end it).
fn rows(schema: SchemaRef, batches: BatchStream, max_message: usize) -> http::Response<Body> {
    let first = Messages::new(&schema, max_message).and_then(|messages| {
        let first = messages.schema(&schema)?;
        Ok((messages, first))
    });
    let (mut messages, first) = match first {
        Ok(started) => started,
        Err(status) => return status.into_http(),
    };
    // Each message's chunks; `None` once the rows have all been sent.
    let chunks = futures::stream::once(async move { Ok(Some(first)) })
        .chain(batches.map(move |batch| {
            let batch = batch.map_err(Status::from)?;
            let mut chunks = Vec::new();
            for piece in split_for_messages(batch) {
                messages.batch(&piece, &mut chunks)?;
            }
            Ok(Some(chunks))
        }))
        .chain(futures::stream::once(async { Ok(None) }));
    let frames = chunks
        .scan(
            false,
            |ended, chunks: Result<Option<Vec<Bytes>>, Status>| {
                // After an error, only its status is sent.
                if *ended {
                    return futures::future::ready(None);
                }
                let frames: Vec<Frame<Bytes>> = match chunks {
                    Ok(Some(chunks)) => chunks.into_iter().map(Frame::data).collect(),
                    Ok(None) => {
                        *ended = true;
                        vec![Frame::trailers(trailers(&Status::ok("")))]
                    }
                    Err(status) => {
                        *ended = true;
                        vec![Frame::trailers(trailers(&status))]
                    }
                };
                futures::future::ready(Some(futures::stream::iter(frames)))
            },
        )
        .flatten()
        .map(Ok::<_, Infallible>);
    let mut response = http::Response::new(Body::new(StreamBody::new(frames)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

fn trailers(status: &Status) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    // Only a status whose message cannot be a header fails here; the
    // code alone still ends the stream right.
    if status.add_header(&mut map).is_err() {
        let _ = Status::new(status.code(), "").add_header(&mut map);
    }
    map
}

/// Writes the Flight messages of one result.
struct Messages {
    encoder: StreamEncoder,
    max_message: usize,
}

impl Messages {
    fn new(schema: &SchemaRef, max_message: usize) -> Result<Self, Status> {
        let encoder = StreamEncoder::try_new(schema)
            .map_err(|e| Status::internal(format!("cannot send this result: {e}")))?;
        Ok(Messages {
            encoder,
            max_message,
        })
    }

    /// The schema message, as every Flight stream begins.
    fn schema(&self, schema: &SchemaRef) -> Result<Vec<Bytes>, Status> {
        let data = FlightData::from(SchemaAsIpc::new(schema, &IpcWriteOptions::default()));
        let mut chunks = Chunks::default();
        chunks.message(&data.data_header, &[], self.max_message)?;
        Ok(chunks.done())
    }

    /// `batch` as one message, appended to `out`: the frame's head in one
    /// chunk, then the column buffers as they are.
    fn batch(
        &mut self,
        batch: &datafusion::arrow::array::RecordBatch,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Status> {
        let buffers = self
            .encoder
            .encode(batch)
            .map_err(|e| Status::internal(format!("could not encode a result batch: {e}")))?;
        let mut stream = IpcStream(buffers.into());
        let mut chunks = Chunks::default();
        while let Some(RawMessage { header, body }) = stream
            .next_message()
            .map_err(|e| Status::internal(format!("could not frame a result batch: {e}")))?
        {
            // The encoder's own schema message leads its first output;
            // ours went first.
            let kind = root_as_message(&header)
                .map_err(|e| Status::internal(format!("bad IPC header: {e}")))?
                .header_type();
            if kind == MessageHeader::RecordBatch {
                chunks.message(&header, &body, self.max_message)?;
            }
        }
        out.extend(chunks.done());
        Ok(())
    }
}

/// One IPC message: its metadata, and its body as the buffers that hold it.
struct RawMessage {
    header: Vec<u8>,
    body: Vec<Buffer>,
}

/// The buffers of an IPC stream, read message by message: an 8-byte
/// prefix (continuation marker and metadata length), the metadata, then
/// the body of the length the metadata gives.
struct IpcStream(VecDeque<Buffer>);

impl IpcStream {
    /// The next message's metadata (copied: it is small) and body (the
    /// buffers themselves); `None` at the end or at an end-of-stream mark.
    fn next_message(&mut self) -> Result<Option<RawMessage>, ArrowError> {
        if self.0.iter().all(|b| b.is_empty()) {
            return Ok(None);
        }
        let prefix = concat(self.take(8)?);
        let length = i32::from_le_bytes(prefix[4..8].try_into().expect("8 bytes"));
        if prefix[..4] != [0xff; 4] || length < 0 {
            return Err(ArrowError::IpcError(
                "an IPC message without its prefix".into(),
            ));
        }
        if length == 0 {
            return Ok(None);
        }
        let header = concat(self.take(length as usize)?);
        let body_length = root_as_message(&header)
            .map_err(|e| ArrowError::IpcError(format!("bad IPC header: {e}")))?
            .bodyLength();
        let body = self.take(usize::try_from(body_length).unwrap_or(usize::MAX))?;
        Ok(Some(RawMessage { header, body }))
    }

    /// The next `n` bytes, as slices of the buffers that hold them.
    fn take(&mut self, mut n: usize) -> Result<Vec<Buffer>, ArrowError> {
        let mut taken = Vec::new();
        while n > 0 {
            let Some(front) = self.0.pop_front() else {
                return Err(ArrowError::IpcError("an IPC message cut short".into()));
            };
            if front.len() <= n {
                n -= front.len();
                taken.push(front);
            } else {
                taken.push(front.slice_with_length(0, n));
                self.0.push_front(front.slice(n));
                n = 0;
            }
        }
        Ok(taken)
    }
}

fn concat(buffers: Vec<Buffer>) -> Vec<u8> {
    buffers.iter().flat_map(|b| b.as_slice()).copied().collect()
}

/// The chunks of gRPC messages: small pieces gathered into one chunk,
/// large ones passed on as they are.
#[derive(Default)]
struct Chunks {
    out: Vec<Bytes>,
    small: BytesMut,
}

impl Chunks {
    /// One gRPC message holding a FlightData with `header` and `body`.
    fn message(&mut self, header: &[u8], body: &[Buffer], max: usize) -> Result<(), Status> {
        let body_len: usize = body.iter().map(|b| b.len()).sum();
        let mut length =
            key_len(DATA_HEADER) + encoded_len_varint(header.len() as u64) + header.len();
        if body_len > 0 {
            length += key_len(DATA_BODY) + encoded_len_varint(body_len as u64) + body_len;
        }
        if length > max {
            // What tonic answers for a message over its limit.
            return Err(Status::out_of_range(format!(
                "Error, encoded message length too large: found {length} bytes, the limit is: {max} bytes"
            )));
        }
        // The gRPC prefix: not compressed, then the length.
        self.small.put_u8(0);
        self.small.put_u32(length as u32);
        encode_key(DATA_HEADER, WireType::LengthDelimited, &mut self.small);
        encode_varint(header.len() as u64, &mut self.small);
        self.small.put_slice(header);
        if body_len > 0 {
            encode_key(DATA_BODY, WireType::LengthDelimited, &mut self.small);
            encode_varint(body_len as u64, &mut self.small);
        }
        for buffer in body {
            if buffer.len() < SMALL {
                self.small.put_slice(buffer.as_slice());
            } else {
                self.flush_small();
                self.out.push(Bytes::from_owner(ArrowBytes(buffer.clone())));
            }
        }
        Ok(())
    }

    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            self.out.push(self.small.split().freeze());
        }
    }

    fn done(mut self) -> Vec<Bytes> {
        self.flush_small();
        self.out
    }
}

/// An Arrow buffer lent to HTTP/2 (which frees it once it is sent).
struct ArrowBytes(Buffer);

impl AsRef<[u8]> for ArrowBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_flight::sql::ProstMessageExt;
    use arrow_flight::utils::flight_data_to_arrow_batch;
    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::collections::HashMap;

    /// The FlightData messages in a run of chunks (what a client reads).
    fn decode(chunks: &[Bytes]) -> Vec<FlightData> {
        let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.iter()).copied().collect();
        let mut rest = &bytes[..];
        let mut messages = Vec::new();
        while !rest.is_empty() {
            assert_eq!(rest[0], 0, "not compressed");
            let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            messages.push(FlightData::decode(&rest[5..5 + length]).unwrap());
            rest = &rest[5 + length..];
        }
        messages
    }

    fn sample() -> RecordBatch {
        let n = 5000;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| (i % 7 != 0).then_some(i)),
            )),
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 5 != 0).then(|| "x".repeat((i % 13) as usize))),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| (i % 3 != 0).then_some(i % 2 == 0)),
            )),
            Arc::new(
                Decimal128Array::from_iter_values((0..n).map(|i| i as i128 * 101))
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
        ];
        let schema = Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("d", DataType::Decimal128(15, 2), true),
        ]);
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn messages_decode_to_the_batches_sent() {
        let batch = sample();
        let schema = batch.schema();
        let mut messages = Messages::new(&schema, usize::MAX).unwrap();
        let mut chunks = messages.schema(&schema).unwrap();
        // Whole, then slices at odd offsets (validity and offsets that do
        // not start at a byte or at zero), then no rows.
        let pieces = [
            batch.clone(),
            batch.slice(3, 1001),
            batch.slice(1237, 3763),
            batch.slice(17, 0),
        ];
        for piece in &pieces {
            messages.batch(piece, &mut chunks).unwrap();
        }
        // Column buffers go out as they are, not copied into the frame.
        assert!(chunks.len() > 2 * pieces.len());
        let data = decode(&chunks);
        assert_eq!(data.len(), 1 + pieces.len());
        let decoded_schema = Arc::new(Schema::try_from(&data[0]).unwrap());
        assert_eq!(decoded_schema, schema);
        for (message, piece) in data[1..].iter().zip(&pieces) {
            let decoded =
                flight_data_to_arrow_batch(message, decoded_schema.clone(), &HashMap::new())
                    .unwrap();
            assert_eq!(&decoded, piece);
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_as_tonic_refuses_it() {
        let batch = sample();
        let schema = batch.schema();
        let mut messages = Messages::new(&schema, 10_000).unwrap();
        let mut chunks = Vec::new();
        let error = messages.batch(&batch, &mut chunks).unwrap_err();
        assert_eq!(error.code(), tonic::Code::OutOfRange);
        messages.batch(&batch.slice(0, 10), &mut chunks).unwrap();
    }

    #[test]
    fn only_a_statement_ticket_is_taken() {
        let framed = |payload: Vec<u8>| {
            let mut message = vec![0];
            message.extend((payload.len() as u32).to_be_bytes());
            message.extend(payload);
            message
        };
        let statement = TicketStatementQuery {
            statement_handle: Bytes::from_static(b"abc"),
        };
        let ticket = Ticket::new(statement.as_any().encode_to_vec()).encode_to_vec();
        assert_eq!(statement_ticket(&framed(ticket.clone())), Some(statement));
        let other = arrow_flight::sql::CommandGetCatalogs {};
        let catalogs = Ticket::new(other.as_any().encode_to_vec()).encode_to_vec();
        assert_eq!(statement_ticket(&framed(catalogs)), None);
        let mut compressed = framed(ticket.clone());
        compressed[0] = 1;
        assert_eq!(statement_ticket(&compressed), None);
        assert_eq!(statement_ticket(&framed(ticket)[..7]), None);
        assert_eq!(statement_ticket(&[]), None);
    }
}
