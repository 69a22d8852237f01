package s3_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/mocks/s3"
)

// awsChunkedExample is the signed aws-chunked upload from the Amazon S3
// documentation ("Signature Calculations for the Authorization Header:
// Transferring Payload in Multiple Chunks"): 66560 bytes of 'a' in chunks of
// 64 KiB and 1 KiB, with the published signatures.
func awsChunkedExample(corrupt bool) *http.Request {
	data := bytes.Repeat([]byte("a"), 66560)
	if corrupt {
		data[70000-66560+100] = 'b'
	}
	var body bytes.Buffer
	body.WriteString("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
	body.Write(data[:65536])
	body.WriteString("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
	body.Write(data[65536:])
	body.WriteString("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")

	r := httptest.NewRequest(http.MethodPut, "http://s3.amazonaws.com/examplebucket/chunkObject.txt", &body)
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"+
		"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"+
		"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("Content-Length", strconv.Itoa(body.Len()))
	r.ContentLength = int64(body.Len())
	return r
}

func TestSignedChunksAWSExample(t *testing.T) {
	t.Parallel()
	if n := awsChunkedExample(false).ContentLength; n != 66824 {
		t.Fatalf("example body is %d bytes, the documentation's is 66824", n)
	}
	s, err := s3.New(s3.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		s3.WithBuckets("examplebucket"),
		s3.WithClock(func() time.Time { return time.Date(2013, 5, 24, 0, 1, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		corrupt bool
		status  int
		want    string
	}{
		{"as published", false, http.StatusOK, ""},
		{"one byte changed", true, http.StatusForbidden, "<Code>SignatureDoesNotMatch</Code>"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, awsChunkedExample(tt.corrupt))
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, rec.Code, rec.Body, tt.status, tt.want)
		}
	}
}

func TestMalformedChunkedBody(t *testing.T) {
	t.Parallel()
	s, err := s3.New(creds, s3.WithBuckets(bucket))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		"zz\r\nabc\r\n0\r\n\r\n",            // size not hex
		"5\r\nabc",                          // short chunk
		"3\r\nabc\r\n0\r\nno-colon\r\n\r\n", // bad trailer
	} {
		r := httptest.NewRequest(http.MethodPut, "http://localhost/"+bucket+"/k", strings.NewReader(body))
		signUnsignedTrailer(t, r)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "IncompleteBody") {
			t.Errorf("body %q: %d %s, want 400 IncompleteBody", body, rec.Code, rec.Body)
		}
	}
}
