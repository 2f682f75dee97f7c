"""The aws-chunked decoder (ais.s3.chunked) and S3 checksums (ais.s3.checksums).

Signed streaming bodies are built here straight from the AWS spec (independently of
`ais.s3.sigv4`), their requests signed by botocore; unsigned-trailer bodies are the ones a real
boto3 client produces. Every body is also fed one byte at a time and in random pieces.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import io
import os
import random
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha1Checksum, Sha256Checksum

from ais.s3 import checksums, sigv4
from ais.s3.chunked import ChunkedDecoder, decoder_for_request
from ais.s3.errors import (
    BadDigest,
    IncompleteBody,
    InvalidArgument,
    InvalidChunkSizeError,
    InvalidDigest,
    InvalidPart,
    InvalidRequest,
    S3Error,
    SignatureDoesNotMatch,
)

AK, SK = "AKIDEXAMPLE", "secret/key+example"
EMPTY = hashlib.sha256(b"").hexdigest()


# Spec-built signed bodies -----------------------------------------------------------------

def _hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _spec_key(secret: str, date: str, region: str = "us-east-1") -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_body(payload: bytes, chunk_size: int, auth: sigv4.SigV4Auth, secret: str = SK,
                trailer: tuple[str, str] | None = None) -> bytes:
    """An aws-chunked body per the AWS spec, chained from the request's seed signature."""
    key = _spec_key(secret, auth.date, auth.region)
    previous, out = auth.signature, bytearray()
    pieces = [payload[i:i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    for piece in pieces:
        previous = _hmac(key, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope, previous,
                                         EMPTY, hashlib.sha256(piece).hexdigest()]))
        out += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece
        out += b"\r\n" if piece else b""
    if trailer is None:
        return bytes(out + b"\r\n")
    canonical = f"{trailer[0]}:{trailer[1]}\n"
    signature = _hmac(key, "\n".join(["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, previous,
                                      hashlib.sha256(canonical.encode()).hexdigest()]))
    return bytes(out) + f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()


class _StreamingSigner(S3SigV4Auth):  # type: ignore[misc]
    """botocore's S3 signer, declaring a STREAMING-* payload as an SDK that streams would."""

    def __init__(self, mode: str, secret: str = SK) -> None:
        super().__init__(Credentials(AK, secret), "s3", "us-east-1")
        self.mode = mode

    def payload(self, request: Any) -> str:
        return self.mode


def signed_request(mode: str, decoded_length: int | None, trailer: str | None = None,
                   secret: str = SK) -> tuple[sigv4.SigV4Auth, dict[str, str]]:
    headers = {"Content-Encoding": "aws-chunked"}
    if decoded_length is not None:
        headers["X-Amz-Decoded-Content-Length"] = str(decoded_length)
    if trailer:
        headers["X-Amz-Trailer"] = trailer
    request = AWSRequest(method="PUT", url="http://127.0.0.1:9/s3/bkt/obj", headers=headers)
    _StreamingSigner(mode, secret).add_auth(request)
    flat = {k: str(v) for k, v in request.headers.items()} | {"Host": "127.0.0.1:9"}
    auth = sigv4.parse("PUT", "/s3/bkt/obj", "", flat)
    assert isinstance(auth, sigv4.SigV4Auth) and auth.payload_hash == mode
    sigv4.verify(auth, SK)
    return auth, flat


# Feeding ----------------------------------------------------------------------------------

def bytewise(body: bytes) -> Iterator[bytes]:
    return (body[i:i + 1] for i in range(len(body)))


def random_pieces(body: bytes, seed: int = 0, largest: int = 70_000) -> Iterator[bytes]:
    rng, pos = random.Random(seed), 0
    while pos < len(body):
        size = rng.choice([1, 2, 3, rng.randint(1, 64), rng.randint(1, largest)])
        yield body[pos:pos + size]
        pos += size


def whole(body: bytes) -> Iterator[bytes]:
    return iter([body])


SPLITTERS: list[Callable[[bytes], Iterator[bytes]]] = [whole, bytewise, random_pieces]


def decode(decoder: ChunkedDecoder, pieces: Iterator[bytes]) -> bytes:
    out = bytearray()
    for piece in pieces:
        out += decoder.feed(piece)
    decoder.finish()
    assert decoder.done
    return bytes(out)


# STREAMING-AWS4-HMAC-SHA256-PAYLOAD -------------------------------------------------------

def test_aws_documentation_example() -> None:
    """The worked example of sigv4-streaming: 66560 bytes of 'a' in 64 KiB chunks."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    headers = {
        "Host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY", "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Length": "66824",
        "x-amz-decoded-content-length": "66560",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                         "aws4_request,SignedHeaders=content-encoding;content-length;host;"
                         "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                         "x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4"
                         "adea153f7db9fa80a0a9"}
    body = (b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
            + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
            + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
    assert len(body) == 66824
    auth = sigv4.parse("PUT", "/examplebucket/chunkObject.txt", "", headers)
    assert isinstance(auth, sigv4.SigV4Auth) and auth.is_streaming
    sigv4.verify(auth, secret, calendar.timegm((2013, 5, 24, 0, 0, 0)))
    for split in SPLITTERS:
        assert decode(decoder_for_request(auth, headers, secret), split(body)) == b"a" * 66560
    tampered = body.replace(b"a" * 1024, b"a" * 1023 + b"b")
    with pytest.raises(SignatureDoesNotMatch):
        decode(decoder_for_request(auth, headers, secret), whole(tampered))


@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 100_003])
@pytest.mark.parametrize("split", SPLITTERS)
def test_signed_payload(size: int, split: Callable[[bytes], Iterator[bytes]]) -> None:
    if split is bytewise and size > 9000:
        return
    payload = os.urandom(size)
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD, size)
    body = signed_body(payload, 8192, auth)
    assert decode(decoder_for_request(auth, headers, SK), split(body)) == payload


def test_signed_payload_rejects_tampering() -> None:
    payload = os.urandom(20_000)
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD, len(payload))
    body = signed_body(payload, 8192, auth)
    flipped = bytearray(body)
    flipped[body.index(b"\r\n") + 100] ^= 1  # a payload byte of the first chunk
    with pytest.raises(SignatureDoesNotMatch):
        decode(decoder_for_request(auth, headers, SK), whole(bytes(flipped)))
    with pytest.raises(SignatureDoesNotMatch):  # a body signed with another secret
        decode(decoder_for_request(auth, headers, SK), whole(signed_body(payload, 8192, auth, SK + "x")))
    first, second = re.findall(rb"chunk-signature=[0-9a-f]{64}", body)[:2]
    i, j = body.index(first), body.index(second)
    swapped = body[:i] + second + body[i + len(first):j] + first + body[j + len(second):]
    with pytest.raises(SignatureDoesNotMatch):  # a valid signature out of its place in the chain
        decode(decoder_for_request(auth, headers, SK), whole(swapped))
    unsigned = body.replace(body[:body.index(b"\r\n")], b"2000")
    with pytest.raises(SignatureDoesNotMatch):
        decode(decoder_for_request(auth, headers, SK), whole(unsigned))
    # Without a secret the framing is decoded but signatures are not checked.
    assert decode(decoder_for_request(auth, headers, None), whole(bytes(flipped))) != payload


# STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER -----------------------------------------------

@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_signed_trailer(algorithm: str) -> None:
    payload = os.urandom(30_000)
    name = checksums.header_name(algorithm)
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD_TRAILER, len(payload), trailer=name)
    value = checksums.checksum_b64(algorithm, payload)
    body = signed_body(payload, 8192, auth, trailer=(name, value))
    for split in (whole, random_pieces):
        decoder = decoder_for_request(auth, headers, SK)
        assert decode(decoder, split(body)) == payload
        assert decoder.trailers == {name: value}
    decoder = decoder_for_request(auth, headers, SK)
    assert decode(decoder, bytewise(body)) == payload


def test_signed_trailer_rejects_tampering() -> None:
    payload = os.urandom(10_000)
    name = "x-amz-checksum-crc32"
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD_TRAILER, len(payload), trailer=name)
    good = checksums.checksum_b64("CRC32", payload)
    wrong = checksums.checksum_b64("CRC32", payload + b"x")
    body = signed_body(payload, 4096, auth, trailer=(name, good))
    forged = body.replace(good.encode(), wrong.encode())  # checksum swapped, signature kept
    with pytest.raises(SignatureDoesNotMatch):
        decode(decoder_for_request(auth, headers, SK), whole(forged))
    # Correctly signed but wrong checksum: the signature holds, the digest does not.
    with pytest.raises(BadDigest):
        decode(decoder_for_request(auth, headers, SK), whole(signed_body(payload, 4096, auth, trailer=(name, wrong))))
    for bad in ("é" * 64, "0" * 63):
        forged = body[:body.index(b"x-amz-trailer-signature")] + f"x-amz-trailer-signature:{bad}\r\n\r\n".encode()
        with pytest.raises(SignatureDoesNotMatch):
            decode(decoder_for_request(auth, headers, SK), whole(forged))
    no_signature = body[:body.index(b"x-amz-trailer-signature")] + b"\r\n"
    with pytest.raises(SignatureDoesNotMatch, match="missing"):
        decode(decoder_for_request(auth, headers, SK), whole(no_signature))


# STREAMING-UNSIGNED-PAYLOAD-TRAILER, as boto3 sends it ------------------------------------

@pytest.fixture(scope="module")
def https_client() -> Any:
    """A boto3 client on an https endpoint (so it streams with trailing checksums) whose
    requests are captured instead of sent."""
    s3 = boto3.client("s3", endpoint_url="https://127.0.0.1:9/s3", aws_access_key_id=AK,
                      aws_secret_access_key=SK, region_name="us-east-1",
                      config=Config(request_checksum_calculation="when_supported",
                                    s3={"addressing_style": "path"}))
    sent: list[AWSPreparedRequest] = []

    class _Raw:
        def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
            yield b""

    def keep(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _Raw())

    s3.meta.events.register("before-send.s3", keep)
    s3.sent = sent
    return s3


def boto3_upload(client: Any, payload: bytes, **params: Any) -> tuple[sigv4.SigV4Auth, dict[str, str], bytes]:
    """What boto3 sends for PutObject (or UploadPart with PartNumber/UploadId): auth, headers, body."""
    if "PartNumber" in params:
        client.upload_part(Bucket="bkt", Key="k", Body=payload, **params)
    else:
        client.put_object(Bucket="bkt", Key="k", Body=payload, **params)
    request = client.sent[-1]
    parts = urlsplit(request.url)
    headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
    headers["Host"] = parts.netloc
    auth = sigv4.parse(request.method, parts.path, parts.query, headers)
    assert isinstance(auth, sigv4.SigV4Auth)
    sigv4.verify(auth, SK)
    return auth, headers, request.body.read()


@pytest.mark.parametrize("algorithm", [None, "SHA1", "SHA256", "CRC32"])
def test_boto3_unsigned_trailer(https_client: Any, algorithm: str | None) -> None:
    payload = os.urandom(2 * 1024 * 1024 + 12345)  # three 1 MiB-ish chunks
    params = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    auth, headers, body = boto3_upload(https_client, payload, **params)
    assert auth.payload_hash == sigv4.STREAMING_UNSIGNED_TRAILER
    name = checksums.header_name(algorithm or "CRC32")
    assert headers["X-Amz-Trailer"] == name and headers["Content-Encoding"] == "aws-chunked"
    for split in (whole, random_pieces):
        decoder = decoder_for_request(auth, headers, SK)
        assert decode(decoder, split(body)) == payload
        assert decoder.trailers == {name: checksums.checksum_b64(algorithm or "CRC32", payload)}


def test_boto3_upload_part_bytewise(https_client: Any) -> None:
    payload = os.urandom(3000)
    auth, headers, body = boto3_upload(https_client, payload, PartNumber=2, UploadId="u1")
    assert decode(decoder_for_request(auth, headers, None), bytewise(body)) == payload


class _OurChecksum:
    """Lets botocore's AwsChunkedWrapper frame trailers botocore cannot compute without CRT."""

    algorithm = "CRC32C"

    def __init__(self) -> None:
        self._c = checksums.Checksum(self.algorithm)

    def update(self, chunk: bytes) -> None:
        self._c.update(chunk)

    def b64digest(self) -> str:
        return self._c.b64digest()


class _OurCrc64(_OurChecksum):
    algorithm = "CRC64NVME"


@pytest.mark.parametrize("cls", [Crc32Checksum, Sha256Checksum, _OurChecksum, _OurCrc64])
def test_botocore_wrapper_small_chunks_bytewise(cls: Any) -> None:
    payload = os.urandom(500)
    algorithm = getattr(cls, "algorithm", "CRC32" if cls is Crc32Checksum else "SHA256")
    name = checksums.header_name(algorithm)
    body = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=cls, checksum_name=name, chunk_size=7).read()
    assert body.count(b"\r\n") > 140
    for split in SPLITTERS:
        decoder = ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, declared_trailer=name,
                                 decoded_length=len(payload))
        assert decode(decoder, split(body)) == payload


def test_unsigned_trailer_bad_checksum(https_client: Any) -> None:
    payload = os.urandom(5000)
    auth, headers, body = boto3_upload(https_client, payload)
    flipped = bytearray(body)
    flipped[10] ^= 0xFF
    with pytest.raises(BadDigest):
        decode(decoder_for_request(auth, headers, SK), whole(bytes(flipped)))


# Truncation and framing -------------------------------------------------------------------

def _unsigned_body(payload: bytes, chunk: int = 5) -> bytes:
    wrapper = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=chunk)
    return bytes(wrapper.read())


def _unsigned_decoder(length: int | None = None) -> ChunkedDecoder:
    return ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, declared_trailer="x-amz-checksum-crc32",
                          decoded_length=length)


def test_every_truncation_is_rejected() -> None:
    payload = b"hello aws-chunked world"
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD_TRAILER, len(payload), trailer="x-amz-checksum-crc32")
    signed = signed_body(payload, 8, auth, trailer=("x-amz-checksum-crc32", checksums.checksum_b64("CRC32", payload)))
    cases: list[tuple[bytes, Callable[[], ChunkedDecoder]]] = [
        (_unsigned_body(payload), lambda: _unsigned_decoder(len(payload))),
        (signed, lambda: decoder_for_request(auth, headers, SK))]
    for body, make in cases:
        for cut in range(len(body)):
            decoder = make()
            if cut == len(body) - 2:  # only the closing CRLF is missing: tolerated
                assert decode(decoder, whole(body[:cut])) == payload
                continue
            with pytest.raises(S3Error):
                decode(decoder, whole(body[:cut]))


def test_truncation_inside_data_is_incomplete_body() -> None:
    body = _unsigned_body(b"0123456789")
    decoder = _unsigned_decoder()
    assert decoder.feed(body[:6]) == b"012"
    with pytest.raises(IncompleteBody, match="chunk data"):
        decoder.finish()


@pytest.mark.parametrize("body, error", [
    (b"zz\r\nab\r\n0\r\n\r\n", InvalidChunkSizeError),
    (b"\r\n", InvalidChunkSizeError),
    (b"1" * 17 + b"\r\n", InvalidChunkSizeError),
    (b"2\nab\r\n0\r\n\r\n", InvalidChunkSizeError),
    (b"2\r\nabc\r\n0\r\n\r\n", InvalidChunkSizeError),
    (b"2\r\nab\r\n0\r\n\r\nextra", InvalidRequest),
    (b"2\r\nab\r\n0\r\nx-amz-meta-a:b\r\n\r\n", InvalidRequest),
    (b"2\r\nab\r\n0\r\nno-colon\r\n\r\n", InvalidRequest),
    (b"2\r\nab\r\n0\r\nx-amz-checksum-crc32:bm90IGEgY3Jj\r\n\r\n", InvalidRequest),
    (b"2\r\nab\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", InvalidRequest),
    (b"2\r\nab\r\n0\r\n\r\n", InvalidRequest),
    (b"2\r\nab\r\n0\r\nx-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n", InvalidRequest),
])
def test_malformed_framing(body: bytes, error: type[S3Error]) -> None:
    for split in SPLITTERS:
        with pytest.raises(error):
            decode(_unsigned_decoder(), split(body))


def test_decoded_length_must_match() -> None:
    body = _unsigned_body(b"0123456789")
    with pytest.raises(IncompleteBody, match="x-amz-decoded-content-length"):
        decode(_unsigned_decoder(11), whole(body))
    decoder = _unsigned_decoder(9)
    with pytest.raises(InvalidRequest, match="longer"):
        decode(decoder, whole(body))
    assert decoder.decoded_bytes <= 9  # refused at the chunk header, before passing the data on


def test_signed_framing_needs_chunk_signatures() -> None:
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD, 2)
    with pytest.raises(SignatureDoesNotMatch):
        decode(decoder_for_request(auth, headers, SK), whole(b"2\r\nab\r\n0\r\n\r\n"))
    body = signed_body(b"ab", 8, auth)
    with pytest.raises(InvalidChunkSizeError):  # trailers where none may be
        decode(decoder_for_request(auth, headers, SK), whole(body[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"))


@pytest.mark.parametrize("prefix", [b"", b"2\r\nab\r\n0\r\n"])
def test_lines_are_bounded(prefix: bytes) -> None:
    decoder = _unsigned_decoder()
    decoder.feed(prefix)
    fed = 0
    with pytest.raises(InvalidChunkSizeError, match="4096"):
        for _ in range(100_000):
            decoder.feed(b"1")
            fed += 1
    assert fed < 4096
    with pytest.raises(InvalidChunkSizeError):
        _unsigned_decoder().feed(b"1" * 1_000_000)


def test_constructor_validation() -> None:
    with pytest.raises(InvalidArgument):
        ChunkedDecoder("UNSIGNED-PAYLOAD")
    with pytest.raises(InvalidRequest):
        ChunkedDecoder(sigv4.STREAMING_PAYLOAD, declared_trailer="x-amz-checksum-crc32")
    with pytest.raises(InvalidRequest):
        ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, declared_trailer="x-amz-meta-foo")
    with pytest.raises(InvalidRequest):
        ChunkedDecoder(sigv4.STREAMING_UNSIGNED_TRAILER, declared_trailer="x-amz-checksum-md5")
    with pytest.raises(ValueError):
        ChunkedDecoder(sigv4.STREAMING_PAYLOAD, signing_key=b"k")
    auth, headers = signed_request(sigv4.STREAMING_PAYLOAD, None)
    with pytest.raises(InvalidArgument):
        decoder_for_request(auth, headers | {"X-Amz-Decoded-Content-Length": "12a"}, SK)


# Checksums --------------------------------------------------------------------------------

CHECK = b"123456789"


def test_known_vectors() -> None:
    def b64(value: int, size: int) -> str:
        return base64.b64encode(value.to_bytes(size, "big")).decode()
    assert checksums.checksum_b64("crc32", CHECK) == b64(0xCBF43926, 4)
    assert checksums.checksum_b64("CRC32C", CHECK) == b64(0xE3069283, 4)
    assert checksums.checksum_b64("CRC64NVME", CHECK) == b64(0xAE8B14860A799888, 8)
    assert checksums.checksum_b64("CRC64NVME", b"") == "AAAAAAAAAAA="
    assert checksums.checksum_b64("SHA1", CHECK) == base64.b64encode(hashlib.sha1(CHECK).digest()).decode()
    assert checksums.checksum_b64("SHA256", b"") == base64.b64encode(bytes.fromhex(EMPTY)).decode()


def test_matches_botocore_and_is_incremental() -> None:
    data = os.urandom(100_001)
    for algorithm, theirs in (("CRC32", Crc32Checksum), ("SHA1", Sha1Checksum), ("SHA256", Sha256Checksum)):
        reference = theirs()
        reference.update(data)
        assert checksums.checksum_b64(algorithm, data) == reference.b64digest()
    for algorithm in checksums.ALGORITHMS:
        incremental = checksums.Checksum(algorithm)
        for piece in random_pieces(data[:20_000], seed=3, largest=999):
            incremental.update(piece)
        assert incremental.b64digest() == checksums.checksum_b64(algorithm, data[:20_000])
    crc32 = checksums.Checksum("CRC32")
    crc32.update(data)
    assert crc32.digest() == (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def test_algorithm_names_and_headers() -> None:
    assert checksums.header_name("crc32c") == "x-amz-checksum-crc32c"
    assert checksums.algorithm_from_header("X-Amz-Checksum-SHA256") == "SHA256"
    for other in ("x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode", "content-md5"):
        assert checksums.algorithm_from_header(other) is None
    with pytest.raises(InvalidRequest):
        checksums.normalize_algorithm("MD5")
    with pytest.raises(InvalidRequest):
        checksums.decode_checksum("CRC32", "AAAA")  # 3 bytes, not 4
    with pytest.raises(BadDigest, match="CRC32"):
        checksums.verify_checksum("crc32", checksums.checksum_b64("CRC32", b"a"), b"\0\0\0\0")


def test_composite_checksum() -> None:
    parts = [checksums.checksum_b64("CRC32", p) for p in (b"part one", b"part two")]
    raw = b"".join(base64.b64decode(p) for p in parts)
    expected = base64.b64encode((zlib.crc32(raw) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    assert checksums.composite_checksum("CRC32", parts) == f"{expected}-2"


def test_md5_helpers() -> None:
    digest = hashlib.md5(b"hello").digest()
    assert checksums.md5_etag(digest) == "5d41402abc4b2a76b9719d911017c592"
    checksums.check_content_md5(base64.b64encode(digest).decode(), digest)
    with pytest.raises(BadDigest):
        checksums.check_content_md5(base64.b64encode(hashlib.md5(b"x").digest()).decode(), digest)
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(InvalidDigest):
            checksums.content_md5_digest(bad)
    parts = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert checksums.multipart_etag(parts) == hashlib.md5(parts[0] + parts[1]).hexdigest() + "-2"
    assert checksums.part_md5_from_etag('"' + parts[0].hex() + '"') == parts[0]
    for bad in ('"abc"', "z" * 32):
        with pytest.raises(InvalidPart):
            checksums.part_md5_from_etag(bad)
