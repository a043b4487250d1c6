//go:build linux

package sandbox

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// makeWorkDir prepares the writable directory mounted at /work: the
// configured one, or a fresh one seeded from Spec.Seed. When warden runs as
// root, a fresh one is handed to the sandbox's uid.
func (r *runner) makeWorkDir(asRoot bool) error {
	if r.spec.WorkDir != "" {
		fi, err := os.Stat(r.spec.WorkDir)
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("sandbox: work directory %q does not exist", r.spec.WorkDir)
		}
		r.workDir = r.spec.WorkDir
		return nil
	}
	// A random name inside the run's private directory: what the
	// sandbox's /proc/self/mountinfo shows of it is meaningless.
	dir, err := os.MkdirTemp(r.runDir, "")
	if err != nil {
		return fmt.Errorf("sandbox: work directory: %w", err)
	}
	r.workDir, r.tmpWork = dir, true
	if r.spec.Seed != "" {
		if err := copyTree(r.spec.Seed, dir); err != nil {
			return fmt.Errorf("sandbox: seeding the work directory: %w", err)
		}
	}
	if asRoot {
		return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, sandboxUID, sandboxUID)
		})
	}
	return nil
}

// copyTree copies regular files, directories and symlinks from src into
// dst. Nothing is followed: symlinks are copied as links (they resolve
// inside the sandbox, where only the binds exist), files are opened with
// O_NOFOLLOW; other file types are skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(to, info.Mode().Perm()|0o700)
		case info.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, to)
		case info.Mode().IsRegular():
			return copyFile(p, to, info.Mode().Perm())
		}
		return nil
	})
}

// copyFile copies the regular file from: opened without following a
// symlink and checked to be a regular file through its fd, so a seed entry
// swapped for a symlink after the walk looked at it (to /etc/shadow, say)
// is refused rather than copied for the sandbox to read.
func copyFile(from, to string, perm os.FileMode) error {
	in, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("seed entry %s is no longer a regular file", from)
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
