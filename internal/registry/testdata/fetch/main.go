// Command fetch pulls an image manifest and its blobs over plain HTTP, as a
// container runtime would, and prints the manifest's digest. The registry
// integration test runs it in a container to show that containers reach
// the registry at their network's gateway.
//
//	fetch http://172.18.0.1:5001 hello/web v1
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: fetch <registry URL> <repository> <tag>")
		os.Exit(2)
	}
	if err := fetch(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
}

func fetch(base, repo, tag string) error {
	c := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	body, resp, err := get(c, req)
	if err != nil {
		return err
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	n := 0
	for _, d := range append([]string{m.Config.Digest}, digests(m.Layers)...) {
		req, err := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/blobs/"+d, nil)
		if err != nil {
			return err
		}
		b, _, err := get(c, req)
		if err != nil {
			return err
		}
		n += len(b)
	}
	fmt.Printf("digest %s, %d blobs, %d bytes\n", resp.Header.Get("Docker-Content-Digest"), len(m.Layers)+1, n)
	return nil
}

func digests(ls []struct{ Digest string }) []string {
	var ds []string
	for _, l := range ls {
		ds = append(ds, l.Digest)
	}
	return ds
}

func get(c *http.Client, req *http.Request) ([]byte, *http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s: %s", req.URL, resp.Status, b)
	}
	return b, resp, nil
}
