//go:build unix

package basic

import (
	"os"
	"syscall"
)

type inode struct{ dev, ino uint64 }

func sysIdent(fi os.FileInfo) any {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return inode{uint64(st.Dev), uint64(st.Ino)} //nolint:unconvert // types differ by platform
	}
	return nil
}
