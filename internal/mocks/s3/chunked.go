package s3

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Values of X-Amz-Content-Sha256 announcing an aws-chunked payload.
const (
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// maxChunkHeader bounds a chunk header or trailer line.
const maxChunkHeader = 4096

var errMalformedChunk = errors.New("malformed aws-chunked body")

// chunkedBody decodes an aws-chunked payload:
//
//	<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//	[<trailer>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
//
// verifying each chunk's signature (signed modes, chained from the request's
// seed signature) and copying the data to dst. It returns the trailers.
func decodeChunked(src io.Reader, dst io.Writer, mode string, a *auth) (map[string]string, int64, *apiError) {
	signed := mode == streamingSigned || mode == streamingSignedTrailer
	br := bufio.NewReaderSize(src, 64<<10)
	prev := a.signature
	var total int64
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, total, incomplete(err)
		}
		sizeHex, ext, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
		if err != nil || size < 0 {
			return nil, total, incomplete(errMalformedChunk)
		}
		h := sha256.New()
		if _, err := io.CopyN(io.MultiWriter(dst, h), br, size); err != nil {
			return nil, total, incomplete(err)
		}
		total += size
		if signed {
			sig, ok := strings.CutPrefix(ext, "chunk-signature=")
			if !ok {
				return nil, total, errorf(http.StatusBadRequest, "InvalidRequest", "aws-chunked: chunk without chunk-signature")
			}
			want := hex.EncodeToString(hmacSHA256(a.key, strings.Join([]string{
				"AWS4-HMAC-SHA256-PAYLOAD", a.date, a.scope, prev, emptySHA256, hex.EncodeToString(h.Sum(nil)),
			}, "\n")))
			if !hmac.Equal([]byte(want), []byte(sig)) {
				return nil, total, errorf(http.StatusForbidden, "SignatureDoesNotMatch", "The chunk signature we calculated does not match the signature you provided.")
			}
			prev = sig
		}
		if size > 0 {
			if crlf, err := readLine(br); err != nil || crlf != "" {
				return nil, total, incomplete(errMalformedChunk)
			}
			continue
		}
		break
	}

	trailers := map[string]string{}
	var canonical strings.Builder
	for {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) && line == "" {
			break // some encoders omit the final empty line
		}
		if err != nil {
			return nil, total, incomplete(err)
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, total, incomplete(errMalformedChunk)
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			if mode != streamingSignedTrailer {
				continue
			}
			sum := sha256.Sum256([]byte(canonical.String()))
			want := hex.EncodeToString(hmacSHA256(a.key, strings.Join([]string{
				"AWS4-HMAC-SHA256-TRAILER", a.date, a.scope, prev, hex.EncodeToString(sum[:]),
			}, "\n")))
			if !hmac.Equal([]byte(want), []byte(value)) {
				return nil, total, errorf(http.StatusForbidden, "SignatureDoesNotMatch", "The trailer signature we calculated does not match the signature you provided.")
			}
			trailers[name] = value
			continue
		}
		canonical.WriteString(name + ":" + value + "\n")
		trailers[name] = value
	}
	if mode == streamingSignedTrailer && trailers["x-amz-trailer-signature"] == "" {
		return nil, total, errorf(http.StatusBadRequest, "InvalidRequest", "aws-chunked: trailer without x-amz-trailer-signature")
	}
	delete(trailers, "x-amz-trailer-signature")
	return trailers, total, nil
}

// readLine reads one CRLF-terminated line (a bare LF is accepted) without
// its terminator.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkHeader {
			return "", errMalformedChunk
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return string(b), err
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
}

func incomplete(err error) *apiError {
	return errorf(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header (%v).", err)
}
