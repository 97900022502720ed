package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:                   "0 B",
		1023:                "1023 B",
		1024:                "1.00 KiB",
		1536:                "1.50 KiB",
		1152:                "1.13 KiB", // 1.125: the half rounds up, as in the dashboard
		1458:                "1.42 KiB",
		71_100_000:          "67.8 MiB",
		123 << 20:           "123 MiB",
		1023<<20 + 1000<<10: "1024 MiB", // rounded after the unit is chosen, as in the dashboard
		3 << 30:             "3.00 GiB",
		5 << 50:             "5.00 PiB",
		-2048:               "-2.00 KiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
