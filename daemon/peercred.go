package daemon

import (
	"fmt"
	"log/slog"
	"net"
)

// peerListener accepts only connections whose peer runs as uid: the
// socket's 0600 mode keeps other users out of the file, and this holds
// even where the mode is not enough (a socket passed on, a directory
// made readable, a root-owned file with a lax umask).
type peerListener struct {
	net.Listener
	uid int
	log *slog.Logger
}

func (l peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return c, nil
		}
		uid, err := peerUID(uc)
		if err == nil && uid == l.uid {
			return c, nil
		}
		if err == nil {
			err = fmt.Errorf("peer uid %d is not the daemon's uid %d", uid, l.uid)
		}
		l.log.Warn("refused a connection", "err", err)
		_ = c.Close()
	}
}
