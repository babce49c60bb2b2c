// Package probe is the shape of the stand-in lake's probe action
// (cmd/lake-standin): what a hostile job tries, and its report, shared by
// the stand-in, the root-mode sandbox test (cmd/hqd) and the VM's checker
// (deploy/target/check).
package probe

// Targets are what the probe action tries from inside a job, as an attacker
// would: read, list and write paths of the host, connect to its sockets,
// signal its processes. The tests name the targets (hqd's data dir, its
// port, …) and check the report against what the sandbox must refuse.
type Targets struct {
	Read    []string `json:"read"`    // files to read
	List    []string `json:"list"`    // directories to list
	Write   []string `json:"write"`   // files to create
	Connect []string `json:"connect"` // host:port to dial over TCP
	Signal  []int    `json:"signal"`  // pids to send signal 0
	Hold    int      `json:"holdMs"`  // stay alive this long after probing (to be seen by another job)
}

// Report is the probe's one line of output: "probe: {json}".
type Report struct {
	UID       int               `json:"uid"`
	UIDMap    string            `json:"uidMap"` // the user namespace's map: the host uid outside
	NoNewPriv string            `json:"noNewPrivs"`
	CapEff    string            `json:"capEff"`
	Read      map[string]string `json:"read"` // "ok: N bytes" or the error
	List      map[string]string `json:"list"`
	Write     map[string]string `json:"write"`
	Connect   map[string]string `json:"connect"`
	Signal    map[string]string `json:"signal"`
	Processes []string          `json:"processes"` // "pid uid cmdline" of every process the job can see
	Env       []string          `json:"env"`
	Cwd       string            `json:"cwd"`
	FDs       []string          `json:"fds"`          // open descriptors besides the one listing them
	Keys      string            `json:"keys"`         // what the session keyring holds
	NestedNS  string            `json:"nestedUserns"` // starting a process in a new user namespace
	Hostname  string            `json:"hostname"`
}
