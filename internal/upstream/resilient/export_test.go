package resilient

import (
	"io"
	"os"
)

// SetSpoolWriter makes f write zip bodies through wrap(spool file): the
// seam for a disk that fails (ENOSPC) and recovers.
func SetSpoolWriter(f *Fetcher, wrap func(*os.File) io.Writer) { f.spoolWriter = wrap }
