package sqlshared

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

// Migration is one embedded migrations/NNNN_name.sql file.
type Migration struct {
	Version int
	Name    string // file name, e.g. 0001_audit.sql
	SQL     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4,})_[a-z0-9_]+\.sql$`)

// LoadMigrations reads and orders the migrations/*.sql files of fsys.
// Version numbers must be unique; gaps are allowed (two branches may each
// have taken a number).
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		m := migrationName.FindStringSubmatch(base)
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_lower_snake_name.sql", base)
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: bad version number", base)
		}
		if other, ok := seen[v]; ok {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", other, base, v)
		}
		seen[v] = base
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	return ms, nil
}

// PendingMigrations returns the names of the migrations of ms not in applied.
func PendingMigrations(ms []Migration, applied map[int]bool) []string {
	var todo []string
	for _, m := range ms {
		if !applied[m.Version] {
			todo = append(todo, m.Name)
		}
	}
	return todo
}
