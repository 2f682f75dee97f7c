"""The pure, transport-free half of the S3-compatible API.

    errors     S3 error codes as `AisError` subclasses, and the S3 XML error body
    sigv4      parse and verify AWS Signature V4 (header and presigned); parse SigV2 enough
               to name the caller
    checksums  `x-amz-checksum-*` hashers, Content-MD5 and multipart ETags
    chunked    a push-style decoder for `Content-Encoding: aws-chunked` bodies

Nothing here imports aiohttp or does I/O, so the proxy's S3 front end and the tests share it.
"""
