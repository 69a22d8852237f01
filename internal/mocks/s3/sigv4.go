package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm    = "AWS4-HMAC-SHA256"
	amzDate      = "20060102T150405Z"
	maxSkew      = 15 * time.Minute
	emptySHA256  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	unsigned     = "UNSIGNED-PAYLOAD"
	maxPresigned = 7 * 24 * time.Hour
)

// auth is a verified request signature: what the streaming payload's chunk
// signatures chain from.
type auth struct {
	date      string // X-Amz-Date, amzDate format
	scope     string // 20260101/us-east-1/s3/aws4_request
	key       []byte // signing key
	signature string // the request's (seed) signature
}

// verify checks r's AWS Signature Version 4, in the Authorization header or
// in a presigned URL's query, against the configured credentials.
func (s *Server) verify(r *http.Request) (*auth, *apiError) {
	q := r.URL.Query()
	var (
		cred, signedHeaders, signature, date, payload string
		presigned                                     bool
	)
	switch h := r.Header.Get("Authorization"); {
	case strings.HasPrefix(h, algorithm+" "):
		fields := map[string]string{}
		for f := range strings.SplitSeq(strings.TrimPrefix(h, algorithm+" "), ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			fields[k] = v
		}
		cred, signedHeaders, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
		date = r.Header.Get("X-Amz-Date")
		if date == "" {
			if t, err := http.ParseTime(r.Header.Get("Date")); err == nil {
				date = t.UTC().Format(amzDate)
			}
		}
		payload = r.Header.Get("X-Amz-Content-Sha256")
		if payload == "" {
			return nil, errorf(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
		}
	case h != "":
		return nil, errorf(http.StatusBadRequest, "InvalidArgument", "Unsupported Authorization Type: only AWS Signature Version 4 (%s) is supported", algorithm)
	case q.Get("X-Amz-Algorithm") != "":
		if q.Get("X-Amz-Algorithm") != algorithm {
			return nil, errorf(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports %q", algorithm)
		}
		presigned = true
		cred, signedHeaders, signature, date = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"), q.Get("X-Amz-Date")
		payload = unsigned
		if p := r.Header.Get("X-Amz-Content-Sha256"); p != "" {
			payload = p
		}
	default:
		return nil, errorf(http.StatusForbidden, "AccessDenied", "Access Denied")
	}
	if cred == "" || signedHeaders == "" || signature == "" {
		return nil, errorf(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; Credential, SignedHeaders and Signature are required.")
	}

	// Credential=AKID/20260101/us-east-1/s3/aws4_request
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != "s3" || parts[4] != "aws4_request" {
		return nil, errorf(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	if !subtleEqual(parts[0], s.creds.AccessKeyID) {
		return nil, errorf(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
	}
	if parts[2] != s.region {
		return nil, errorf(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region '%s' is wrong; expecting '%s'", parts[2], s.region)
	}
	t, err := time.Parse(amzDate, date)
	if err != nil || !strings.HasPrefix(date, parts[1]) {
		return nil, errorf(http.StatusForbidden, "AccessDenied", "AWS authentication requires a valid Date or X-Amz-Date header")
	}
	now := s.now()
	if presigned {
		exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || exp < 1 || time.Duration(exp)*time.Second > maxPresigned {
			return nil, errorf(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds")
		}
		if now.After(t.Add(time.Duration(exp) * time.Second)) {
			return nil, errorf(http.StatusForbidden, "AccessDenied", "Request has expired")
		}
	} else if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return nil, errorf(http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
	}

	scope := strings.Join(parts[1:], "/")
	canonical := canonicalRequest(r, strings.Split(signedHeaders, ";"), payload, presigned)
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := algorithm + "\n" + date + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := signingKey(s.creds.SecretAccessKey, parts[1], parts[2])
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return nil, errorf(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return &auth{date: date, scope: scope, key: key, signature: signature}, nil
}

func subtleEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// canonicalRequest builds SigV4's canonical request from what the client
// sent: the path exactly as on the wire (S3 does not normalise it), the query
// re-encoded and sorted, and only the headers the client signed.
func canonicalRequest(r *http.Request, signed []string, payload string, presigned bool) string {
	path := r.RequestURI
	if u, err := url.ParseRequestURI(path); err == nil && u.IsAbs() {
		path = u.RequestURI()
	}
	path, _, _ = strings.Cut(path, "?")
	if path == "" {
		path = "/"
	}

	type kv struct{ k, v string }
	var params []kv
	for p := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		params = append(params, kv{uriEncode(k), uriEncode(v)})
	}
	slices.SortFunc(params, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	query := make([]string, len(params))
	for i, p := range params {
		query[i] = p.k + "=" + p.v
	}

	var headers strings.Builder
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			values = r.TransferEncoding
		default:
			values = r.Header.Values(name)
		}
		for i, v := range values {
			values[i] = strings.Join(strings.Fields(v), " ")
		}
		headers.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}

	return strings.Join([]string{
		r.Method,
		path,
		strings.Join(query, "&"),
		headers.String(),
		strings.Join(signed, ";"),
		payload,
	}, "\n")
}

// uriEncode encodes s as SigV4 requires: every byte but the unreserved
// characters A-Z a-z 0-9 - _ . ~ as %XY with upper-case hex.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func signingKey(secret, day, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
