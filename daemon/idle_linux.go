package daemon

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseBinaryPages unmaps the read-only pages of devctl's executable
// (code and read-only data) from the daemon with MADV_DONTNEED and returns
// how many bytes of mappings it advised. The pages stay in the page cache:
// a later access maps them back without reading the disk. Only mappings
// that are the file as it is are advised: writable ones (data, bss) and
// read-only ones holding written pages (a dynamic loader's RELRO) would
// lose their contents.
func releaseBinaryPages() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	type span struct {
		start, end uintptr
		// written is set when the mapping holds private copies of pages
		// (Anonymous > 0): a dynamic loader's relocations (RELRO), which
		// the file does not have.
		written bool
	}
	var spans []span
	var cur *span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Anonymous:"); ok {
			if cur != nil && strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) != "0" {
				cur.written = true
			}
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok || len(fields) < 5 {
			continue // a field line of the mapping above
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		// 00400000-02f3c000 r-xp 00000000 fe:00 12542205   /path/to/devctl
		cur = nil
		if len(fields) >= 6 && fields[5] == exe && !strings.Contains(fields[1], "w") && end > start {
			spans = append(spans, span{start: uintptr(start), end: uintptr(end)})
			cur = &spans[len(spans)-1]
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range spans {
		if s.written {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED); errno != 0 {
			return n, fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, errno)
		}
		n += int(s.end - s.start)
	}
	return n, nil
}
