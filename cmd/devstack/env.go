package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferryworks/ferry/internal/demo"
)

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so a script polling for the file never reads half of it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func manifestJSON(m demo.Manifest) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	// Keys such as "Q3 summary – café.pdf" stay readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeCA writes the stack's CA certificate where o says (-ca-file, else
// beside the env file, else a temporary folder) and returns its absolute
// path, which the env file exports, and what removes it on exit when it is
// temporary.
func writeCA(o options, pem []byte) (string, func(), error) {
	path, remove := o.caFile, func() {}
	if path == "" && o.envFile != "" {
		path = filepath.Join(filepath.Dir(o.envFile), ".devstack-ca.pem")
	}
	if path == "" {
		dir, err := os.MkdirTemp("", "devstack-ca")
		if err != nil {
			return "", nil, fmt.Errorf("write CA certificate: %w", err)
		}
		path, remove = filepath.Join(dir, "ca.pem"), func() { _ = os.RemoveAll(dir) }
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("write CA certificate: %w", err)
	}
	if err := writeFileAtomic(abs, pem, 0o644); err != nil {
		remove()
		return "", nil, fmt.Errorf("write CA certificate to %s: %w (choose another place with -ca-file)", abs, err)
	}
	return abs, remove, nil
}
