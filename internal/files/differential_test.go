package files_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// TestStoresDecideAlike sends the same random sequence of requests — raw
// and envelope reads and writes, conditional writes and deletes, listings,
// odd paths — to the dir store and to MinIO, and requires the same status
// for each (ETags differ only where S3 makes multipart ones, which small
// bodies never are) and the same listings.
func TestStoresDecideAlike(t *testing.T) {
	m := itest.StartMinIO(t)
	for _, seed := range []uint64{42, 7, 1999} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { decideAlike(t, m, seed) })
	}
}

func decideAlike(t *testing.T, m *itest.MinIO, seed uint64) {
	stores := []backend{dirBackend(t), s3Backend(t, m)}
	var clients []client
	for _, b := range stores {
		clients = append(clients, client{t, server(t, b.store, 1<<20).URL, "diff-user"})
	}
	r := rand.New(rand.NewPCG(seed, 7))
	names := []string{"a", "a/b", "a/b/c.md", "b.txt", "%2e%2e", "a%2Fb", "c/../d", "e//f", "sp ace.md", "ü.md", "x\\y", "a/"}
	etags := make([]map[string]string, len(clients)) // last ETag seen per path, per store
	for i := range etags {
		etags[i] = map[string]string{}
	}
	for step := range 400 {
		name := names[r.IntN(len(names))]
		body := []byte(strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(64)))
		op := r.IntN(8)
		stale := r.IntN(3) == 0 // one draw per step: both stores get the same request
		var statuses []int
		var bodies []string
		for i, c := range clients {
			var a answer
			switch op {
			case 0:
				a = c.do("PUT", "/api/files/"+name+"?raw=1", bytes.NewReader(body))
			case 1:
				a = c.put(name, string(body), "If-None-Match", "*")
			case 2: // If-Match with the ETag this store gave last (or a stale one)
				tag := etags[i][name]
				if tag == "" || stale {
					tag = `"0123"`
				}
				a = c.do("PUT", "/api/files/"+name+"?raw=1", bytes.NewReader(body), "If-Match", tag)
			case 3:
				a = c.do("GET", "/api/files/"+name+"?raw=1", nil)
			case 4:
				a = c.do("GET", "/api/files/"+name, nil)
			case 5:
				a = c.do("DELETE", "/api/files/"+name, nil)
			case 6:
				a = c.do("GET", "/api/files?delimiter=/&prefix="+strings.TrimSuffix(name, name[strings.LastIndex(name, "/")+1:]), nil)
			default:
				a = c.do("GET", "/api/files/"+name+"?raw=1", nil, "Range", "bytes=1-3")
			}
			if t := a.header.Get("ETag"); t != "" {
				etags[i][name] = t
			}
			statuses = append(statuses, a.status)
			if op == 3 || op == 6 || op == 7 {
				bodies = append(bodies, normalize(a.body))
			}
		}
		// The one difference the SPEC allows: the dir store cannot hold a
		// file and a folder of one name (409); S3 can.
		if statuses[0] == 409 {
			if statuses[1] < 300 && (op == 0 || op == 1 || op == 2) {
				clients[1].do("DELETE", "/api/files/"+name, nil) // keep the two stores holding the same files
			}
			continue
		}
		if statuses[0] != statuses[1] {
			t.Fatalf("step %d, op %d on %q: dir answered %d, MinIO %d (tags %q %q)", step, op, name, statuses[0], statuses[1], etags[0][name], etags[1][name])
		}
		if len(bodies) == 2 && bodies[0] != bodies[1] && statuses[0] < 300 {
			t.Fatalf("step %d, op %d on %q: dir %s\nMinIO %s", step, op, name, bodies[0], bodies[1])
		}
	}
}

// normalize drops what legitimately differs between stores in an answer:
// modification times.
func normalize(b []byte) string {
	s := string(b)
	for {
		i := strings.Index(s, `"lastModified":"`)
		if i < 0 {
			return s
		}
		j := strings.Index(s[i+16:], `"`)
		s = s[:i] + s[i+16+j+1:]
	}
}
