// Package postgres holds the ordered, append-only schema steps of the
// evindex PostgreSQL database, as plain SQL files NNNN_name.sql. The
// applied versions are rows of the table evindex_schema.
package postgres

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Migration is one schema step. A released step is never edited; a change
// is a new file.
type Migration struct {
	Version uint64
	Name    string
	SQL     string
}

// All is every step, in version order.
var All = load()

// Latest is the schema version this build writes.
func Latest() uint64 { return All[len(All)-1].Version }

func load() []Migration {
	names, err := files.ReadDir(".")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []Migration
	for _, f := range names {
		base := strings.TrimSuffix(f.Name(), path.Ext(f.Name()))
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			panic(fmt.Sprintf("migration file %s: want NNNN_name.sql", f.Name()))
		}
		sql, err := files.ReadFile(f.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, Migration{Version: v, Name: strings.ReplaceAll(name, "_", " "), SQL: string(sql)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != uint64(i+1) {
			panic(fmt.Sprintf("migration %d: versions must run 1, 2, 3, ... without gaps", m.Version))
		}
	}
	return out
}
