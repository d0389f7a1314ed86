package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStaticBuild builds the binary the way hack/Dockerfile does (CGO_ENABLED=0) and checks it is
// static: distroless/static has no libc to load.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole binary; run without -short")
	}
	out := filepath.Join(t.TempDir(), "credchain")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; distroless/static cannot run it")
		}
	}
}
