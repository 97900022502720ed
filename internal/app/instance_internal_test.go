package app

import (
	"net"
	"testing"
)

func TestAdminURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:3001": "http://127.0.0.1:3001",
		"0.0.0.0:3001":   "http://127.0.0.1:3001",
		"[::]:3001":      "http://[::1]:3001",
		"[::1]:3001":     "http://[::1]:3001",
		"10.1.2.3:80":    "http://10.1.2.3:80",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := adminURL(a); got != want {
			t.Errorf("adminURL(%s) = %s, want %s", addr, got, want)
		}
	}
}
