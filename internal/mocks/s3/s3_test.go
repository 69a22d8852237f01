package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/devctl/devctl/internal/mocks/s3"
)

var creds = s3.Credentials{AccessKeyID: "AKIDEVCTLTEST", SecretAccessKey: "secret-key-for-tests"}

const bucket = "uploads"

// serve starts the stand-in over TLS (what the SDKs' trailing checksums
// need) or plain HTTP.
func serve(t *testing.T, tls bool, opts ...s3.Option) *httptest.Server {
	t.Helper()
	s, err := s3.New(creds, append([]s3.Option{s3.WithBuckets(bucket)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(s)
	} else {
		srv = httptest.NewServer(s)
	}
	t.Cleanup(srv.Close)
	return srv
}

// client is an AWS SDK client configured as applications do, by
// config.LoadDefaultConfig, so it has the SDK's default checksum settings
// (request checksums and response validation "when supported").
func client(t *testing.T, srv *httptest.Server, id, secret, region string) *awss3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, "")),
		config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenSupported {
		t.Fatalf("RequestChecksumCalculation = %v, want the default (when supported): is AWS_REQUEST_CHECKSUM_CALCULATION set?", cfg.RequestChecksumCalculation)
	}
	cfg.HTTPClient = srv.Client() // trusts the test server's certificate
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
		o.RetryMaxAttempts = 1
	})
}

// recorder keeps the headers of the requests a client sends.
type recorder struct {
	http.RoundTripper
	mu      sync.Mutex
	headers []http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	return r.RoundTripper.RoundTrip(req)
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headers[len(r.headers)-1]
}

// onlyReader hides Seek, so the SDK streams the body.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestSDKDefaults(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{true, false} {
		name := map[bool]string{true: "https", false: "http"}[tls]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := serve(t, tls)
			rec := &recorder{RoundTripper: srv.Client().Transport}
			srv.Client().Transport = rec
			c := client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, s3.DefaultRegion)

			lb, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{})
			if err != nil {
				t.Fatal(err)
			}
			if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != bucket {
				t.Fatalf("buckets = %+v, want %s", lb.Buckets, bucket)
			}

			data := random(t, 200<<10) // several aws-chunked chunks
			in := &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/obj one.bin"),
				ContentType: aws.String("application/octet-stream"), Metadata: map[string]string{"team": "dx"}}
			if tls {
				// a streaming body: aws-chunked with a trailing CRC32
				in.Body, in.ContentLength = onlyReader{bytes.NewReader(data)}, aws.Int64(int64(len(data)))
			} else {
				// without TLS the SDK needs a seekable body and sends the checksum as a header
				in.Body = bytes.NewReader(data)
			}
			put, err := c.PutObject(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if put.ChecksumCRC32 == nil {
				t.Error("PutObject answered no CRC32")
			}
			sent := rec.last()
			wantPayload, wantChecksum := "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "" // trailer
			if !tls {
				wantPayload, wantChecksum = "", aws.ToString(put.ChecksumCRC32) // hex SHA-256, header
			}
			if wantPayload != "" && (sent.Get("X-Amz-Content-Sha256") != wantPayload || sent.Get("Content-Encoding") != "aws-chunked" ||
				sent.Get("X-Amz-Trailer") != "x-amz-checksum-crc32") {
				t.Errorf("the SDK sent %v, want an aws-chunked upload with a trailing CRC32", sent)
			}
			if wantChecksum != "" && sent.Get("X-Amz-Checksum-Crc32") != wantChecksum {
				t.Errorf("the SDK sent %v, want a CRC32 header", sent)
			}

			get, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/obj one.bin"),
				ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(get.Body) // the SDK validates the checksum while reading
			_ = get.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("GetObject returned %d bytes that differ from the %d put", len(got), len(data))
			}
			if aws.ToString(get.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) {
				t.Errorf("stored CRC32 %q, want %q", aws.ToString(get.ChecksumCRC32), aws.ToString(put.ChecksumCRC32))
			}
			if get.Metadata["team"] != "dx" || aws.ToString(get.ContentType) != "application/octet-stream" {
				t.Errorf("metadata %v, content type %q", get.Metadata, aws.ToString(get.ContentType))
			}
			if get.ContentEncoding != nil {
				t.Errorf("Content-Encoding %q leaked from the upload", aws.ToString(get.ContentEncoding))
			}

			list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("dir/")})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len(data)) {
				t.Fatalf("ListObjectsV2 = %+v", list.Contents)
			}
			// DeleteObjects carries a body checksum (it used to be Content-MD5).
			del, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String(bucket),
				Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("dir/obj one.bin")}}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(del.Deleted) != 1 || len(del.Errors) != 0 {
				t.Fatalf("DeleteObjects = %+v", del)
			}
		})
	}
}

func TestChecksumAlgorithms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := serve(t, true)
	c := client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, s3.DefaultRegion)
	data := random(t, 70<<10)
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha1,
		types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmCrc64nvme} {
		key := "alg-" + string(alg)
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: onlyReader{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))), ChecksumAlgorithm: alg}); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		get, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if _, err := io.Copy(io.Discard, get.Body); err != nil {
			t.Errorf("%s: reading (checksum validated by the SDK): %v", alg, err)
		}
		_ = get.Body.Close()
	}
}

func TestRejectsWhatS3Rejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := serve(t, true)
	data := []byte("hello")
	tests := []struct {
		name     string
		c        *awss3.Client
		checksum *string
		want     string
	}{
		{"wrong secret", client(t, srv, creds.AccessKeyID, "not-the-secret", s3.DefaultRegion), nil, "SignatureDoesNotMatch"},
		{"unknown key", client(t, srv, "AKIDUNKNOWN", creds.SecretAccessKey, s3.DefaultRegion), nil, "InvalidAccessKeyId"},
		{"wrong region", client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, "eu-west-1"), nil, "AuthorizationHeaderMalformed"},
		{"wrong checksum", client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, s3.DefaultRegion), aws.String("AAAAAA=="), "BadDigest"},
	}
	for _, tt := range tests {
		_, err := tt.c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"),
			Body: onlyReader{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))), ChecksumCRC32: tt.checksum})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	// ListBuckets (no body) with a wrong secret, too
	_, err := client(t, srv, creds.AccessKeyID, "nope", s3.DefaultRegion).ListBuckets(ctx, &awss3.ListBucketsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "SignatureDoesNotMatch" {
		t.Errorf("ListBuckets with a wrong secret: %v", err)
	}
	// anonymous
	resp, err := srv.Client().Get(srv.URL + "/" + bucket)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
		t.Errorf("anonymous GET = %d %s", resp.StatusCode, body)
	}
}

func TestPresignedURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := serve(t, false)
	c := client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, s3.DefaultRegion)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("p.txt"), Body: strings.NewReader("presigned")}); err != nil {
		t.Fatal(err)
	}
	req, err := awss3.NewPresignClient(c).PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("p.txt")},
		awss3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url    string
		status int
	}{
		{req.URL, http.StatusOK},
		{strings.Replace(req.URL, "p.txt", "q.txt", 1), http.StatusForbidden},
	} {
		resp, err := srv.Client().Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s = %d %s, want %d", tt.url, resp.StatusCode, body, tt.status)
		}
		if tt.status == http.StatusOK && string(body) != "presigned" {
			t.Errorf("body %q", body)
		}
	}
}

func TestDataDirSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	srv := serve(t, false, s3.WithDataDir(dir))
	c := client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, s3.DefaultRegion)
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b.txt"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv = serve(t, false, s3.WithDataDir(dir))
	c = client(t, srv, creds.AccessKeyID, creds.SecretAccessKey, s3.DefaultRegion)
	get, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(get.Body)
	_ = get.Body.Close()
	if string(b) != "kept" {
		t.Fatalf("after restart: %q", b)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	if _, err := s3.New(s3.Credentials{AccessKeyID: "x"}); !errors.Is(err, s3.ErrNoCredentials) {
		t.Errorf("New without a secret: %v", err)
	}
	if _, err := s3.New(creds, s3.WithBuckets("Not_A_Bucket")); err == nil {
		t.Error("an invalid bucket name was accepted")
	}
}

// signUnsignedTrailer signs r as an SDK sends an aws-chunked upload with an
// unsigned payload, using the SDK's own signer.
func signUnsignedTrailer(t *testing.T, r *http.Request) {
	t.Helper()
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		r, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "s3", s3.DefaultRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
}
