package s3

import (
	"crypto/sha1" //nolint:gosec // S3's SHA1 checksum algorithm, not a security use
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// crc64NVME is the CRC-64/NVME table (reflected polynomial), S3's default
// full-object checksum.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksumAlgorithms maps the lower-case x-amz-checksum-<name> suffix to a
// hash constructor.
var checksumAlgorithms = map[string]func() hash.Hash{
	"crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"crc64nvme": func() hash.Hash { return crc64.New(crc64NVME) },
	"sha1":      sha1.New,
	"sha256":    sha256.New,
}

// checksums computes, while data is written, every checksum the request
// announces, and the SHA-256 of the payload for SigV4.
type checksums struct {
	payload hash.Hash
	algs    map[string]hash.Hash // by x-amz-checksum-<name> name, lower case
}

func newChecksums(names []string) *checksums {
	c := &checksums{payload: sha256.New(), algs: map[string]hash.Hash{}}
	for _, n := range names {
		if f, ok := checksumAlgorithms[strings.TrimPrefix(n, "x-amz-checksum-")]; ok {
			c.algs[n] = f()
		}
	}
	return c
}

func (c *checksums) Write(p []byte) (int, error) {
	c.payload.Write(p)
	for _, h := range c.algs {
		h.Write(p)
	}
	return len(p), nil
}

// sum returns the base64 checksum for header name x-amz-checksum-<alg>.
func (c *checksums) sum(name string) (string, bool) {
	h, ok := c.algs[name]
	if !ok {
		return "", false
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), true
}
