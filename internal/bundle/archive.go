package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// archiveWriter writes members and remembers their sizes and hashes.
type archiveWriter struct {
	tw      *tar.Writer
	members []Member
	mtime   time.Time
}

func newArchiveWriter(w io.Writer, mtime time.Time) *archiveWriter {
	return &archiveWriter{tw: tar.NewWriter(w), mtime: mtime}
}

// add writes the object key with size bytes from r.
func (a *archiveWriter) add(key string, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: ObjectPrefix + key, Size: size, Mode: 0o644, ModTime: a.mtime, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("bundle member %s: %w", key, err)
	}
	h := sha256.New()
	n, err := io.Copy(a.tw, io.TeeReader(io.LimitReader(r, size), h))
	if err == nil && n != size {
		err = fmt.Errorf("%d of %d bytes: the object changed while it was read", n, size)
	}
	if err != nil {
		return fmt.Errorf("bundle member %s: %w", key, err)
	}
	a.members = append(a.members, Member{Key: key, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// finish writes the manifest and closes the archive (not the writer).
func (a *archiveWriter) finish(m *Manifest) error {
	data, err := m.encode()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(data)), Mode: 0o644, ModTime: a.mtime, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("bundle manifest: %w", err)
	}
	if _, err := a.tw.Write(data); err != nil {
		return fmt.Errorf("bundle manifest: %w", err)
	}
	return a.tw.Close()
}

// readArchive calls fn for every member of the archive r, in order: the
// manifest as ManifestName, others by store key. Anything but a regular
// file, a member after the manifest, or a truncated archive is a
// *FormatError; fn must read body to its end.
func readArchive(r io.Reader, fn func(name string, size int64, body io.Reader) error) error {
	tr := tar.NewReader(r)
	sawManifest := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &FormatError{Msg: "the archive is truncated or corrupt", Err: err}
		}
		if sawManifest {
			return &FormatError{Msg: "member " + hdr.Name + " after the manifest"}
		}
		if hdr.Typeflag != tar.TypeReg {
			return &FormatError{Msg: fmt.Sprintf("member %s is not a regular file", hdr.Name)}
		}
		name := hdr.Name
		switch {
		case name == ManifestName:
			sawManifest = true
		case strings.HasPrefix(name, ObjectPrefix):
			name = strings.TrimPrefix(name, ObjectPrefix)
		default:
			return &FormatError{Msg: "unexpected member " + hdr.Name}
		}
		if err := fn(name, hdr.Size, tr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return &FormatError{Msg: "the archive is truncated", Err: err}
			}
			return err
		}
	}
}
