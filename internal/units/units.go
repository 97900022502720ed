// Package units formats quantities for people.
//
// Every size modproxy prints goes through Bytes: binary units (1 KiB =
// 1024 B), three significant digits. The dashboard's fmtBytes
// (internal/admin/web/app.js) formats the same way, so a figure reads the
// same in the CLI and in the browser.
package units

import (
	"math"
	"strconv"
)

// Bytes formats n in binary units with three significant digits: "512 B",
// "1.50 KiB", "67.8 MiB", "123 GiB"; halves round up, as JavaScript's
// toFixed does.
func Bytes(n int64) string {
	names := [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for math.Abs(v) >= 1024 && i < len(names)-1 {
		v /= 1024
		i++
	}
	digits := 0
	switch {
	case i == 0:
	case math.Abs(v) < 10:
		digits = 2
	case math.Abs(v) < 100:
		digits = 1
	}
	scale := math.Pow10(digits)
	v = math.Floor(v*scale+0.5) / scale
	return strconv.FormatFloat(v, 'f', digits, 64) + " " + names[i]
}
